// Clock: the one place where Synod reads time, so that tests can replace it.
//
// Two time lines: Monotonic() for intervals, timeouts and ages (never jumps), and WallUtc() for
// timestamps exchanged with other nodes (UTC, nanoseconds since the Unix epoch; it may jump and
// may be shifted by libfaketime in tests). SystemClock is thread-safe; ManualClock is not and is
// meant for single-threaded tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

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

// Wall time from a source that may know better than this machine's clock (the agent sets the
// cluster clock once it exists), and the base clock's while the source has no answer or is
// unset. Monotonic time is always the base's. Not thread-safe: the source usually is not.
class SourcedClock final : public Clock {
 public:
  using Source = std::function<std::optional<int64_t>()>;

  explicit SourcedClock(const Clock& base) : base_(base) {}
  void SetSource(Source source) { source_ = std::move(source); }

  MonoTime Monotonic() const override { return base_.Monotonic(); }
  int64_t WallUtcNanos() const override {
    if (source_) {
      if (std::optional<int64_t> wall = source_()) return *wall;
    }
    return base_.WallUtcNanos();
  }

 private:
  const Clock& base_;
  Source source_;
};

inline double NanosToMillis(int64_t nanos) { return static_cast<double>(nanos) / 1e6; }
inline double NanosToSeconds(int64_t nanos) { return static_cast<double>(nanos) / 1e9; }

}  // namespace synod
