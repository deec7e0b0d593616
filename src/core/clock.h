// Clock: the one place where Synod reads time, so that tests can replace it.
//
// Two time lines: Monotonic() for intervals, timeouts and ages (never jumps), and WallUtc() for
// timestamps exchanged with other nodes (UTC, nanoseconds since the Unix epoch; it may jump and
// may be shifted by libfaketime in tests). SystemClock is thread-safe; ManualClock is not and is
// meant for single-threaded tests.
#pragma once

#include <chrono>
#include <cstdint>

namespace synod {

using Nanos = std::chrono::nanoseconds;
using MonoTime = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Monotonic() const = 0;
  // UTC nanoseconds since the Unix epoch.
  virtual int64_t WallUtcNanos() const = 0;
};

class SystemClock final : public Clock {
 public:
  MonoTime Monotonic() const override;
  int64_t WallUtcNanos() const override;
};

// A clock that moves only when told to. Both time lines advance together.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t wall_utc_nanos = 1'700'000'000'000'000'000)
      : wall_(wall_utc_nanos) {}
  MonoTime Monotonic() const override { return mono_; }
  int64_t WallUtcNanos() const override { return wall_; }
  void Advance(Nanos by) {
    mono_ += by;
    wall_ += by.count();
  }

 private:
  MonoTime mono_{std::chrono::seconds(1000)};
  int64_t wall_;
};

inline double NanosToMillis(int64_t nanos) { return static_cast<double>(nanos) / 1e6; }
inline double NanosToSeconds(int64_t nanos) { return static_cast<double>(nanos) / 1e9; }

}  // namespace synod
