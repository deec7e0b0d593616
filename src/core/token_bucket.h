// TokenBucket: lets through at most `burst` events at once, and `per_second` on average after
// that. Pure: the caller passes the time in, so a test drives it with a fake clock.
// Thread-compatible.
#pragma once

#include <algorithm>
#include <optional>

#include "core/clock.h"

namespace synod {

class TokenBucket {
 public:
  TokenBucket(double burst, double per_second)
      : burst_(burst), per_second_(per_second), tokens_(burst) {}

  // Whether one more event may pass at `now`; if so, it is counted.
  bool TryTake(MonoTime now) {
    if (last_) {
      const double elapsed = std::chrono::duration<double>(now - *last_).count();
      tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed) * per_second_);
    }
    last_ = std::max(now, last_.value_or(now));
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double burst_;
  double per_second_;
  double tokens_;
  std::optional<MonoTime> last_;
};

}  // namespace synod
