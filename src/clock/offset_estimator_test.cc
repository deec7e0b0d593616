#include "clock/offset_estimator.h"

#include <gtest/gtest.h>

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

TEST(MonotonicServe, NeverStepsBackwards) {
  MonotonicServe serve;
  EXPECT_EQ(serve.Serve(100), 100);
  EXPECT_EQ(serve.Serve(90), 101) << "the estimate jumped back; the reader does not";
  EXPECT_EQ(serve.Serve(95), 102);
  EXPECT_EQ(serve.Serve(200), 200);
}

}  // namespace
}  // namespace synod
