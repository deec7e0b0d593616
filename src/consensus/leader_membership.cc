#include "consensus/leader_membership.h"

#include <algorithm>
#include <memory>

#include <spdlog/spdlog.h>

namespace synod {
namespace {

constexpr auto kLivenessRefresh = std::chrono::seconds(5);
// Joins queued (one membership change at a time), and answers kept per joiner: a flood of join
// requests is refused rather than queued without end.
constexpr size_t kMaxPendingJoins = 64;
constexpr size_t kMaxRepliesPerJoin = 4;
constexpr auto kJoinRefusalLogInterval = std::chrono::seconds(10);
// How long the leader tries to reach a joiner at the address it gave: less than the joiner
// waits for its answer (3 s, ConsensusService), so that a refusal reaches it.
constexpr auto kJoinReachTimeout = std::chrono::milliseconds(2500);

// Why the leader changes a member's role.
const char* Reason(MembershipStep::Kind kind) {
  switch (kind) {
    case MembershipStep::Kind::kDemoteVoter:
      return "a dead voter, and a live standby to replace it";
    case MembershipStep::Kind::kPromoteStandby:
      return "fewer voters than wanted";
    case MembershipStep::Kind::kPromoteSpare:
      return "a standby is needed";
    case MembershipStep::Kind::kDemoteStandby:
      return "more live standbys than wanted";
    default:
      return "";
  }
}

}  // namespace

LeaderMembership::LeaderMembership(const Clock& clock, ConfigurationEngine& engine,
                                   PeerReach& peers, const MembersState& members, Propose propose,
                                   Options options)
    : clock_(clock),
      engine_(engine),
      peers_(peers),
      members_(members),
      propose_(std::move(propose)),
      options_(std::move(options)) {}

void LeaderMembership::OnBecameLeader() {
  const MonoTime now = clock_.Monotonic();
  last_heard_.clear();
  for (const auto* member : members_.MembersInJoinOrder()) {
    last_heard_[member->id()] =
        member->state() == wire::DEAD ? now - options_.liveness.dead_after : now;
  }
  next_liveness_refresh_ = now + kLivenessRefresh;
  change_in_progress_ = false;
}

void LeaderMembership::Step() {
  last_heard_[options_.self_id] = clock_.Monotonic();
  UpdateLiveness();
  MaintainMembership();
}

std::optional<Nanos> LeaderMembership::SilenceOf(const std::string& id) const {
  auto it = last_heard_.find(id);
  if (it == last_heard_.end()) return std::nullopt;
  return clock_.Monotonic() - it->second;
}

void LeaderMembership::UpdateLiveness() {
  const MonoTime now = clock_.Monotonic();
  const bool refresh = now >= next_liveness_refresh_;
  if (refresh) next_liveness_refresh_ = now + kLivenessRefresh;
  auto entries =
      PlanLiveness(members_, last_heard_, now, clock_.WallUtcNanos(), refresh, options_.liveness);
  if (entries.empty()) return;
  wire::MemberLiveness liveness;
  for (auto& entry : entries) {
    const auto* member = members_.FindMember(entry.id());
    if (member != nullptr && member->state() != entry.state()) {
      spdlog::info("consensus: member {} ({}) is now {}", member->name(), member->ip(),
                   wire::MemberState_Name(entry.state()));
    }
    *liveness.add_entries() = std::move(entry);
  }
  propose_(MembersState::Liveness(liveness), [](Result<Committed>) {});
}

void LeaderMembership::ChangeDone(const std::string& what, Status status) {
  change_in_progress_ = false;
  if (!status.ok()) spdlog::warn("consensus: cannot {}: {}", what, status.message());
}

void LeaderMembership::MaintainMembership() {
  if (change_in_progress_) return;
  const std::vector<RaftServer> configuration = engine_.Configuration();
  // 1. Joins, one configuration change at a time.
  if (AdmitJoin(configuration)) return;

  // 2. Everything else the configuration and the records need, one step at a time.
  const MembershipStep step =
      PlanMembership(members_, configuration, options_.targets, options_.self_id);
  const wire::MemberRecord* member = step.member;
  switch (step.kind) {
    case MembershipStep::Kind::kNone:
      return;
    case MembershipStep::Kind::kRecordRole: {
      propose_(MembersState::SetRole(member->id(), ToWireRole(step.role)),
               [](Result<Committed>) {});
      return;
    }
    case MembershipStep::Kind::kRemoveLeaver:
      change_in_progress_ = true;
      engine_.Remove(member->raft_id(),
                     [this](Status status) { ChangeDone("remove a member that left", status); });
      return;
    case MembershipStep::Kind::kDemoteVoter:
    case MembershipStep::Kind::kPromoteStandby:
    case MembershipStep::Kind::kPromoteSpare:
    case MembershipStep::Kind::kDemoteStandby: {
      change_in_progress_ = true;
      const std::string change = "make " + member->name() + " a " + RaftRoleName(step.role) + " (" +
                                 Reason(step.kind) + ")";
      spdlog::info("consensus: {}", change);
      engine_.Assign(member->raft_id(), step.role,
                     [this, change](Status status) { ChangeDone(change, status); });
      return;
    }
  }
}

bool LeaderMembership::AdmitJoin(const std::vector<RaftServer>& configuration) {
  // Those this node cannot reach in time are refused.
  const MonoTime now = clock_.Monotonic();
  for (auto it = pending_joins_.begin(); it != pending_joins_.end();) {
    if (Reached(it->record, it->ip) || now < it->reach_by) {
      ++it;
      continue;
    }
    if (it->followed_to_reach) peers_.ForgetAddress(it->ip);
    const std::string why =
        "the leader could not reach a node with your id at " + it->record.ip() + " (peer port)";
    CountJoinRefusal(why);
    AnswerJoin(*it, why);
    it = pending_joins_.erase(it);
  }
  auto ready =
      std::find_if(pending_joins_.begin(), pending_joins_.end(),
                   [this](const PendingJoin& join) { return Reached(join.record, join.ip); });
  if (ready == pending_joins_.end()) return false;
  auto pending = std::make_shared<PendingJoin>(std::move(*ready));
  pending_joins_.erase(ready);
  const wire::MemberRecord& record = pending->record;
  const std::string address = record.ip() + ":" + std::to_string(record.raft_port());
  auto answer = [this, pending](const std::string& error) { AnswerJoin(*pending, error); };
  if (const std::optional<RaftRole> role = RoleIn(configuration, record.raft_id())) {
    // Already in the configuration (a restart, or a retried request): refresh its record.
    wire::MemberRecord refreshed = record;
    refreshed.set_role(ToWireRole(*role));
    propose_(MembersState::Join(refreshed),
             [answer](Result<Committed> r) { answer(r.ok() ? "" : r.error()); });
    return true;
  }
  const RaftRole role = RoleForNewMember(configuration, options_.targets);
  change_in_progress_ = true;
  spdlog::info("consensus: adding {} ({}) as {}", record.name(), record.ip(), RaftRoleName(role));
  engine_.Add(record.raft_id(), address, [this, pending, role, answer](Status added) {
    if (!added.ok()) {
      ChangeDone("add " + pending->record.name(), added);
      answer(added.message());
      return;
    }
    answer("");  // the joiner starts its engine now; the promotion below catches it up
    auto record_member = [this, pending, role] {
      wire::MemberRecord joined = pending->record;
      joined.set_role(ToWireRole(role));
      propose_(MembersState::Join(joined), [name = joined.name()](Result<Committed> r) {
        if (!r.ok()) spdlog::warn("consensus: cannot record {} as a member: {}", name, r.error());
      });
    };
    if (role == RaftRole::kSpare) {  // added as one: the feed starts with the next tick
      ChangeDone("add " + pending->record.name(), Status::Ok());
      record_member();
      return;
    }
    engine_.Assign(pending->record.raft_id(), role,
                   [this, pending, record_member](Status assigned) {
                     ChangeDone("assign " + pending->record.name(), assigned);
                     // Else it stays a spare; a retried join request tries again.
                     if (assigned.ok()) record_member();
                   });
  });
  return true;
}

void LeaderMembership::HandleJoin(const wire::MemberRecord& record, Reply reply) {
  auto refuse = [&](const std::string& why) {
    CountJoinRefusal(why);
    wire::PeerMessage response;
    response.mutable_join_response()->set_error(why);
    reply(response);
  };
  const Result<Ipv4> ip = Ipv4::Parse(record.ip());
  if (record.id().empty() || record.raft_id() != RaftIdFromNodeId(record.id()) || !ip.ok() ||
      record.peer_port() == 0 || record.peer_port() > 65535 || record.raft_port() == 0 ||
      record.raft_port() > 65535) {
    return refuse("malformed join request");
  }
  for (PendingJoin& pending : pending_joins_) {
    if (pending.record.id() == record.id()) {
      // The same joiner asking again: only its latest asks are answered.
      if (pending.replies.size() >= kMaxRepliesPerJoin)
        pending.replies.erase(pending.replies.begin());
      pending.replies.push_back(std::move(reply));
      return;
    }
  }
  if (pending_joins_.size() >= kMaxPendingJoins) {
    return refuse("too many joins waiting; ask again later");
  }
  if (members_.FindMember(record.id()) == nullptr && !new_joiners_.TryTake(clock_.Monotonic())) {
    return refuse("too many new members joining at once; ask again later");
  }
  // A record can name any address: the node must answer there, with its own id, before it is
  // added.
  const bool followed = !Reached(record, ip.value()) && peers_.Reach(ip.value());
  pending_joins_.push_back(
      PendingJoin{record, ip.value(), {}, clock_.Monotonic() + kJoinReachTimeout, followed});
  pending_joins_.back().replies.push_back(std::move(reply));
}

void LeaderMembership::HandleLeave(const std::string& node_id, Reply reply) {
  const wire::MemberRecord* member = members_.FindMember(node_id);
  if (member == nullptr) {
    wire::PeerMessage response;
    response.mutable_leave_response()->set_error("no such member");
    reply(response);
    return;
  }
  const uint64_t raft_id = member->raft_id();
  propose_(MembersState::Leave(node_id), [this, raft_id, reply](Result<Committed> result) {
    wire::PeerMessage response;
    if (!result.ok()) {
      response.mutable_leave_response()->set_error(result.error());
      reply(response);
      return;
    }
    // Out of the Raft configuration too; the answer does not wait for that.
    response.mutable_leave_response()->set_ok(true);
    reply(response);
    if (engine_.IsLeader()) {
      change_in_progress_ = true;
      engine_.Remove(raft_id, [this](Status status) { ChangeDone("remove a leaver", status); });
    }
  });
}

void LeaderMembership::CountJoinRefusal(const std::string& why) {
  ++joins_refused_;
  const MonoTime now = clock_.Monotonic();
  if (now < next_join_refusal_log_) return;
  next_join_refusal_log_ = now + kJoinRefusalLogInterval;
  spdlog::warn("consensus: refusing a join request: {} ({} refused so far)", why, joins_refused_);
}

bool LeaderMembership::Reached(const wire::MemberRecord& record, Ipv4 ip) const {
  // The leader recording itself (restarted after leaving, then elected).
  if (record.id() == options_.self_id) return true;
  const std::optional<wire::Hello> hello = peers_.HelloAt(ip);
  return hello && hello->node_id() == record.id() && hello->peer_port() == record.peer_port() &&
         hello->raft_port() == record.raft_port();
}

void LeaderMembership::AnswerJoin(const PendingJoin& join, const std::string& error) const {
  for (const Reply& reply : join.replies) {
    wire::PeerMessage response;
    response.mutable_join_response()->set_ok(error.empty());
    response.mutable_join_response()->set_error(error);
    response.mutable_join_response()->set_cluster_id(members_.cluster_id());
    reply(response);
  }
}

}  // namespace synod
