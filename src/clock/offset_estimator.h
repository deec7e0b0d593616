// OffsetEstimator: this node's clock against the master's, from four-timestamp samples.
//
// Keeps a window of samples. The offset estimate is the minimum-delay sample's offset, carried
// forward by the drift (frequency error), which is the least-squares slope of the offsets of the
// window's low-delay samples against local time. The error bound is honest rather than hopeful:
// half the chosen sample's round trip (the most any path asymmetry can hide), plus what can have
// accumulated since it was taken (the drift's uncertainty and a fixed dispersion rate, per
// second of age), plus the spread of the low-delay samples around the fitted line.
// A clock step (this node's or the master's, of more than kStepMarginNanos beyond what the
// bound and a sample's round trip explain) would make the window mix two time lines: its fit
// then reports millions of ppm and a bound that misses the truth. Two samples in a row that
// the estimate cannot explain, and that agree with each other, are a step: the window starts
// again from them. A single one is a fluke (a probe delayed past anything its round trip
// shows) and is dropped.
// Pure: times come in as arguments. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "core/clock.h"
#include "timesync/time_sample.h"

namespace synod {

struct ClockEstimate {
  int64_t offset_nanos = 0;  // master minus local, at the time asked
  int64_t error_nanos = 0;   // |true offset - offset_nanos| <= error_nanos
  double drift_ppm = 0;      // master runs fast by this much relative to us
  int64_t last_sample_age_nanos = 0;
};

class OffsetEstimator {
 public:
  struct Options {
    size_t window = 16;
    double dispersion_ppm = 20;  // assumed worst wander of two quartz clocks, per second of age
  };
  OffsetEstimator() = default;
  explicit OffsetEstimator(Options options) : options_(options) {}

  static constexpr int64_t kStepMarginNanos = 20'000'000;

  // Implausible samples are ignored; returns whether it was taken (a sample held back as a
  // possible step counts as taken).
  bool Add(const TimeSample& sample);
  // Clock steps seen so far.
  uint64_t steps() const { return steps_; }
  // The estimate at local UTC time `now_local_nanos`, or nothing before the first sample.
  std::optional<ClockEstimate> Estimate(int64_t now_local_nanos) const;
  void Reset() {
    samples_.clear();
    possible_step_.reset();
  }
  size_t size() const { return samples_.size(); }

 private:
  // Whether the estimate, its bound and the sample's own delay cannot explain `sample`.
  bool Unexplained(const TimeSample& sample) const;

  Options options_;
  std::deque<TimeSample> samples_;
  std::optional<TimeSample> possible_step_;  // an unexplained sample, until the next one
  uint64_t steps_ = 0;
};

// Serves a time that never goes backwards to any reader, however the estimate moves: a reading
// below the last one served is raised to just after it.
class MonotonicServe {
 public:
  int64_t Serve(int64_t candidate_nanos) {
    last_ = candidate_nanos > last_ ? candidate_nanos : last_ + 1;
    return last_;
  }

 private:
  int64_t last_ = 0;
};

}  // namespace synod
