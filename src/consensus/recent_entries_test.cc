#include "consensus/recent_entries.h"

#include <gtest/gtest.h>

#include <vector>

namespace synod {
namespace {

std::vector<uint64_t> Indexes(const wire::EntryFeed& feed) {
  std::vector<uint64_t> indexes;
  for (const auto& entry : feed.entries()) indexes.push_back(entry.index());
  return indexes;
}

TEST(RecentEntries, ServesTheEntriesAfterAnIndexUpToAnother) {
  RecentEntries recent(100, 1 << 20);
  // Indexes 3 and 6 are Raft's own entries: never recorded, never sent.
  for (uint64_t index : {1, 2, 4, 5, 7}) recent.Record(index, "e" + std::to_string(index));
  wire::EntryFeed feed;
  ASSERT_TRUE(recent.Collect(2, 5, feed));
  EXPECT_EQ(Indexes(feed), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(feed.entries(0).payload(), "e4");
  wire::EntryFeed none;
  ASSERT_TRUE(recent.Collect(7, 7, none)) << "an up-to-date spare needs nothing";
  EXPECT_EQ(none.entries_size(), 0);
  wire::EntryFeed all;
  ASSERT_TRUE(recent.Collect(0, 7, all));
  EXPECT_EQ(Indexes(all), (std::vector<uint64_t>{1, 2, 4, 5, 7}));
}

TEST(RecentEntries, ForgetsTheOldestAndSaysSoForThem) {
  RecentEntries recent(3, 1 << 20);
  for (uint64_t index = 1; index <= 5; ++index) recent.Record(index, "x");
  EXPECT_EQ(recent.size(), 3u);
  wire::EntryFeed feed;
  EXPECT_FALSE(recent.Collect(1, 5, feed)) << "entry 2 is gone";
  EXPECT_EQ(feed.entries_size(), 0);
  ASSERT_TRUE(recent.Collect(2, 5, feed));
  EXPECT_EQ(Indexes(feed), (std::vector<uint64_t>{3, 4, 5}));
}

TEST(RecentEntries, KeepsWithinItsByteBudget) {
  RecentEntries recent(100, 10);
  for (uint64_t index = 1; index <= 4; ++index) recent.Record(index, "abcd");
  EXPECT_LE(recent.bytes(), 10u);
  wire::EntryFeed feed;
  EXPECT_FALSE(recent.Collect(1, 4, feed));
  EXPECT_TRUE(recent.Collect(2, 4, feed));
}

TEST(RecentEntries, AfterARestoreOnlyWhatFollowsIsServed) {
  RecentEntries recent(100, 1 << 20);
  for (uint64_t index = 1; index <= 3; ++index) recent.Record(index, "x");
  recent.Restored(10);
  wire::EntryFeed feed;
  EXPECT_FALSE(recent.Collect(3, 10, feed));
  EXPECT_TRUE(recent.Collect(10, 10, feed));
  // A restore whose index is not known yet: nothing is served until the next entry.
  recent.Restored(0);
  EXPECT_FALSE(recent.Collect(10, 10, feed));
  recent.Record(14, "y");
  wire::EntryFeed after;
  ASSERT_TRUE(recent.Collect(13, 14, after));
  EXPECT_EQ(Indexes(after), (std::vector<uint64_t>{14}));
  EXPECT_FALSE(recent.Collect(12, 14, after));
}

}  // namespace
}  // namespace synod
