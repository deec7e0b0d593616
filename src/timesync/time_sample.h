// Four-timestamp (NTP-style) clock measurement between two nodes, and the filter over it.
//
// t1: request sent (our clock)   t2: request received (peer clock)
// t3: reply sent (peer clock)    t4: reply received (our clock)
// offset = ((t2 - t1) + (t3 - t4)) / 2   how far the peer's clock is ahead of ours
// delay  = (t4 - t1) - (t3 - t2)         round trip, without the peer's processing time
// The offset is exact when the two directions take equally long; the error is at most half the
// round trip whatever the asymmetry, which is why the sample with the smallest round trip is the
// best estimate. Pure values; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "core/clock.h"

namespace synod {

struct TimeSample {
  int64_t t1 = 0, t2 = 0, t3 = 0, t4 = 0;  // UTC nanoseconds

  int64_t OffsetNanos() const { return ((t2 - t1) + (t3 - t4)) / 2; }
  int64_t RoundTripNanos() const { return (t4 - t1) - (t3 - t2); }
  // A reply that came back before its request left, or a peer that claims to have answered
  // before it was asked, is not a measurement.
  bool Plausible() const { return t4 >= t1 && t3 >= t2 && RoundTripNanos() >= 0; }
};

// Keeps the last `window` samples and answers with the one of minimum round trip.
class MinDelayFilter {
 public:
  struct Entry {
    TimeSample sample;
    MonoTime taken;
  };

  MinDelayFilter() = default;
  explicit MinDelayFilter(size_t window) : window_(window) {}

  // Implausible samples are ignored; returns whether the sample was kept.
  bool Add(const TimeSample& sample, MonoTime taken);
  std::optional<Entry> Best() const;
  size_t size() const { return samples_.size(); }

 private:
  size_t window_ = 8;
  std::deque<Entry> samples_;
};

}  // namespace synod
