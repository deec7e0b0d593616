#include "core/clock.h"

#include <ctime>

namespace synod {

MonoTime SystemClock::Monotonic() const { return std::chrono::steady_clock::now(); }

int64_t SystemClock::WallUtcNanos() const {
  // clock_gettime rather than std::chrono::system_clock so that libfaketime's shift, which tests
  // rely on, is seen the same way on every libstdc++.
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace synod
