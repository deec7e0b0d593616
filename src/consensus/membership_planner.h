// The leader's membership decisions, as pure functions of the replicated state, the Raft
// configuration and the time each member was last heard from. No I/O and no clock reads: the
// ConsensusService carries the decisions out, and tests drive these with made-up times.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "consensus/members_state.h"
#include "consensus/raft_engine.h"
#include "core/clock.h"

namespace synod {

struct LivenessRules {
  Nanos suspect_after = std::chrono::seconds(2);
  Nanos dead_after = std::chrono::seconds(5);
};

// The liveness entries to commit: every member whose state changed, and, when `refresh` is
// set, every member (so that recorded heartbeat times stay fresh). Members never heard from
// are timed from `now` (a new leader gives everyone a grace period); `last_heard` gains them.
std::vector<wire::MemberLiveness::Entry> PlanLiveness(const MembersState& state,
                                                      std::map<std::string, MonoTime>& last_heard,
                                                      MonoTime now, int64_t wall_now_nanos,
                                                      bool refresh, const LivenessRules& rules);

struct MembershipStep {
  enum class Kind {
    kNone,
    kRecordRole,      // the member record says another role than the configuration
    kRemoveLeaver,    // a member that left is still in the configuration
    kDemoteVoter,     // a dead voter, with a live standby to replace it
    kPromoteStandby,  // fewer voters than wanted, and a live standby
    kPromoteSpare,    // fewer live standbys than wanted, or a voter to replace and none
    kDemoteStandby    // more live standbys than wanted (one that was dead is back)
  };
  Kind kind = Kind::kNone;
  const wire::MemberRecord* member = nullptr;
  RaftRole role = RaftRole::kVoter;  // for kRecordRole: the configuration's role
};

// How many members should hold each Raft role; the other members are spares.
struct RoleTargets {
  unsigned voters = 3;
  unsigned standbys = 2;
};

// The next configuration step, one at a time, in the order above.
MembershipStep PlanMembership(const MembersState& state,
                              const std::vector<RaftServer>& configuration, RoleTargets targets,
                              const std::string& self_id);

wire::Role ToWireRole(RaftRole role);
// The role of a server in a configuration; nothing when it is not in it.
std::optional<RaftRole> RoleIn(const std::vector<RaftServer>& configuration, uint64_t raft_id);
// A joining member is a voter while there are fewer voters than wanted, else a standby while
// there are fewer standbys than wanted, else a spare.
RaftRole RoleForNewMember(const std::vector<RaftServer>& configuration, RoleTargets targets);

}  // namespace synod
