// ConsensusService: this node's membership in the cluster and its door to the replicated state.
//
// It decides how the node enters a cluster (restart with its data, --bootstrap, --bootstrap-expect
// N, or joining a cluster found through discovery or --join), proposes commands from any node
// (a follower forwards them to the leader over the peer protocol), batches proposals into log
// entries, and, while it leads, keeps the member list true: liveness from member heartbeats,
// joins and leaves as Raft configuration changes, standbys promoted when a voter is lost.
//
// The replicated state is a registry of state modules (ReplicatedState): this service owns the
// members module and the registry; features register their own modules before Start(). Every
// proposal carries a request id, so a retry after a leader change (by the forwarder here, or by
// a client that sends the same Idempotency-Key) is applied once and answered with the first
// result. The leader stamps each entry with its clock; modules read time only from there.
//
// Only the voters and a few standbys take part in Raft replication; the other members are
// spares, fed committed entries by the leader (SpareFeed). Loop thread only; callbacks run on
// the loop thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/cluster_log.h"
#include "consensus/leader_membership.h"
#include "consensus/members_state.h"
#include "consensus/proposer.h"
#include "consensus/raft_engine.h"
#include "consensus/read_gate.h"
#include "consensus/replicated_state.h"
#include "consensus/spare_feed.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "core/jitter.h"
#include "core/node_identity.h"
#include "events/event_log.h"
#include "net/ipv4.h"
#include "peer/peer_service.h"

namespace synod {

struct ConsensusOptions {
  NodeIdentity identity;
  std::string name;
  Ipv4 ip;
  uint16_t api_port = 7400;
  uint16_t peer_port = 7402;
  uint16_t raft_port = 7401;
  std::string data_dir;
  bool bootstrap = false;         // form a one-node cluster that others join
  unsigned bootstrap_expect = 0;  // wait for N nodes, then the lowest id forms the cluster
  std::vector<Ipv4> join;         // addresses of members to ask, where broadcast does not reach
  unsigned max_voters = 3;
  unsigned max_standbys = 2;  // Raft non-voters ready to replace a voter; the rest are spares
  // Committed entries kept to catch spares up; a spare further behind is sent a snapshot.
  size_t feed_window = 4096;
  // Entries between snapshots (RaftOptions::snapshot_threshold).
  unsigned snapshot_threshold = 8192;
  unsigned election_timeout_ms = 300;
  unsigned heartbeat_timeout_ms = 100;
  std::chrono::milliseconds member_heartbeat{500};
  std::chrono::milliseconds suspect_after{2000};
  std::chrono::milliseconds dead_after{5000};
  std::chrono::milliseconds propose_timeout{5000};
  // --bootstrap-expect: how long the set of candidates must stay the same (all nodes of one
  // broadcast domain hear each other within a beacon interval; the agent uses two).
  std::chrono::milliseconds formation_settle{1500};
  // The replicated state cannot be applied by this build (an entry or snapshot of a module or
  // version it does not know): the node must stop. Default: log and exit with status 78.
  std::function<void(const Status&)> on_fatal;
  // Member changes and leader changes are published here.
  EventSink events;
  // Set: Raft's connections are TLS with these credentials (see RaftTransportOptions).
  std::shared_ptr<const TlsConfig> tls{};
  TlsRefusals* tls_refusals = nullptr;
};

struct ClusterStatus {
  std::string phase;  // "waiting for 3 nodes", "joining", "member", "leaving", "error: ..."
  std::string cluster_id;
  bool member = false;
  std::optional<wire::MemberRecord> leader;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  unsigned voters = 0;
  unsigned voters_alive = 0;
  unsigned standbys = 0;
  unsigned spares = 0;
  bool quorum = false;
  SnapshotStats snapshots;
};

// Events counted since the node started.
struct ConsensusStats {
  uint64_t leader_changes = 0;  // a new leader became known here
  uint64_t step_downs = 0;      // this node stopped leading
  uint64_t reads_refused = 0;   // linearizable reads that could not be confirmed
  // On the leader: join requests refused as malformed, for too many joiners at once, or because
  // no node with the joiner's id answered at its address.
  uint64_t joins_refused = 0;
  RaftConnectionStats connections;
};

class ConsensusService final : public ClusterLog {
 public:
  ConsensusService(EventLoop& loop, const Clock& clock, PeerService& peers,
                   ConsensusOptions options);
  ~ConsensusService() override;

  // ClusterLog. Modules are registered before Start().
  void RegisterModule(StateModule& module) override { state_.Register(module); }
  void Propose(Proposal proposal, ProposeCallback done) override {
    proposer_.Propose(std::move(proposal), std::move(done));
  }
  std::string NewRequestId() override { return proposer_.NewRequestId(); }
  // Ok means a linearizable read may be served from this node's copy; else kNoQuorum or
  // kUnavailable and the reason (see ReadGate).
  void ConfirmRead(ReadGate::Done done) override { reads_.Confirm(std::move(done)); }
  void AddStateListener(std::function<void()> listener) override {
    state_.AddChangeListener(std::move(listener));
  }
  const MembersState& members() const override { return members_; }
  // The engine's term, or on a spare the term of the leader's feed.
  uint64_t term() const override;
  std::optional<Ipv4> LeaderAddress() const override { return LeaderIp(); }
  bool IsLeader() const override { return engine_.IsLeader(); }

  // Opens the engine (checking the data directory and the Raft port) and starts forming or
  // rejoining. Errors are ready to show to the user.
  Status Start();
  // Graceful stop: hands leadership over, leaves the member list, closes. `done` runs once,
  // within a few seconds whatever happens.
  void Leave(std::function<void()> done);

  // For reads that accept this node's copy as it is: how long since this node last knew a
  // leader (zero while it knows one; nothing if it never did).
  std::optional<Nanos> SinceLeaderKnown() const;
  // The newest log index this node's copy of the state reflects.
  uint64_t applied_index() const { return engine_.applied_index(); }

  // For modules that subscribe to member events while they are being set up.
  MembersState& members() { return members_; }
  const ReplicatedState& state() const { return state_; }
  // Lets modules add to every heartbeat this node sends (and to the leader's own).
  void AddHeartbeatDecorator(std::function<void(wire::Heartbeat&)> decorate) {
    heartbeat_decorators_.push_back(std::move(decorate));
  }
  // Sends this node's next heartbeat on the next tick rather than at its usual time.
  void HeartbeatSoon() { next_heartbeat_ = MonoTime{}; }
  // On the leader: every heartbeat received, its own included, once per tick.
  void AddHeartbeatListener(std::function<void(const wire::Heartbeat&)> listener) {
    heartbeat_listeners_.push_back(std::move(listener));
  }
  // On the leader: how long since `id` was heard from; nothing elsewhere or if never.
  std::optional<Nanos> SilenceOf(const std::string& id) const;
  // Answers requests of another module's kind that arrive over the peer protocol. One handler
  // per kind: a second one for the same kind is a programming error and aborts.
  void HandleRequests(wire::PeerMessage::BodyCase kind, PeerService::RequestHandler handler);
  ClusterStatus GetStatus() const;
  ConsensusStats stats() const;
  // The cluster this node is or was last a member of; empty if none yet.
  const std::string& cluster_id() const {
    return members_.cluster_id().empty() ? known_cluster_id_ : members_.cluster_id();
  }

 private:
  enum class Phase { kForming, kJoining, kMember, kLeaving, kClosed, kFailed };
  struct PeerInfo {
    Ipv4 ip;
    wire::Hello hello;
  };
  // Formation and membership of this node.
  void Tick();
  void FormationStep();
  void StartEngine();
  void AskToJoin(Ipv4 target);
  wire::MemberRecord SelfRecord(wire::Role role) const;
  bool InConfiguration() const;
  // The leader feeding this node lately, unless this node leads (its feed is then stale).
  std::optional<SpareFeed::Source> FeedSource() const;
  std::optional<Ipv4> LeaderIp() const;
  void PersistClusterId();
  void Fail(const std::string& why);

  // Requests from other nodes.
  void OnRequest(const wire::PeerMessage& request, PeerService::Reply reply);

  // Leader duties.
  void OnBecameLeader();
  // Logs and counts changes of leader, step-downs, and quorum lost and regained.
  void ObserveLeadership(bool leader);
  void PublishMemberEvent(const MemberEvent& event) const;
  // Runs `then` once another node leads (or after `polls_left` polls 20 ms apart).
  void AfterHandover(int polls_left, std::function<void()> then);

  EventLoop& loop_;
  const Clock& clock_;
  PeerService& peers_;
  ConsensusOptions options_;
  ReplicatedState state_;
  MembersState members_;
  RaftEngine engine_;
  Phase phase_ = Phase::kForming;
  std::string failure_;
  std::string known_cluster_id_;                // from the data directory
  std::map<std::string, PeerInfo> peers_seen_;  // Synod peers by node id
  std::optional<MonoTime> candidates_stable_since_;
  size_t last_candidate_count_ = 0;
  MonoTime next_join_attempt_{};
  MonoTime next_hello_refresh_{};
  size_t join_rotation_ = 0;
  MonoTime next_heartbeat_{};
  Jitter heartbeat_jitter_{0.25};
  Timer tick_timer_;

  bool was_leader_ = false;

  std::function<void()> on_closed_;
  std::vector<std::function<void(wire::Heartbeat&)>> heartbeat_decorators_;
  std::vector<std::function<void(const wire::Heartbeat&)>> heartbeat_listeners_;
  std::map<wire::PeerMessage::BodyCase, PeerService::RequestHandler> request_handlers_;
  std::unique_ptr<Timer> leave_deadline_;

  SpareFeed feed_;
  Proposer proposer_;
  ReadGate reads_;
  LeaderMembership membership_;
  MonoTime leader_known_at_{};
  ConsensusStats stats_;
  std::optional<std::string> logged_leader_;  // the leader's node id, as last logged
  uint64_t led_term_ = 0;                     // the term this node led, while it does
  bool had_quorum_ = false;
};

}  // namespace synod
