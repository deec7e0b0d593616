#include "consensus/members_state.h"

#include <gtest/gtest.h>

#include "consensus/raft_engine.h"
#include "consensus/replicated_state.h"

namespace synod {
namespace {

wire::MemberRecord Record(const std::string& id) {
  wire::MemberRecord member;
  member.set_id(id);
  member.set_name("n-" + id);
  member.set_ip("127.0.0.2");
  member.set_raft_id(RaftIdFromNodeId(id));
  member.set_role(wire::VOTER);
  (*member.mutable_modules())["members"] = 1;
  return member;
}

Result<std::string> Apply(MembersState& state, const Proposal& proposal, int64_t at = 0) {
  return state.Apply(ApplyContext{1, at}, proposal.version, proposal.body);
}

wire::MemberLiveness Liveness(const std::string& id, wire::MemberState state) {
  wire::MemberLiveness liveness;
  auto* entry = liveness.add_entries();
  entry->set_id(id);
  entry->set_state(state);
  return liveness;
}

TEST(MembersState, JoinOrderTimeFromTheEntryAndARejoinKeepsItsPlace) {
  MembersState state;
  ASSERT_TRUE(Apply(state, MembersState::Found("c1")).ok());
  for (const char* id : {"aa", "bb", "cc"})
    ASSERT_TRUE(Apply(state, MembersState::Join(Record(id)), 10).ok());
  wire::MemberRecord moved = Record("bb");
  moved.set_ip("127.0.0.9");
  ASSERT_TRUE(Apply(state, MembersState::Join(moved), 99).ok());
  auto members = state.MembersInJoinOrder();
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[1]->id(), "bb");
  EXPECT_EQ(members[1]->ip(), "127.0.0.9");
  EXPECT_EQ(members[1]->joined_at_nanos(), 10) << "time comes from the entry";
  EXPECT_EQ(members[1]->last_heartbeat_nanos(), 99);
  EXPECT_EQ(state.cluster_id(), "c1");
  ASSERT_TRUE(Apply(state, MembersState::Leave("aa")).ok());
  EXPECT_EQ(state.FindMember("aa")->state(), wire::LEFT);
  EXPECT_EQ(state.FindMemberByRaftId(RaftIdFromNodeId("cc"))->id(), "cc");
}

TEST(MembersState, BadCommandsAreRefusedWithCodesAndChangeNothing) {
  MembersState state;
  Apply(state, MembersState::Found("c1"));
  Result<std::string> again = Apply(state, MembersState::Found("c2"));
  EXPECT_EQ(again.code(), StatusCode::kConflict);
  EXPECT_EQ(Apply(state, MembersState::Leave("nobody")).code(), StatusCode::kNotFound);
  EXPECT_EQ(Apply(state, MembersState::Join(wire::MemberRecord{})).code(), StatusCode::kInvalid);
  EXPECT_EQ(state.Apply(ApplyContext{}, 1, "\xff\xff").code(), StatusCode::kInvalid);
  EXPECT_EQ(state.cluster_id(), "c1");
  EXPECT_TRUE(state.MembersInJoinOrder().empty());
}

TEST(MembersState, PublishesJoinsSuspicionsDeathsRevivalsAndLeaves) {
  MembersState state;
  std::vector<std::string> events;
  state.Subscribe([&](const MemberEvent& event) {
    static const char* kNames[] = {"joined",  "rejoined", "dead", "revived",
                                   "suspect", "alive",    "left"};
    events.push_back(std::string(kNames[static_cast<int>(event.kind)]) + " " + event.member.id() +
                     " @" + std::to_string(event.at_nanos));
  });
  Apply(state, MembersState::Join(Record("aa")), 1);
  Apply(state, MembersState::Join(Record("aa")), 2);
  Apply(state, MembersState::Liveness(Liveness("aa", wire::SUSPECT)), 3);
  Apply(state, MembersState::Liveness(Liveness("aa", wire::DEAD)), 4);
  Apply(state, MembersState::Liveness(Liveness("aa", wire::DEAD)), 5);
  Apply(state, MembersState::Liveness(Liveness("aa", wire::ALIVE)), 6);
  Apply(state, MembersState::Leave("aa"), 7);
  Apply(state, MembersState::Join(Record("aa")), 8);
  Apply(state, MembersState::Liveness(Liveness("aa", wire::SUSPECT)), 9);
  Apply(state, MembersState::Liveness(Liveness("aa", wire::SUSPECT)), 10);
  Apply(state, MembersState::Liveness(Liveness("aa", wire::ALIVE)), 11);
  EXPECT_EQ(events, (std::vector<std::string>{"joined aa @1", "rejoined aa @2", "suspect aa @3",
                                              "dead aa @4", "revived aa @6", "left aa @7",
                                              "joined aa @8", "suspect aa @9", "alive aa @11"}));
}

TEST(MembersState, TheFeatureLevelIsWhatEveryMemberThatHasNotLeftRuns) {
  MembersState state;
  wire::MemberRecord old_build = Record("aa");
  wire::MemberRecord new_build = Record("bb");
  (*new_build.mutable_modules())["timers"] = 2;
  (*old_build.mutable_modules())["timers"] = 1;
  Apply(state, MembersState::Join(old_build));
  Apply(state, MembersState::Join(new_build));
  EXPECT_EQ(state.FeatureLevel("timers"), 1u);
  EXPECT_EQ(state.FeatureLevel("files"), 0u) << "nobody runs it";
  Apply(state, MembersState::Leave("aa"));
  EXPECT_EQ(state.FeatureLevel("timers"), 2u) << "a member that left does not hold it back";
}

TEST(MembersState, RestoresThroughTheRegistryExactly) {
  MembersState a;
  ReplicatedState registry_a;
  registry_a.Register(a);
  Apply(a, MembersState::Found("c1"));
  for (const char* id : {"aa", "bb", "cc"}) Apply(a, MembersState::Join(Record(id)), 5);
  Apply(a, MembersState::Liveness(Liveness("bb", wire::DEAD)));
  std::string bytes;
  auto producer = registry_a.Capture();
  while (!producer->Produce(bytes, 100)) {
  }
  MembersState b;
  ReplicatedState registry_b;
  registry_b.Register(b);
  ASSERT_TRUE(registry_b.Restore(bytes).ok());
  EXPECT_EQ(b.cluster_id(), "c1");
  ASSERT_EQ(b.MembersInJoinOrder().size(), 3u);
  EXPECT_EQ(b.FindMember("bb")->state(), wire::DEAD);
  EXPECT_EQ(b.FindMember("cc")->join_order(), 2u);
  // Both go on identically: the next member gets the same place.
  Apply(a, MembersState::Join(Record("dd")));
  Apply(b, MembersState::Join(Record("dd")));
  EXPECT_EQ(b.FindMember("dd")->join_order(), a.FindMember("dd")->join_order());
  EXPECT_EQ(b.FindMember("dd")->join_order(), 3u);
}

}  // namespace
}  // namespace synod
