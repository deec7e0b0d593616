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

wire::Command Liveness(const std::string& id, wire::MemberState state) {
  wire::Command command;
  auto* entry = command.mutable_member_liveness()->add_entries();
  entry->set_id(id);
  entry->set_state(state);
  return command;
}

std::vector<std::string> RankKeys(const ClusterState& state) {
  std::vector<std::string> keys;
  for (const auto& holder : state.ranks().holders()) keys.push_back(holder.key());
  return keys;
}

TEST(ClusterState, MembersAreRankedWhileTheyAreInTheCluster) {
  ClusterState state;
  state.Apply(EncodeCommands({Join("aa", 1), Join("bb", 2), Join("cc", 3)}));
  using Keys = std::vector<std::string>;
  EXPECT_EQ(RankKeys(state), (Keys{"aa", "bb", "cc"}));
  EXPECT_EQ(state.ranks().holders()[0].address(), "127.0.0.2:0");

  state.Apply(EncodeCommands({Liveness("bb", wire::SUSPECT)}));
  EXPECT_EQ(RankKeys(state), (Keys{"aa", "bb", "cc"})) << "suspect keeps its rank";
  state.Apply(EncodeCommands({Liveness("bb", wire::DEAD)}));
  EXPECT_EQ(RankKeys(state), (Keys{"aa", "cc"}));
  state.Apply(EncodeCommands({Liveness("bb", wire::ALIVE)}));
  EXPECT_EQ(RankKeys(state), (Keys{"aa", "cc", "bb"})) << "back from the dead: ranked last";
  state.Apply(EncodeCommands({Join("aa", 4)}));
  EXPECT_EQ(RankKeys(state), (Keys{"aa", "cc", "bb"})) << "a restart keeps the rank";

  wire::Command leave;
  leave.mutable_member_leave()->set_id("aa");
  state.Apply(EncodeCommands({leave}));
  EXPECT_EQ(RankKeys(state), (Keys{"cc", "bb"}));
}

TEST(ClusterState, ExternalClientsAndCommandsGoThroughTheLog) {
  ClusterState state;
  int changes = 0;
  state.AddChangeListener([&changes] { ++changes; });
  wire::Command assign;
  assign.mutable_assign_rank()->set_address("http://127.0.0.9:5001/");
  wire::Command send;
  send.mutable_send_command()->set_sender("aa");
  send.mutable_send_command()->set_text("START_TRANSMIT");
  auto results = state.Apply(EncodeCommands({Join("aa", 1), assign, assign, send}));
  EXPECT_EQ(changes, 1) << "once per entry";
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[1].value(), "1");
  EXPECT_EQ(results[2].value(), "1") << "idempotent";
  ASSERT_TRUE(results[3].ok()) << results[3].error();
  const std::optional<wire::CommandRecord> record =
      state.ranks().FindCommand(std::stoull(results[3].value()));
  ASSERT_TRUE(record.has_value());
  ASSERT_EQ(record->deliveries_size(), 1);
  EXPECT_EQ(record->deliveries(0).recipient(), "127.0.0.9:5001");
  EXPECT_EQ(record->deliveries(0).address(), "http://127.0.0.9:5001/");

  wire::Command bad;
  bad.mutable_assign_rank()->set_address("no port");
  EXPECT_FALSE(state.Apply(EncodeCommands({bad}))[0].ok());
  EXPECT_EQ(changes, 2);
  wire::Command unassign;
  unassign.mutable_unassign_rank()->set_address("127.0.0.9:5001");
  auto unassigned = state.Apply(EncodeCommands({unassign}));
  EXPECT_EQ(unassigned[0].value(), "unassigned");
  EXPECT_TRUE(RankState::IsSettled(*state.ranks().FindCommand(record->id())));

  ClusterState copy;
  ASSERT_TRUE(copy.Restore(state.Snapshot()).ok());
  EXPECT_EQ(copy.Fingerprint(), state.Fingerprint());
}

}  // namespace
}  // namespace synod
