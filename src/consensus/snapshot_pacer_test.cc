#include "consensus/snapshot_pacer.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

unsigned Feed(SnapshotPacer& pacer, size_t bytes, int entries) {
  for (int i = 0; i < entries; ++i) pacer.OnEntry(bytes);
  return pacer.threshold();
}

TEST(SnapshotPacer, SmallEntriesKeepTheConfiguredThreshold) {
  SnapshotPacer pacer(64 << 20, 8192);
  EXPECT_EQ(Feed(pacer, 100, 10000), 8192u);
}

TEST(SnapshotPacer, LargeEntriesLowerItToFitTheBudgetAndSmallOnesRaiseItBack) {
  SnapshotPacer pacer(64 << 20, 8192);
  const unsigned lowered = Feed(pacer, 110 * 1024, 200);
  EXPECT_LE(lowered * 1.25 * 110 * 1024, 64.0 * (1 << 20) * 1.01);
  EXPECT_GE(lowered, 400u);
  // Back to small entries: the threshold climbs back, never above the configured one.
  EXPECT_EQ(Feed(pacer, 100, 20000), 8192u);
}

TEST(SnapshotPacer, NeverBelowTheFloor) {
  SnapshotPacer pacer(1 << 20, 8192);
  EXPECT_EQ(Feed(pacer, 4 << 20, 100), SnapshotPacer::kFloor);
  SnapshotPacer tiny(1 << 20, 16);  // a configured threshold under the floor stays as set
  EXPECT_EQ(Feed(tiny, 4 << 20, 100), 16u);
}

}  // namespace
}  // namespace synod
