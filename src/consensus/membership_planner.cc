#include "consensus/membership_planner.h"

#include <optional>

namespace synod {

wire::Role ToWireRole(RaftRole role) {
  switch (role) {
    case RaftRole::kVoter:
      return wire::VOTER;
    case RaftRole::kStandby:
      return wire::STANDBY;
    case RaftRole::kSpare:
      return wire::SPARE;
  }
  return wire::SPARE;
}

std::optional<RaftRole> RoleIn(const std::vector<RaftServer>& configuration, uint64_t raft_id) {
  for (const RaftServer& server : configuration) {
    if (server.id == raft_id) return server.role;
  }
  return std::nullopt;
}

namespace {
unsigned Count(const std::vector<RaftServer>& configuration, RaftRole role) {
  unsigned count = 0;
  for (const RaftServer& server : configuration) count += server.role == role;
  return count;
}
}  // namespace

RaftRole RoleForNewMember(const std::vector<RaftServer>& configuration, RoleTargets targets) {
  if (Count(configuration, RaftRole::kVoter) < targets.voters) return RaftRole::kVoter;
  if (Count(configuration, RaftRole::kStandby) < targets.standbys) return RaftRole::kStandby;
  return RaftRole::kSpare;
}

std::vector<wire::MemberLiveness::Entry> PlanLiveness(const MembersState& state,
                                                      std::map<std::string, MonoTime>& last_heard,
                                                      MonoTime now, int64_t wall_now_nanos,
                                                      bool refresh, const LivenessRules& rules) {
  std::vector<wire::MemberLiveness::Entry> entries;
  for (const auto* member : state.MembersInJoinOrder()) {
    if (member->state() == wire::LEFT) continue;
    auto [heard, inserted] = last_heard.try_emplace(member->id(), now);
    const Nanos silence = now - heard->second;
    const wire::MemberState next = silence >= rules.dead_after      ? wire::DEAD
                                   : silence >= rules.suspect_after ? wire::SUSPECT
                                                                    : wire::ALIVE;
    if (next == member->state() && !refresh) continue;
    wire::MemberLiveness::Entry entry;
    entry.set_id(member->id());
    entry.set_state(next);
    entry.set_last_heartbeat_nanos(wall_now_nanos - silence.count());
    entries.push_back(std::move(entry));
  }
  return entries;
}

MembershipStep PlanMembership(const MembersState& state,
                              const std::vector<RaftServer>& configuration, RoleTargets targets,
                              const std::string& self_id) {
  auto role_of = [&](uint64_t raft_id) { return RoleIn(configuration, raft_id); };
  const unsigned voters = Count(configuration, RaftRole::kVoter);
  const auto members = state.MembersInJoinOrder();

  for (const auto* member : members) {
    auto role = role_of(member->raft_id());
    if (member->state() != wire::LEFT && role && ToWireRole(*role) != member->role()) {
      return {MembershipStep::Kind::kRecordRole, member, *role};
    }
  }
  for (const auto* member : members) {
    if (member->state() == wire::LEFT && role_of(member->raft_id()) && member->id() != self_id) {
      return {MembershipStep::Kind::kRemoveLeaver, member, RaftRole::kSpare};
    }
  }
  const wire::MemberRecord* dead_voter = nullptr;
  const wire::MemberRecord* live_standby = nullptr;  // the earliest joined
  const wire::MemberRecord* last_live_standby = nullptr;
  const wire::MemberRecord* live_spare = nullptr;  // the earliest joined
  unsigned live_standbys = 0;
  for (const auto* member : members) {
    auto role = role_of(member->raft_id());
    if (!role) continue;
    const bool alive = member->state() == wire::ALIVE;
    if (*role == RaftRole::kVoter && member->state() == wire::DEAD && !dead_voter) {
      dead_voter = member;
    }
    if (*role == RaftRole::kStandby && alive) {
      if (!live_standby) live_standby = member;
      last_live_standby = member;
      ++live_standbys;
    }
    if (*role == RaftRole::kSpare && alive && !live_spare) live_spare = member;
  }
  if (dead_voter != nullptr && live_standby != nullptr) {
    return {MembershipStep::Kind::kDemoteVoter, dead_voter, RaftRole::kStandby};
  }
  if (voters < targets.voters && live_standby != nullptr) {
    return {MembershipStep::Kind::kPromoteStandby, live_standby, RaftRole::kVoter};
  }
  // A spare becomes a voter by way of standby, where libraft catches it up.
  const bool voter_needed = dead_voter != nullptr || voters < targets.voters;
  if (live_spare != nullptr && (live_standbys < targets.standbys || voter_needed)) {
    return {MembershipStep::Kind::kPromoteSpare, live_spare, RaftRole::kStandby};
  }
  if (live_standbys > targets.standbys && !voter_needed) {
    return {MembershipStep::Kind::kDemoteStandby, last_live_standby, RaftRole::kSpare};
  }
  return {};
}

}  // namespace synod
