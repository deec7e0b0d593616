#include "consensus/read_gate.h"

#include <memory>
#include <utility>

namespace synod {
namespace {

// How often a read waiting for this node to apply an index looks again. Barriers change no
// state, so no state listener hears them: the index is polled, and only while reads wait.
constexpr auto kAppliedPoll = std::chrono::milliseconds(1);

Status NoLeader() {
  return Status(StatusCode::kNoQuorum,
                "no leader known (the cluster is electing one, or this node is cut off from it): "
                "cannot confirm the data is current; add ?stale to read this node's copy");
}

}  // namespace

ReadGate::ReadGate(EventLoop& loop, PeerService& peers, RaftEngine& engine,
                   std::function<std::optional<Ipv4>()> leader_ip,
                   std::chrono::milliseconds timeout)
    : peers_(peers),
      engine_(engine),
      leader_ip_(std::move(leader_ip)),
      timeout_(timeout),
      applied_poll_(loop),
      next_round_(loop) {}

void ReadGate::Answer(Batch& reads, const Status& status) {
  Batch answered = std::move(reads);
  reads.clear();
  if (!status.ok()) refused_ += answered.size();
  for (Done& done : answered) done(status);
}

void ReadGate::Confirm(Done done) {
  if (stopped_ || !engine_.started()) {
    Batch refused{std::move(done)};
    return Answer(refused, stopped_
                               ? Status::Unavailable("shutting down")
                               : Status::Unavailable("this node is not part of a cluster yet"));
  }
  if (engine_.IsLeader()) {
    next_barrier_reads_.push_back(std::move(done));
    if (!barrier_in_flight_) StartBarrier();
    return;
  }
  if (!leader_ip_()) {
    Batch refused{std::move(done)};
    return Answer(refused, NoLeader());
  }
  next_ask_reads_.push_back(std::move(done));
  if (!ask_in_flight_) AskLeader();
}

void ReadGate::StartBarrier() {
  barrier_in_flight_ = true;
  barrier_reads_ = std::move(next_barrier_reads_);
  next_barrier_reads_.clear();
  engine_.Barrier([this](Status status) {
    barrier_in_flight_ = false;
    Answer(barrier_reads_,
           status.ok() ? status
                       : Status(StatusCode::kNoQuorum,
                                "could not confirm this node still leads: " + status.message()));
    // The next round starts on the next turn of the loop, never inside libraft's callback:
    // when leadership is being lost, libraft fails pending requests before its state says so,
    // and a barrier proposed from there crashes it.
    if (!next_barrier_reads_.empty()) {
      next_round_.Start(std::chrono::milliseconds(0), std::chrono::milliseconds(0),
                        [this] { NextBarrierRound(); });
    }
  });
}

void ReadGate::NextBarrierRound() {
  if (next_barrier_reads_.empty() || barrier_in_flight_) return;
  if (engine_.IsLeader() && !stopped_) return StartBarrier();
  // Leadership moved on: these reads go the follower's way (or are refused).
  Batch again = std::move(next_barrier_reads_);
  next_barrier_reads_.clear();
  for (Done& done : again) Confirm(std::move(done));
}

void ReadGate::OnReadIndexRequest(PeerService::Reply reply) {
  auto answer = [this, reply = std::move(reply)](Status status) {
    wire::PeerMessage response;
    if (status.ok()) {
      response.mutable_read_index_response()->set_index(engine_.applied_index());
    } else {
      response.mutable_read_index_response()->set_error(status.message());
    }
    reply(response);
  };
  if (stopped_ || !engine_.IsLeader())
    return answer(Status(StatusCode::kNotLeader, "not the leader"));
  next_barrier_reads_.push_back(std::move(answer));
  if (!barrier_in_flight_) StartBarrier();
}

void ReadGate::AskLeader() {
  const std::optional<Ipv4> leader = leader_ip_();
  auto reads = std::make_shared<Batch>(std::move(next_ask_reads_));
  next_ask_reads_.clear();
  if (!leader) return Answer(*reads, NoLeader());
  ask_in_flight_ = true;
  wire::PeerMessage request;
  request.mutable_read_index_request();
  peers_.Call(
      *leader, request, timeout_, [this, reads, leader](Result<wire::PeerMessage> response) {
        ask_in_flight_ = false;
        if (stopped_) return Answer(*reads, Status::Unavailable("shutting down"));
        if (!response.ok()) {
          Answer(*reads, Status(StatusCode::kNoQuorum,
                                "cannot confirm the data is current: leader " + leader->ToString() +
                                    " did not answer: " + response.error()));
        } else if (const auto& answer = response.value().read_index_response();
                   !answer.error().empty()) {
          Answer(*reads,
                 Status(StatusCode::kNoQuorum, "cannot confirm the data is current: leader " +
                                                   leader->ToString() + ": " + answer.error()));
        } else {
          WaitForApplied(answer.index(), std::move(*reads));
        }
        if (next_ask_reads_.empty()) return;
        // Leadership may have come here meanwhile: each read takes whichever way is right now.
        Batch again = std::move(next_ask_reads_);
        next_ask_reads_.clear();
        for (Done& done : again) Confirm(std::move(done));
      });
}

void ReadGate::WaitForApplied(uint64_t index, Batch reads) {
  if (engine_.applied_index() >= index) return Answer(reads, Status::Ok());
  waiting_.push_back(Waiting{index, std::chrono::steady_clock::now() + timeout_, std::move(reads)});
  if (waiting_.size() == 1)
    applied_poll_.Start(kAppliedPoll, kAppliedPoll, [this] { CheckApplied(); });
}

void ReadGate::CheckApplied() {
  const uint64_t applied = engine_.applied_index();
  const MonoTime now = std::chrono::steady_clock::now();
  std::vector<Waiting> ready;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (applied >= it->index || now >= it->deadline) {
      ready.push_back(std::move(*it));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  if (waiting_.empty()) applied_poll_.Stop();
  for (Waiting& wait : ready) {
    Answer(wait.reads, applied >= wait.index
                           ? Status::Ok()
                           : Status::Unavailable("this node is behind the leader (applied " +
                                                 std::to_string(applied) + " of " +
                                                 std::to_string(wait.index) + ")"));
  }
}

void ReadGate::Stop() {
  stopped_ = true;
  applied_poll_.Stop();
  next_round_.Stop();
  const Status stopping = Status::Unavailable("shutting down");
  Answer(next_barrier_reads_, stopping);
  Answer(next_ask_reads_, stopping);
  std::vector<Waiting> waiting = std::move(waiting_);
  waiting_.clear();
  for (Waiting& wait : waiting) Answer(wait.reads, stopping);
}

}  // namespace synod
