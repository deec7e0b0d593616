#include "timesync/time_sample.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

constexpr int64_t kMs = 1'000'000;

// A probe to a peer whose clock is `offset` ahead, with one-way delays `out` and `back`.
TimeSample Probe(int64_t t1, int64_t offset, int64_t out, int64_t back, int64_t processing = 0) {
  const int64_t t2 = t1 + out + offset;
  const int64_t t3 = t2 + processing;
  const int64_t t4 = t3 - offset + back;
  return TimeSample{t1, t2, t3, t4};
}

TEST(TimeSample, SymmetricDelayGivesExactOffset) {
  const TimeSample s = Probe(1000 * kMs, 250 * kMs, 2 * kMs, 2 * kMs, 5 * kMs);
  EXPECT_EQ(s.OffsetNanos(), 250 * kMs);
  EXPECT_EQ(s.RoundTripNanos(), 4 * kMs);
  EXPECT_TRUE(s.Plausible());
}

TEST(TimeSample, AsymmetryErrorIsHalfTheDifferenceAndWithinHalfTheRoundTrip) {
  const TimeSample s = Probe(1000 * kMs, -1500 * kMs, 1 * kMs, 9 * kMs);
  EXPECT_EQ(s.OffsetNanos() - (-1500 * kMs), (1 - 9) * kMs / 2);
  EXPECT_LE(std::abs(s.OffsetNanos() - (-1500 * kMs)), s.RoundTripNanos() / 2);
}

TEST(TimeSample, ImpossibleSamplesAreImplausible) {
  EXPECT_FALSE((TimeSample{10, 5, 4, 20}.Plausible()));   // answered before asked
  EXPECT_FALSE((TimeSample{10, 5, 6, 9}.Plausible()));    // back before it left
  EXPECT_FALSE((TimeSample{0, 0, 100, 50}.Plausible()));  // processing longer than the round trip
}

TEST(MinDelayFilter, PicksTheMinimumRoundTripOfTheWindow) {
  MinDelayFilter filter(4);
  const MonoTime now{};
  // Noisy delays: the quiet sample carries the true offset.
  filter.Add(Probe(0, 100 * kMs, 5 * kMs, 1 * kMs), now);
  filter.Add(Probe(0, 100 * kMs, 1 * kMs, 1 * kMs), now);  // best
  filter.Add(Probe(0, 100 * kMs, 3 * kMs, 8 * kMs), now);
  EXPECT_EQ(filter.Best()->sample.OffsetNanos(), 100 * kMs);
  // The best slides out of the window after 4 newer samples.
  for (int i = 0; i < 4; ++i) filter.Add(Probe(0, 100 * kMs, 2 * kMs, 4 * kMs), now);
  EXPECT_EQ(filter.size(), 4u);
  EXPECT_EQ(filter.Best()->sample.RoundTripNanos(), 6 * kMs);
}

TEST(MinDelayFilter, IgnoresImplausibleSamples) {
  MinDelayFilter filter;
  EXPECT_FALSE(filter.Add(TimeSample{10, 5, 4, 20}, MonoTime{}));
  EXPECT_FALSE(filter.Best().has_value());
}

}  // namespace
}  // namespace synod
