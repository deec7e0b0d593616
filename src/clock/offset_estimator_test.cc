#include "clock/offset_estimator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

namespace synod {
namespace {

constexpr int64_t kUs = 1'000;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

// A probe at local time t1 to a master whose clock reads local * (1 + drift) + offset, with
// one-way delays `out` and `back` (in local time).
TimeSample Probe(int64_t t1, int64_t offset, double drift, int64_t out, int64_t back) {
  auto master = [&](int64_t local) {
    return local + offset + static_cast<int64_t>(static_cast<double>(local) * drift);
  };
  const int64_t t2 = master(t1 + out);
  const int64_t t3 = t2 + 20 * kUs;  // processing
  const int64_t t4 = t1 + out + 20 * kUs + back;
  return TimeSample{t1, t2, t3, t4};
}

TEST(OffsetEstimator, NoSampleNoEstimate) {
  OffsetEstimator estimator;
  EXPECT_FALSE(estimator.Estimate(0).has_value());
  EXPECT_FALSE(estimator.Add(TimeSample{10, 5, 4, 20}));
}

TEST(OffsetEstimator, NoisyAsymmetricDelaysTheQuietestSampleWinsAndTheTruthIsInTheBound) {
  std::mt19937 random(7);
  std::uniform_int_distribution<int64_t> queue(0, 3 * kMs);
  OffsetEstimator estimator;
  const int64_t truth = 250 * kMs;
  for (int i = 0; i < 16; ++i) {
    // Asymmetric paths: 80 us out, 40 us back, plus random queueing either way.
    estimator.Add(Probe(i * kS, truth, 0, 80 * kUs + queue(random), 40 * kUs + queue(random)));
  }
  auto estimate = estimator.Estimate(16 * kS);
  ASSERT_TRUE(estimate.has_value());
  const int64_t miss = std::abs(estimate->offset_nanos - truth);
  EXPECT_LE(miss, estimate->error_nanos) << "the truth must lie inside the bound";
  EXPECT_LT(miss, 2 * kMs);
}

TEST(OffsetEstimator, DriftIsFoundAndCarriedForward) {
  OffsetEstimator estimator;
  const double drift = 100e-6;  // x1.0001, as faketime's drift test
  for (int i = 0; i < 16; ++i) {
    estimator.Add(Probe(i * kS, -1500 * kMs, drift, 50 * kUs, 50 * kUs));
  }
  const int64_t now = 20 * kS;
  auto estimate = estimator.Estimate(now);
  ASSERT_TRUE(estimate.has_value());
  EXPECT_NEAR(estimate->drift_ppm, 100.0, 1.0);
  const int64_t truth = -1500 * kMs + static_cast<int64_t>(now * drift);
  EXPECT_LE(std::abs(estimate->offset_nanos - truth), estimate->error_nanos);
  EXPECT_LT(std::abs(estimate->offset_nanos - truth), 100 * kUs);
}

TEST(OffsetEstimator, TheBoundGrowsWithAge) {
  OffsetEstimator estimator;
  for (int i = 0; i < 4; ++i) estimator.Add(Probe(i * kS, 0, 0, 50 * kUs, 50 * kUs));
  const int64_t fresh = estimator.Estimate(4 * kS)->error_nanos;
  const int64_t stale = estimator.Estimate(64 * kS)->error_nanos;
  EXPECT_GT(stale, fresh + 1 * kMs) << "60 s at 20 ppm adds 1.2 ms";
}

// The master's clock steps 5 s forward: from the second sample after it the window holds only
// the new time line, and the estimate and its bound are about it at once (not a fit across
// both: a drift of millions of ppm and a bound that misses the truth).
TEST(OffsetEstimator, AClockStepStartsTheWindowAgain) {
  OffsetEstimator estimator;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(estimator.Add(Probe(i * kS, 100 * kMs, 50e-6, 60 * kUs, 60 * kUs)));
  }
  EXPECT_EQ(estimator.steps(), 0u);
  const int64_t stepped = 100 * kMs + 5 * kS;
  for (int i = 10; i < 13; ++i) {
    ASSERT_TRUE(estimator.Add(Probe(i * kS, stepped, 50e-6, 60 * kUs, 60 * kUs)));
  }
  EXPECT_EQ(estimator.steps(), 1u);
  EXPECT_EQ(estimator.size(), 3u);
  const int64_t now = 13 * kS;
  const auto estimate = estimator.Estimate(now);
  ASSERT_TRUE(estimate.has_value());
  const int64_t truth = stepped + static_cast<int64_t>(static_cast<double>(now) * 50e-6);
  EXPECT_LE(std::llabs(estimate->offset_nanos - truth), estimate->error_nanos);
  EXPECT_LT(estimate->error_nanos, 1 * kMs);
  EXPECT_LT(std::abs(estimate->drift_ppm), 1000.0);
}

// One wild sample (timestamps delayed past what its round trip shows) is neither a step nor
// part of the estimate.
TEST(OffsetEstimator, ASingleUnexplainedSampleIsDropped) {
  OffsetEstimator estimator;
  for (int i = 0; i < 10; ++i) estimator.Add(Probe(i * kS, 100 * kMs, 0, 60 * kUs, 60 * kUs));
  const auto before = estimator.Estimate(10 * kS);
  estimator.Add(Probe(10 * kS, 400 * kMs, 0, 60 * kUs, 60 * kUs));
  for (int i = 11; i < 14; ++i) estimator.Add(Probe(i * kS, 100 * kMs, 0, 60 * kUs, 60 * kUs));
  EXPECT_EQ(estimator.steps(), 0u);
  const auto after = estimator.Estimate(14 * kS);
  ASSERT_TRUE(before && after);
  EXPECT_LE(std::llabs(after->offset_nanos - 100 * kMs), after->error_nanos);
  EXPECT_LT(after->error_nanos, 1 * kMs);
}

// Queued samples (a loaded network) are late, not steps.
TEST(OffsetEstimator, QueueingDelayIsNotAStep) {
  std::mt19937 random(11);
  std::uniform_int_distribution<int64_t> queue(0, 20 * kMs);
  OffsetEstimator estimator;
  for (int i = 0; i < 200; ++i) {
    estimator.Add(
        Probe(i * kS, 7 * kMs, 20e-6, 60 * kUs + queue(random), 60 * kUs + queue(random)));
  }
  EXPECT_EQ(estimator.steps(), 0u);
}

TEST(MonotonicServe, NeverStepsBackwards) {
  MonotonicServe serve;
  EXPECT_EQ(serve.Serve(100), 100);
  EXPECT_EQ(serve.Serve(90), 101) << "the estimate jumped back; the reader does not";
  EXPECT_EQ(serve.Serve(95), 102);
  EXPECT_EQ(serve.Serve(200), 200);
}

}  // namespace
}  // namespace synod
