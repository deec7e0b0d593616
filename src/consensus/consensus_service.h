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
// Only the voters and a few standbys take part in Raft replication; every other member is a
// spare, which the leader feeds the committed entries itself, over the peer protocol, right
// after applying them (EntryFeed). A commit then costs the voters' disk writes only, and a
// spare wakes once per entry instead of three times (append, write, commit), which is what
// makes commands to tens of members fast. A spare that misses entries says so and gets them
// again, or, if it is further behind than the leader keeps entries, fetches the leader's state
// in chunks (StateTransfer); a new leader resumes the feed; a spare promoted to standby is caught
// up by Raft, and the engine skips the entries the feed already applied. Loop thread only;
// callbacks run on the loop thread.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/members_state.h"
#include "consensus/raft_engine.h"
#include "consensus/recent_entries.h"
#include "consensus/replicated_state.h"
#include "consensus/state_transfer.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "core/jitter.h"
#include "core/node_identity.h"
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
  // Entries between snapshots; a quarter of them stay in the log after one.
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
};

// A proposal's outcome once committed.
struct Committed {
  std::string value;
  uint64_t index = 0;  // the log entry that carried it
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

class ConsensusService {
 public:
  // A committed result; or an error: the module refused it (kInvalid, kNotFound, kConflict, ...:
  // committed, and changed nothing), or it was not committed (kNoQuorum, kUnavailable,
  // kUnsupported), or, rarely, the answer was lost (kUnknownOutcome: retry with the same
  // request id to learn it).
  using ProposeCallback = std::function<void(Result<Committed>)>;

  ConsensusService(EventLoop& loop, const Clock& clock, PeerService& peers,
                   ConsensusOptions options);
  ~ConsensusService();

  // Adds a feature's state module; before Start(). The module must outlive this service.
  void RegisterModule(StateModule& module) { state_.Register(module); }

  // Opens the engine (checking the data directory and the Raft port) and starts forming or
  // rejoining. Errors are ready to show to the user.
  Status Start();
  // Graceful stop: hands leadership over, leaves the member list, closes. `done` runs once,
  // within a few seconds whatever happens.
  void Leave(std::function<void()> done);

  // Proposes an operation through the leader, retrying across leader changes until the
  // propose timeout; `done` runs once. Without a request id, one is generated.
  void Propose(Proposal proposal, ProposeCallback done);
  // A request id unique to this proposal (node, boot and counter).
  std::string NewRequestId();

  const MembersState& members() const { return members_; }
  // For modules that subscribe to member events while they are being set up.
  MembersState& members() { return members_; }
  const ReplicatedState& state() const { return state_; }
  // Lets another module add to every heartbeat this node sends (and to the leader's own).
  void SetHeartbeatDecorator(std::function<void(wire::Heartbeat&)> decorate) {
    heartbeat_decorator_ = std::move(decorate);
  }
  // Sends this node's next heartbeat on the next tick rather than at its usual time.
  void HeartbeatSoon() { next_heartbeat_ = MonoTime{}; }
  // On the leader: every heartbeat received, its own included, once per tick.
  void SetHeartbeatListener(std::function<void(const wire::Heartbeat&)> listener) {
    heartbeat_listener_ = std::move(listener);
  }
  // On the leader: how long since `id` was heard from; nothing elsewhere or if never.
  std::optional<Nanos> SilenceOf(const std::string& id) const;
  // Answers requests of another module's kind that arrive over the peer protocol. One handler
  // per kind: a second one for the same kind is a programming error and aborts.
  void HandleRequests(wire::PeerMessage::BodyCase kind, PeerService::RequestHandler handler);
  // Runs after every applied log entry and every restored snapshot.
  void AddStateListener(std::function<void()> listener) {
    state_.AddChangeListener(std::move(listener));
  }
  // The leader's peer address, if there is a leader.
  std::optional<Ipv4> LeaderAddress() const { return LeaderIp(); }
  ClusterStatus GetStatus() const;
  bool IsLeader() const { return engine_.IsLeader(); }

 private:
  enum class Phase { kForming, kJoining, kMember, kLeaving, kClosed, kFailed };
  struct PeerInfo {
    Ipv4 ip;
    wire::Hello hello;
  };
  struct Queued {
    wire::Op op;
    std::function<void(wire::OpResult)> done;
  };
  struct PendingJoin {
    wire::MemberRecord record;
    std::vector<PeerService::Reply> replies;
  };
  // The leader's position in feeding one spare.
  struct SpareCursor {
    Ipv4 ip;
    uint64_t sent_through = 0;  // what it was last sent (assumed received until it says not)
    MonoTime last_sent{};
  };
  // A spare's view of the leader that feeds it.
  struct FeedSource {
    std::string leader_id;
    Ipv4 leader_ip;
    uint64_t term = 0;
    MonoTime last_fed{};
    uint64_t last_reply_index = 0;
    MonoTime last_reply{};
  };

  // Formation and membership of this node.
  void Tick();
  void FormationStep();
  void StartEngine();
  void AskToJoin(Ipv4 target);
  wire::MemberRecord SelfRecord(wire::Role role) const;
  bool InConfiguration() const;
  std::optional<Ipv4> LeaderIp() const;
  void PersistClusterId();
  void Fail(const std::string& why);

  // Proposals: Submit() sends an operation to the leader (itself, or over the peer protocol)
  // until it has an answer or the deadline passes; ProposeLocally() batches it on the leader.
  Status CheckOp(const wire::Op& op) const;
  void Submit(wire::Op op, MonoTime deadline, bool maybe_sent, ProposeCallback done);
  void ProposeLocally(wire::Op op, std::function<void(wire::OpResult)> done);
  void FlushBatch();

  // Requests from other nodes.
  void OnRequest(const wire::PeerMessage& request, PeerService::Reply reply);
  void HandleJoin(const wire::MemberRecord& record, PeerService::Reply reply);
  void HandleLeave(const std::string& node_id, PeerService::Reply reply);

  // Leader duties.
  void LeaderStep();
  void OnBecameLeader();
  void UpdateLiveness();
  void MaintainMembership();
  void ChangeDone(const std::string& what, Status status);
  // Runs `then` once another node leads (or after `polls_left` polls 20 ms apart).
  void AfterHandover(int polls_left, std::function<void()> then);

  // The feed of committed entries to spares: the leader's side, then the spare's.
  void TrackSpares();
  void FeedSpares(uint64_t through);
  void FeedSpare(const std::string& id, SpareCursor& cursor, uint64_t through, MonoTime now);
  void OnFeedReply(const wire::EntryFeedReply& reply);
  void OnFeed(const wire::EntryFeed& feed);
  bool FedRecently() const;
  void FetchState(uint64_t transfer_id, uint64_t offset);

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

  std::vector<Queued> batch_;
  Timer flush_timer_;

  bool was_leader_ = false;
  std::map<std::string, MonoTime> last_heard_;  // leader only
  MonoTime next_liveness_refresh_{};
  bool change_in_progress_ = false;
  std::deque<PendingJoin> pending_joins_;

  std::function<void()> on_closed_;
  std::function<void(wire::Heartbeat&)> heartbeat_decorator_;
  std::function<void(const wire::Heartbeat&)> heartbeat_listener_;
  std::map<wire::PeerMessage::BodyCase, PeerService::RequestHandler> request_handlers_;
  std::unique_ptr<Timer> leave_deadline_;

  RecentEntries recent_entries_;
  std::map<std::string, SpareCursor> spares_;  // leader only, by node id
  StateTransferServer transfers_;              // the leader's state, streamed to spares
  std::optional<FeedSource> feed_source_;
  // A spare's fetch of the leader's state, while one is running.
  struct Fetch {
    std::unique_ptr<RestoreSession> session;
    Ipv4 leader;
    MonoTime started{};
  };
  std::optional<Fetch> fetch_;
  std::string request_prefix_;
  uint64_t next_request_ = 0;
};

}  // namespace synod
