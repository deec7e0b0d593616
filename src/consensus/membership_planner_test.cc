#include "consensus/membership_planner.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

using std::chrono::seconds;

void Apply(MembersState& state, const Proposal& proposal) {
  ASSERT_TRUE(state.Apply(ApplyContext{}, proposal.version, proposal.body).ok());
}

class MembershipPlannerTest : public ::testing::Test {
 protected:
  // Members "a".."e" (raft ids 0xa..0xe) join in that order.
  void SetUp() override {
    for (const char* id : {"a", "b", "c", "d", "e"}) {
      wire::MemberRecord member;
      member.set_id(id);
      member.set_name(std::string("n-") + id);
      member.set_raft_id(RaftIdFromNodeId(id));
      member.set_role(std::string(id) < "d" ? wire::VOTER : wire::STANDBY);
      Apply(state_, MembersState::Join(member));
    }
    for (const char* id : {"a", "b", "c"})
      config_.push_back({RaftIdFromNodeId(id), "", RaftRole::kVoter});
    for (const char* id : {"d", "e"})
      config_.push_back({RaftIdFromNodeId(id), "", RaftRole::kStandby});
  }

  void SetState(const std::string& id, wire::MemberState state) {
    wire::MemberLiveness liveness;
    auto* entry = liveness.add_entries();
    entry->set_id(id);
    entry->set_state(state);
    Apply(state_, MembersState::Liveness(liveness));
  }

  MembersState state_;
  std::vector<RaftServer> config_;
  const MonoTime t0_{seconds(100)};
};

TEST_F(MembershipPlannerTest, SilenceMakesSuspectThenDeadAndNewLeadersGiveGrace) {
  std::map<std::string, MonoTime> heard;
  const LivenessRules rules{seconds(2), seconds(5)};
  // A new leader has heard from nobody: everyone gets a grace period, nothing changes.
  EXPECT_TRUE(PlanLiveness(state_, heard, t0_, 0, false, rules).empty());
  EXPECT_EQ(heard.size(), 5u);
  for (auto& [id, at] : heard) {
    if (id != "b") at = t0_ + seconds(3);  // everyone but b keeps talking
  }
  auto entries = PlanLiveness(state_, heard, t0_ + seconds(3), 3'000'000'000, false, rules);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].id(), "b");
  EXPECT_EQ(entries[0].state(), wire::SUSPECT);
  EXPECT_EQ(entries[0].last_heartbeat_nanos(), 0) << "heard from at t0, wall time 0 then";
  SetState("b", wire::SUSPECT);
  for (auto& [id, at] : heard) {
    if (id != "b") at = t0_ + seconds(5);
  }
  entries = PlanLiveness(state_, heard, t0_ + seconds(5), 0, false, rules);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].state(), wire::DEAD);
  // A refresh lists everyone, changed or not.
  EXPECT_EQ(PlanLiveness(state_, heard, t0_ + seconds(5), 0, true, rules).size(), 5u);
}

TEST_F(MembershipPlannerTest, HealthyClusterNeedsNothing) {
  EXPECT_EQ(PlanMembership(state_, config_, {3, 2}, "a").kind, MembershipStep::Kind::kNone);
}

TEST_F(MembershipPlannerTest, DeadVoterIsDemotedThenAStandbyPromoted) {
  SetState("b", wire::DEAD);
  MembershipStep step = PlanMembership(state_, config_, {3, 2}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kDemoteVoter);
  EXPECT_EQ(step.member->id(), "b");
  config_[1].role = RaftRole::kStandby;  // done
  step = PlanMembership(state_, config_, {3, 2}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kRecordRole) << "the record follows first";
  EXPECT_EQ(step.member->id(), "b");
  Apply(state_, MembersState::SetRole("b", wire::STANDBY));
  step = PlanMembership(state_, config_, {3, 2}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kPromoteStandby);
  EXPECT_EQ(step.member->id(), "d") << "the earliest live standby";
}

TEST_F(MembershipPlannerTest, NoLiveStandbyMeansTheDeadVoterStays) {
  SetState("b", wire::DEAD);
  SetState("d", wire::DEAD);
  SetState("e", wire::SUSPECT);
  EXPECT_EQ(PlanMembership(state_, config_, {3, 2}, "a").kind, MembershipStep::Kind::kNone);
}

TEST_F(MembershipPlannerTest, LeaversAreRemovedButNeverTheLeaderItself) {
  Apply(state_, MembersState::Leave("c"));
  MembershipStep step = PlanMembership(state_, config_, {3, 2}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kRemoveLeaver);
  EXPECT_EQ(step.member->id(), "c");
  EXPECT_EQ(PlanMembership(state_, config_, {3, 2}, "c").kind, MembershipStep::Kind::kNone);
}

TEST_F(MembershipPlannerTest, FiveVotersWantedPromotesBothStandbys) {
  MembershipStep step = PlanMembership(state_, config_, {5, 2}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kPromoteStandby);
  EXPECT_EQ(step.member->id(), "d");
}

class SparesTest : public MembershipPlannerTest {
 protected:
  // "d" and "e" are spares; no standby is wanted.
  void SetUp() override {
    MembershipPlannerTest::SetUp();
    for (const char* id : {"d", "e"}) SetRole(id, RaftRole::kSpare);
  }
  void SetRole(const std::string& id, RaftRole role) {
    for (RaftServer& server : config_) {
      if (server.id == RaftIdFromNodeId(id)) server.role = role;
    }
    Apply(state_, MembersState::SetRole(id, ToWireRole(role)));
  }
};

TEST_F(SparesTest, NewMembersAreSparesOnceVotersAndStandbysAreEnough) {
  EXPECT_EQ(RoleForNewMember(config_, {3, 0}), RaftRole::kSpare);
  EXPECT_EQ(RoleForNewMember(config_, {3, 1}), RaftRole::kStandby);
  EXPECT_EQ(RoleForNewMember(config_, {4, 0}), RaftRole::kVoter);
  EXPECT_EQ(PlanMembership(state_, config_, {3, 0}, "a").kind, MembershipStep::Kind::kNone);
}

TEST_F(SparesTest, ADeadVoterIsReplacedByASpareByWayOfStandby) {
  SetState("b", wire::DEAD);
  MembershipStep step = PlanMembership(state_, config_, {3, 0}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kPromoteSpare);
  EXPECT_EQ(step.member->id(), "d") << "the earliest live spare";
  SetRole("d", RaftRole::kStandby);
  step = PlanMembership(state_, config_, {3, 0}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kDemoteVoter);
  EXPECT_EQ(step.member->id(), "b");
  SetRole("b", RaftRole::kStandby);
  step = PlanMembership(state_, config_, {3, 0}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kPromoteStandby);
  EXPECT_EQ(step.member->id(), "d");
  SetRole("d", RaftRole::kVoter);
  EXPECT_EQ(PlanMembership(state_, config_, {3, 0}, "a").kind, MembershipStep::Kind::kNone)
      << "the dead standby left behind is no live standby too many";
  // It comes back: one standby more than wanted, so it goes back to being a spare.
  SetState("b", wire::ALIVE);
  step = PlanMembership(state_, config_, {3, 0}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kDemoteStandby);
  EXPECT_EQ(step.member->id(), "b");
}

TEST_F(SparesTest, SparesFillTheStandbysWanted) {
  MembershipStep step = PlanMembership(state_, config_, {3, 1}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kPromoteSpare);
  EXPECT_EQ(step.member->id(), "d");
  SetState("d", wire::SUSPECT);
  step = PlanMembership(state_, config_, {3, 1}, "a");
  ASSERT_EQ(step.kind, MembershipStep::Kind::kPromoteSpare);
  EXPECT_EQ(step.member->id(), "e") << "only a live spare";
}

}  // namespace
}  // namespace synod
