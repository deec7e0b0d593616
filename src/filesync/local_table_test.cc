#include "filesync/local_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace synod {
namespace {

wire::LocalFileRecord Present(const std::string& path, uint64_t synced_version = 0) {
  wire::LocalFileRecord record;
  record.set_path(path);
  record.set_present(true);
  record.set_kind(wire::KIND_FILE);
  record.set_hash("h-" + path);
  record.add_blocks("b-" + path);
  record.set_synced_version(synced_version);
  record.set_synced_present(synced_version > 0);
  if (synced_version > 0) record.set_synced_key("k-" + path);
  return record;
}

TEST(LocalTable, PathsUnderAPrefixAreItAndItsDescendants) {
  LocalTable table;
  for (const char* path : {"a", "a/b", "a/b/c", "ab", "b.txt"}) table.Put(Present(path));
  EXPECT_EQ(table.PathsUnder("a"), (std::vector<std::string>{"a", "a/b", "a/b/c"}));
  EXPECT_EQ(table.PathsUnder("a/b"), (std::vector<std::string>{"a/b", "a/b/c"}));
  EXPECT_EQ(table.PathsUnder("ab"), (std::vector<std::string>{"ab"}));
  EXPECT_TRUE(table.PathsUnder("c").empty());
  // The folder itself: everything (a start-up scan finds the files deleted while it was down).
  EXPECT_EQ(table.PathsUnder(""), (std::vector<std::string>{"a", "a/b", "a/b/c", "ab", "b.txt"}));
}

TEST(LocalTable, ForgettingTheSyncedStateKeepsWhatTheDiskHolds) {
  LocalTable table;
  table.Put(Present("a", 7));
  table.ForgetSyncedState();
  const wire::LocalFileRecord* a = table.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->synced_version(), 0u);
  EXPECT_FALSE(a->synced_present());
  EXPECT_TRUE(a->synced_key().empty());
  EXPECT_TRUE(a->present());
  EXPECT_EQ(a->hash(), "h-a");
  EXPECT_TRUE(table.FindBlock("b-a").has_value());
}

TEST(LocalTable, ATableSurvivesSerializationWithItsCluster) {
  LocalTable table;
  table.Put(Present("a/b", 3));
  LocalTable loaded;
  std::string cluster_id;
  ASSERT_TRUE(loaded.Load(table.Serialize("c-1"), &cluster_id).ok());
  EXPECT_EQ(cluster_id, "c-1");
  ASSERT_NE(loaded.Find("a/b"), nullptr);
  EXPECT_EQ(loaded.Find("a/b")->synced_version(), 3u);
  EXPECT_FALSE(loaded.Load("not a table", &cluster_id).ok());
}

}  // namespace
}  // namespace synod
