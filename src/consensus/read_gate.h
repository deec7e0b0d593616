// ReadGate: linearizable reads from the local copy of the replicated state.
//
// A read that starts after a write was acknowledged must see that write, whichever node serves
// it. Confirm() calls back once this node's state holds everything acknowledged before the
// call (the ReadIndex protocol of the Raft thesis, section 6.4, without leases, so no clock
// assumption):
// - On the leader: it commits a barrier (an entry no module sees). Committing one proves that
//   this node still led after the read started, and once it is applied so is everything before.
//   Every read that arrives while a barrier is in flight waits for the next one: one barrier per
//   round, however many reads.
// - Elsewhere: it asks the leader for its read index (the leader does the above, then answers
//   with its applied index) and waits until its own state is applied that far. Reads that
//   arrive while a request is out wait for the next one.
// A node that cannot confirm says why, at once when it knows no leader and otherwise within the
// timeout: it never answers with what may be stale.
//
// Loop thread only; callbacks run on the loop thread.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include "consensus/raft_engine.h"
#include "core/event_loop.h"
#include "core/status.h"
#include "net/ipv4.h"
#include "peer/peer_service.h"

namespace synod {

class ReadGate {
 public:
  using Done = std::function<void(Status)>;

  // `leader_ip` says where the leader is (nothing when none is known). Everything passed in
  // must outlive the gate.
  ReadGate(EventLoop& loop, PeerService& peers, RaftEngine& engine,
           std::function<std::optional<Ipv4>()> leader_ip, std::chrono::milliseconds timeout);

  // `done` runs once: Ok when the local state may be read, or kNoQuorum / kUnavailable with
  // the reason.
  void Confirm(Done done);
  // On the leader: another node's ReadIndexRequest.
  void OnReadIndexRequest(PeerService::Reply reply);
  // Answers every waiting read ("shutting down") and refuses the next ones.
  void Stop();
  // Reads answered with an error so far.
  uint64_t refused() const { return refused_; }

 private:
  // Reads waiting for one index: the next barrier's, or the leader's answer.
  using Batch = std::vector<Done>;
  struct Waiting {
    uint64_t index = 0;
    MonoTime deadline;
    Batch reads;
  };

  void StartBarrier();
  void NextBarrierRound();
  void AskLeader();
  // Reads whose index is known wait here until the state is applied that far.
  void WaitForApplied(uint64_t index, Batch reads);
  void CheckApplied();
  void Answer(Batch& reads, const Status& status);

  PeerService& peers_;
  RaftEngine& engine_;
  std::function<std::optional<Ipv4>()> leader_ip_;
  std::chrono::milliseconds timeout_;
  bool stopped_ = false;
  uint64_t refused_ = 0;
  // As leader: reads for the barrier in flight, and for the next one.
  bool barrier_in_flight_ = false;
  Batch barrier_reads_;
  Batch next_barrier_reads_;
  // As follower: the same for the leader's read index.
  bool ask_in_flight_ = false;
  Batch next_ask_reads_;
  std::vector<Waiting> waiting_;
  Timer applied_poll_;
  Timer next_round_;
};

}  // namespace synod
