// LeaderMembership: the leader's duties toward the member list and the Raft configuration.
//
// While this node leads, once per tick (Step):
// - liveness: a member heard from (its heartbeats) stays alive; a silent one turns suspect,
//   then dead, and alive again once heard from;
// - joins: a join request waits until the leader has reached the joiner at the address it gave
//   (so that a key holder cannot fill the configuration with members that do not exist); then
//   the joiner is added to the configuration with the role it is needed in, and recorded;
// - everything else the configuration and the records need: roles recorded, leavers removed,
//   a dead voter replaced by a standby, standbys kept at their number.
// One configuration change at a time. The decisions are MembershipPlanner's pure functions;
// this class carries them out through a ConfigurationEngine, a PeerReach and proposals, for
// which a simulation can stand in (leader_membership_simulation_test.cc).
// Loop thread only; callbacks run on the loop thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "consensus/cluster_log.h"
#include "consensus/members_state.h"
#include "consensus/membership_planner.h"
#include "consensus/raft_engine.h"
#include "core/clock.h"
#include "core/token_bucket.h"
#include "peer/peer_sender.h"

namespace synod {

class LeaderMembership {
 public:
  using Reply = std::function<void(wire::PeerMessage response)>;
  using Propose = std::function<void(Proposal proposal, ClusterLog::ProposeCallback done)>;
  struct Options {
    std::string self_id;
    RoleTargets targets;
    LivenessRules liveness;
  };

  // Everything passed in must outlive this object.
  LeaderMembership(const Clock& clock, ConfigurationEngine& engine, PeerReach& peers,
                   const MembersState& members, Propose propose, Options options);

  // This node was just elected: every member gets a grace period from now, except those
  // already found dead (else a new leader would revive, and promote, a dead node).
  void OnBecameLeader();
  // Once per tick while this node leads.
  void Step();
  // A member's heartbeat reached this node, which leads.
  void HeardFrom(const std::string& id) { last_heard_[id] = clock_.Monotonic(); }
  // How long since `id` was heard from; nothing if never since this node was elected.
  std::optional<Nanos> SilenceOf(const std::string& id) const;

  // A join request (the joiner's record); answered once it is in the configuration, or with
  // why not. The same joiner asking again while it waits is answered with the first.
  void HandleJoin(const wire::MemberRecord& record, Reply reply);
  // A leave request: recorded, then out of the configuration.
  void HandleLeave(const std::string& node_id, Reply reply);

  uint64_t joins_refused() const { return joins_refused_; }

 private:
  struct PendingJoin {
    wire::MemberRecord record;
    Ipv4 ip;  // record.ip(), parsed
    std::vector<Reply> replies;
    MonoTime reach_by;  // refused if this node has not reached it at its address by then
    bool followed_to_reach = false;  // PeerReach::Reach started a link for it
  };

  void UpdateLiveness();
  void MaintainMembership();
  // Starts the next join this node has reached; false if there was none.
  bool AdmitJoin(const std::vector<RaftServer>& configuration);
  void ChangeDone(const std::string& what, Status status);
  // Whether this node reached the joiner's address and the node answering there now has its
  // id and ports (or the joiner is this node).
  bool Reached(const wire::MemberRecord& record, Ipv4 ip) const;
  void AnswerJoin(const PendingJoin& join, const std::string& error) const;
  // Counts a refused join request, and logs it unless one was logged lately.
  void CountJoinRefusal(const std::string& why);

  const Clock& clock_;
  ConfigurationEngine& engine_;
  PeerReach& peers_;
  const MembersState& members_;
  Propose propose_;
  Options options_;
  std::map<std::string, MonoTime> last_heard_;
  MonoTime next_liveness_refresh_{};
  bool change_in_progress_ = false;
  std::deque<PendingJoin> pending_joins_;
  // New members admitted to the queue: a whole local cluster forming at once, then a few a
  // second, so that a key holder asking to join under endless new ids cannot grow the
  // configuration at the speed of the network.
  TokenBucket new_joiners_{64, 4};
  uint64_t joins_refused_ = 0;
  MonoTime next_join_refusal_log_{};  // refusals are logged at most once every few seconds
};

}  // namespace synod
