#include "core/jitter.h"

#include <gtest/gtest.h>

#include <set>

namespace synod {
namespace {

using std::chrono::milliseconds;

TEST(Jitter, SpreadsAPeriodWithinItsFractionAndVariesIt) {
  Jitter jitter(0.25);
  std::set<int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const milliseconds spread = jitter.Spread(milliseconds(1000));
    ASSERT_GE(spread, milliseconds(750));
    ASSERT_LE(spread, milliseconds(1250));
    seen.insert(spread.count());
  }
  EXPECT_GT(seen.size(), 100u) << "periods must differ, or nodes started together stay in step";
  EXPECT_LT(*seen.begin(), 850) << "the spread reaches well below the period";
  EXPECT_GT(*seen.rbegin(), 1150) << "and well above it";
}

TEST(Jitter, NoFractionKeepsThePeriod) {
  Jitter exact(0.0);
  EXPECT_EQ(exact.Spread(milliseconds(500)), milliseconds(500));
}

}  // namespace
}  // namespace synod
