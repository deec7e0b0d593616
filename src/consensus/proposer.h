// Proposer: puts operations in the log through the leader, once each.
//
// Propose() gives an operation a request id (unless the proposer chose one), checks that every
// node can apply it, and sends it to the leader: itself, where it batches every operation of a
// turn of the loop into one entry stamped with its clock, or another node over the peer
// protocol. It retries across leader changes until the timeout, always with the same request
// id, so that an operation is applied at most once however often it is sent (the registry
// answers a repeated id with the first result). The answer is the committed result; or the
// module's refusal (committed, nothing changed); or "not committed" (kNoQuorum, kUnavailable,
// kUnsupported); or, when an attempt may have been committed without its answer arriving,
// kUnknownOutcome, which says the request id to retry with. It fails fast where waiting cannot
// help: a node that has known no leader for `leaderless_grace` refuses at once; a proposal
// forwarded to a leader that is replaced meanwhile goes to the new one as soon as it is known.
// At most a few thousand operations are in flight at once (proposed, not yet applied): the rest
// wait, so that no node has more than a few milliseconds of applying to do in one go.
// Loop thread only; callbacks run on the loop thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/members_state.h"
#include "consensus/raft_engine.h"
#include "consensus/replicated_state.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "net/ipv4.h"
#include "peer/peer_service.h"

namespace synod {

// The answer to a proposal, from the result its operation got when its entry was applied.
Result<Committed> FromOpResult(const wire::OpResult& result);

class Proposer {
 public:
  using Callback = std::function<void(Result<Committed>)>;
  struct Options {
    Ipv4 self_ip;
    std::string request_suffix;  // unique to this node and boot
    std::chrono::milliseconds timeout{5000};
    // With no leader known for this long, a proposal is refused at once instead of waiting for
    // the timeout: longer than an election, so that one does not refuse writes.
    std::chrono::milliseconds leaderless_grace{700};
  };

  // Everything passed in must outlive the proposer. `leader_ip` says where the leader is.
  Proposer(EventLoop& loop, const Clock& clock, PeerService& peers, RaftEngine& engine,
           const ReplicatedState& state, const MembersState& members,
           std::function<std::optional<Ipv4>()> leader_ip, Options options);

  void Propose(Proposal proposal, Callback done);
  std::string NewRequestId();
  // On the leader: an operation another node forwarded.
  void OnProposeRequest(const wire::ProposeRequest& request, PeerService::Reply reply);
  // Notes whether a leader is known now; called often (every tick) so that the time without
  // one is known before a proposal needs it.
  void ObserveLeader();
  // Answers what is queued ("shutting down") and refuses what comes next.
  void Stop();

 private:
  // Shared by the retries and the batch: an operation is built once.
  using OpPtr = std::shared_ptr<const wire::Op>;
  struct Queued {
    OpPtr op;
    std::function<void(wire::OpResult)> done;
  };

  // One proposal, through all its tries.
  struct Attempt {
    OpPtr op;
    MonoTime deadline;
    Callback done;
  };

  Status CheckOp(const wire::Op& op) const;
  // Sends it to the leader; `maybe_sent`: an earlier try may have been committed.
  void Submit(std::shared_ptr<Attempt> attempt, bool maybe_sent);
  // Sends it again after a pause (the same request id: applied at most once), or gives up.
  void Retry(std::shared_ptr<Attempt> attempt, const Status& why, bool sent);
  void GiveUp(const Attempt& attempt, const Status& why, bool sent);
  // Proposals forwarded to a leader that is no longer the one known go to the new one now,
  // rather than when the old one's answer times out.
  void FollowLeader();
  void ProposeLocally(OpPtr op, std::function<void(wire::OpResult)> done);
  void FlushBatch();

  EventLoop& loop_;
  const Clock& clock_;
  PeerService& peers_;
  RaftEngine& engine_;
  const ReplicatedState& state_;
  const MembersState& members_;
  std::function<std::optional<Ipv4>()> leader_ip_;
  Options options_;
  std::vector<Queued> batch_;  // waiting for the next entry
  Timer flush_timer_;
  std::optional<MonoTime> leaderless_since_;
  // Proposals waiting for a leader's answer, by forward id, with the leader they went to.
  struct Forwarded {
    std::shared_ptr<Attempt> attempt;
    Ipv4 leader;
  };
  std::map<uint64_t, Forwarded> forwarded_;
  uint64_t next_forward_ = 0;
  Timer leader_watch_;
  size_t in_flight_ops_ = 0;  // in entries proposed and not yet applied
  size_t in_flight_bytes_ = 0;
  uint64_t next_request_ = 0;
  bool stopped_ = false;
};

}  // namespace synod
