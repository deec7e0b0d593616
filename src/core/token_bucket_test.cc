#include "core/token_bucket.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

using std::chrono::milliseconds;

TEST(TokenBucket, LetsABurstThroughThenTheRate) {
  TokenBucket bucket(3, 10);  // 3 at once, then one per 100 ms
  const MonoTime t0{std::chrono::seconds(100)};
  EXPECT_TRUE(bucket.TryTake(t0));
  EXPECT_TRUE(bucket.TryTake(t0));
  EXPECT_TRUE(bucket.TryTake(t0));
  EXPECT_FALSE(bucket.TryTake(t0));
  EXPECT_FALSE(bucket.TryTake(t0 + milliseconds(99)));
  EXPECT_TRUE(bucket.TryTake(t0 + milliseconds(100)));
  EXPECT_FALSE(bucket.TryTake(t0 + milliseconds(150)));
}

TEST(TokenBucket, NeverHoldsMoreThanTheBurst) {
  TokenBucket bucket(2, 10);
  const MonoTime t0{std::chrono::seconds(100)};
  EXPECT_TRUE(bucket.TryTake(t0));
  // An hour idle refills it to 2, not to 36,000.
  const MonoTime later = t0 + std::chrono::hours(1);
  EXPECT_TRUE(bucket.TryTake(later));
  EXPECT_TRUE(bucket.TryTake(later));
  EXPECT_FALSE(bucket.TryTake(later));
}

TEST(TokenBucket, ATimeGoingBackwardsAddsNothing) {
  TokenBucket bucket(1, 10);
  const MonoTime t0{std::chrono::seconds(100)};
  EXPECT_TRUE(bucket.TryTake(t0));
  EXPECT_FALSE(bucket.TryTake(t0 - std::chrono::seconds(10)));
  // Nor does it take away: the refill still counts from the latest time seen.
  EXPECT_TRUE(bucket.TryTake(t0 + milliseconds(100)));
}

}  // namespace
}  // namespace synod
