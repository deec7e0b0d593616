#include "clock/offset_estimator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace synod {

bool OffsetEstimator::Unexplained(const TimeSample& sample) const {
  const std::optional<ClockEstimate> predicted = Estimate(sample.t1 + (sample.t4 - sample.t1) / 2);
  if (!predicted) return false;
  const int64_t explainable =
      predicted->error_nanos + sample.RoundTripNanos() / 2 + kStepMarginNanos;
  return std::llabs(sample.OffsetNanos() - predicted->offset_nanos) > explainable;
}

bool OffsetEstimator::Add(const TimeSample& sample) {
  if (!sample.Plausible()) return false;
  if (Unexplained(sample)) {
    const bool confirms =
        possible_step_ &&
        std::llabs(sample.OffsetNanos() - possible_step_->OffsetNanos()) <=
            (sample.RoundTripNanos() + possible_step_->RoundTripNanos()) / 2 + kStepMarginNanos;
    if (!confirms) {
      possible_step_ = sample;
      return true;
    }
    samples_.clear();
    samples_.push_back(*possible_step_);
    ++steps_;
  }
  possible_step_.reset();
  samples_.push_back(sample);
  while (samples_.size() > options_.window) samples_.pop_front();
  return true;
}

std::optional<ClockEstimate> OffsetEstimator::Estimate(int64_t now_local_nanos) const {
  if (samples_.empty()) return std::nullopt;
  const TimeSample* best = &samples_.front();
  for (const TimeSample& sample : samples_) {
    if (sample.RoundTripNanos() < best->RoundTripNanos()) best = &sample;
  }
  // Low-delay samples (within twice the best round trip, plus 50 us of scheduling noise)
  // carry the frequency; queued ones would bend the line.
  const int64_t limit = 2 * best->RoundTripNanos() + 50'000;
  std::vector<std::pair<double, double>> points;  // (local seconds since best, offset ns)
  auto midpoint = [](const TimeSample& s) { return s.t1 + (s.t4 - s.t1) / 2; };
  for (const TimeSample& sample : samples_) {
    if (sample.RoundTripNanos() <= limit) {
      points.emplace_back(static_cast<double>(midpoint(sample) - midpoint(*best)) / 1e9,
                          static_cast<double>(sample.OffsetNanos()));
    }
  }
  double slope = 0, slope_error = 0, spread = 0;  // ns per s, ns per s, ns
  if (points.size() >= 3) {
    double mean_x = 0, mean_y = 0;
    for (auto [x, y] : points) {
      mean_x += x;
      mean_y += y;
    }
    mean_x /= static_cast<double>(points.size());
    mean_y /= static_cast<double>(points.size());
    double sxx = 0, sxy = 0;
    for (auto [x, y] : points) {
      sxx += (x - mean_x) * (x - mean_x);
      sxy += (x - mean_x) * (y - mean_y);
    }
    if (sxx > 1e-6) {
      slope = sxy / sxx;
      double residuals = 0;
      for (auto [x, y] : points) {
        const double fit = mean_y + slope * (x - mean_x);
        residuals += (y - fit) * (y - fit);
        spread = std::max(spread, std::abs(y - fit));
      }
      slope_error = std::sqrt(residuals / static_cast<double>(points.size() - 2) / sxx);
    }
  }
  const double age_s = std::max(0.0, static_cast<double>(now_local_nanos - midpoint(*best)) / 1e9);
  ClockEstimate estimate;
  estimate.drift_ppm = slope / 1e3;  // ns/s -> ppm
  estimate.offset_nanos = best->OffsetNanos() + static_cast<int64_t>(std::llround(slope * age_s));
  const double accumulated = age_s * (slope_error + options_.dispersion_ppm * 1e3);
  estimate.error_nanos = best->RoundTripNanos() / 2 + static_cast<int64_t>(accumulated + spread);
  estimate.last_sample_age_nanos = now_local_nanos - samples_.back().t4;
  return estimate;
}

}  // namespace synod
