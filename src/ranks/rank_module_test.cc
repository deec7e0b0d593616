#include "ranks/rank_module.h"

#include <gtest/gtest.h>

#include "consensus/raft_engine.h"
#include "consensus/replicated_state.h"

namespace synod {
namespace {

// A node's replicated state with the two modules, applied one operation per entry.
struct Node {
  Node() {
    state.Register(members);
    state.Register(ranks);
  }
  Result<std::string> Apply(const Proposal& proposal, int64_t at = 0) {
    wire::Op op;
    op.set_module(proposal.module);
    op.set_version(proposal.version);
    op.set_body(proposal.body);
    auto results = state.Apply(++index, EncodeEntry(at, {op}));
    if (!results.ok()) return results.status();
    const wire::OpResult& result = results.value()[0];
    if (result.code() != 0) return Status(static_cast<StatusCode>(result.code()), result.error());
    return result.value();
  }
  std::vector<std::string> RankKeys() const {
    std::vector<std::string> keys;
    for (const auto& holder : ranks.ranks().holders()) keys.push_back(holder.key());
    return keys;
  }
  MembersState members;
  RankModule ranks{members};
  ReplicatedState state;
  uint64_t index = 0;
};

Proposal Join(const std::string& id) {
  wire::MemberRecord member;
  member.set_id(id);
  member.set_ip("127.0.0.2");
  member.set_api_port(7400);
  member.set_raft_id(RaftIdFromNodeId(id));
  return MembersState::Join(member);
}

Proposal Liveness(const std::string& id, wire::MemberState state) {
  wire::MemberLiveness liveness;
  auto* entry = liveness.add_entries();
  entry->set_id(id);
  entry->set_state(state);
  return MembersState::Liveness(liveness);
}

Proposal Assign(const std::string& address) {
  wire::RanksCommand command;
  command.mutable_assign_rank()->set_address(address);
  return RankModule::Make(command);
}

using Keys = std::vector<std::string>;

TEST(RankModule, MembersAreRankedWhileTheyAreInTheCluster) {
  Node node;
  for (const char* id : {"aa", "bb", "cc"}) node.Apply(Join(id), 1);
  EXPECT_EQ(node.RankKeys(), (Keys{"aa", "bb", "cc"}));
  EXPECT_EQ(node.ranks.ranks().holders()[0].address(), "127.0.0.2:7400");
  node.Apply(Liveness("bb", wire::SUSPECT));
  EXPECT_EQ(node.RankKeys(), (Keys{"aa", "bb", "cc"})) << "suspect keeps its rank";
  node.Apply(Liveness("bb", wire::DEAD));
  EXPECT_EQ(node.RankKeys(), (Keys{"aa", "cc"}));
  node.Apply(Liveness("bb", wire::ALIVE));
  EXPECT_EQ(node.RankKeys(), (Keys{"aa", "cc", "bb"})) << "back from the dead: ranked last";
  node.Apply(Join("aa"), 4);
  EXPECT_EQ(node.RankKeys(), (Keys{"aa", "cc", "bb"})) << "a restart keeps the rank";
  node.Apply(MembersState::Leave("aa"));
  EXPECT_EQ(node.RankKeys(), (Keys{"cc", "bb"}));
}

TEST(RankModule, ExternalClientsAndCommandsRoundTripThroughASnapshot) {
  Node node;
  node.Apply(Join("aa"), 1);
  EXPECT_EQ(node.Apply(Assign("http://127.0.0.9:5001/")).value(), "1");
  EXPECT_EQ(node.Apply(Assign("127.0.0.9:5001")).value(), "1") << "idempotent";
  EXPECT_EQ(node.Apply(Assign("no port")).code(), StatusCode::kInvalid);
  EXPECT_EQ(node.Apply(Assign("127.0.0.2:7400")).value(), "0") << "a member's own address";
  wire::RanksCommand send;
  send.mutable_send_command()->set_sender("aa");
  send.mutable_send_command()->set_text("START_TRANSMIT");
  send.mutable_send_command()->set_request_id("r1");
  Result<std::string> sent = node.Apply(RankModule::Make(send), 77);
  ASSERT_TRUE(sent.ok()) << sent.error();
  const auto record = node.ranks.ranks().FindCommand(std::stoull(sent.value()));
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->sent_at_nanos(), 77) << "the entry's time";
  ASSERT_EQ(record->deliveries_size(), 1);
  EXPECT_EQ(record->deliveries(0).recipient(), "127.0.0.9:5001");

  std::string bytes;
  auto producer = node.state.Capture();
  while (!producer->Produce(bytes, 1 << 20)) {
  }
  Node copy;
  ASSERT_TRUE(copy.state.Restore(bytes).ok());
  EXPECT_EQ(copy.RankKeys(), node.RankKeys());
  EXPECT_EQ(copy.ranks.ranks().last_command_id(), node.ranks.ranks().last_command_id());
  EXPECT_EQ(copy.ranks.ranks().pending_count(), 1u);
  EXPECT_GT(copy.ranks.ranks().ranks_version(), 0u);
  // Both go on alike: the restored members module still drives the ranks.
  node.Apply(Liveness("aa", wire::DEAD));
  copy.Apply(Liveness("aa", wire::DEAD));
  EXPECT_EQ(copy.RankKeys(), (Keys{"127.0.0.9:5001"}));
  EXPECT_EQ(copy.RankKeys(), node.RankKeys());
}

}  // namespace
}  // namespace synod
