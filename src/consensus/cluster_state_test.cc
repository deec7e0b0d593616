#include "consensus/cluster_state.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

wire::Command Join(const std::string& id, int64_t at) {
  wire::Command command;
  command.set_at_nanos(at);
  wire::MemberRecord* member = command.mutable_member_join()->mutable_member();
  member->set_id(id);
  member->set_name("n-" + id);
  member->set_ip("127.0.0.2");
  member->set_raft_id(RaftIdFromNodeId(id));
  member->set_role(wire::VOTER);
  return command;
}

wire::Command Put(const std::string& key, const std::string& value) {
  wire::Command command;
  command.mutable_kv_put()->set_key(key);
  command.mutable_kv_put()->set_value(value);
  return command;
}

TEST(ClusterState, AppliesABatchInOrderWithOneResultPerCommand) {
  ClusterState state;
  wire::Command found;
  found.mutable_found_cluster()->set_cluster_id("c1");
  auto results =
      state.Apply(EncodeCommands({found, Join("aa", 10), Put("k", "v1"), Put("k", "v2")}));
  ASSERT_EQ(results.size(), 4u);
  for (const auto& result : results) EXPECT_TRUE(result.ok()) << result.error();
  EXPECT_EQ(state.cluster_id(), "c1");
  EXPECT_EQ(state.Get("k").value(), "v2");
  ASSERT_NE(state.FindMember("aa"), nullptr);
  EXPECT_EQ(state.FindMember("aa")->joined_at_nanos(), 10) << "time comes from the command";
}

TEST(ClusterState, JoinOrderAndRejoinKeepsTheRank) {
  ClusterState state;
  state.Apply(EncodeCommands({Join("aa", 1), Join("bb", 2), Join("cc", 3)}));
  state.Apply(EncodeCommands({Join("bb", 9)}));  // bb restarted and rejoined
  auto members = state.MembersInJoinOrder();
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0]->id(), "aa");
  EXPECT_EQ(members[1]->id(), "bb");
  EXPECT_EQ(members[1]->joined_at_nanos(), 2);
  EXPECT_EQ(members[2]->id(), "cc");
  wire::Command leave;
  leave.mutable_member_leave()->set_id("aa");
  state.Apply(EncodeCommands({leave}));
  EXPECT_EQ(state.FindMember("aa")->state(), wire::LEFT);
}

TEST(ClusterState, RejectsBadCommandsWithoutChangingState) {
  ClusterState state;
  wire::Command found;
  found.mutable_found_cluster()->set_cluster_id("c1");
  state.Apply(EncodeCommands({found}));
  found.mutable_found_cluster()->set_cluster_id("c2");
  auto results = state.Apply(EncodeCommands({found, Put("", "x"), wire::Command{}}));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_NE(results[0].error().find("already founded"), std::string::npos);
  EXPECT_FALSE(results[1].ok());
  EXPECT_EQ(results[2].error(), "unknown command kind");
  EXPECT_EQ(state.cluster_id(), "c1");
  EXPECT_EQ(state.Get("").has_value(), false);
}

TEST(ClusterState, GarbageAndFutureEntriesAreRefused) {
  ClusterState state;
  auto garbage = state.Apply("\xff\xff\xff");
  ASSERT_EQ(garbage.size(), 1u);
  EXPECT_FALSE(garbage[0].ok());
  wire::CommandBatch future;
  future.set_version(99);
  *future.add_commands() = Put("k", "v");
  auto refused = state.Apply(future.SerializeAsString());
  EXPECT_NE(refused[0].error().find("version 99"), std::string::npos);
  EXPECT_FALSE(state.Get("k").has_value());
}

TEST(ClusterState, SnapshotRestoreIsExactAndDeterministic) {
  ClusterState a;
  wire::Command found;
  found.mutable_found_cluster()->set_cluster_id("c1");
  a.Apply(EncodeCommands({found, Join("aa", 1), Join("bb", 2)}));
  for (int i = 0; i < 100; ++i) a.Apply(EncodeCommands({Put("k" + std::to_string(i), "v")}));
  ClusterState b;
  ASSERT_TRUE(b.Restore(a.Snapshot()).ok());
  EXPECT_EQ(a.Snapshot(), b.Snapshot());
  // Both go on identically.
  a.Apply(EncodeCommands({Join("cc", 3)}));
  b.Apply(EncodeCommands({Join("cc", 3)}));
  EXPECT_EQ(a.Fingerprint(), b.Fingerprint());
  EXPECT_EQ(b.FindMember("cc")->join_order(), 2u);
  EXPECT_FALSE(b.Restore("garbage\xff").ok());
}

}  // namespace
}  // namespace synod
