#include "consensus/proposer.h"

#include <memory>

namespace synod {
namespace {

constexpr auto kForwardRetry = std::chrono::milliseconds(100);
constexpr auto kLeaderWatch = std::chrono::milliseconds(50);
constexpr size_t kMaxBatch = 1024;
// Operations proposed and not yet applied, at most.
constexpr size_t kMaxInFlightOps = 4096;
constexpr size_t kMaxInFlightBytes = 8u << 20;
constexpr size_t kMaxRequestIdBytes = 128;

wire::OpResult ErrorResult(const Status& status) {
  wire::OpResult result;
  result.set_code(static_cast<uint32_t>(status.code()));
  result.set_error(status.message());
  return result;
}

// Whether a proposal that got this answer may be sent again (with the same request id).
bool Retriable(StatusCode code) {
  return code == StatusCode::kNotLeader || code == StatusCode::kUnknownOutcome ||
         code == StatusCode::kNoQuorum || code == StatusCode::kUnavailable;
}

}  // namespace

Result<Committed> FromOpResult(const wire::OpResult& result) {
  if (result.code() == 0) return Committed{result.value(), result.index()};
  const auto code = result.code() <= static_cast<uint32_t>(StatusCode::kUnknownOutcome)
                        ? static_cast<StatusCode>(result.code())
                        : StatusCode::kError;
  return Status(code == StatusCode::kOk ? StatusCode::kError : code, result.error());
}

Proposer::Proposer(EventLoop& loop, const Clock& clock, PeerService& peers, RaftEngine& engine,
                   const ReplicatedState& state, const MembersState& members,
                   std::function<std::optional<Ipv4>()> leader_ip, Options options)
    : loop_(loop),
      clock_(clock),
      peers_(peers),
      engine_(engine),
      state_(state),
      members_(members),
      leader_ip_(std::move(leader_ip)),
      options_(std::move(options)),
      flush_timer_(loop),
      leader_watch_(loop) {}

std::string Proposer::NewRequestId() {
  // The counter first: ids are compared often (the request log is sorted by them), and ids of
  // one node would otherwise share their first 18 characters.
  return std::to_string(++next_request_) + "-" + options_.request_suffix;
}

void Proposer::ObserveLeader() {
  const std::optional<Ipv4> leader = leader_ip_();
  if (engine_.IsLeader() || (leader && *leader != options_.self_ip)) {
    leaderless_since_.reset();
  } else if (!leaderless_since_) {
    leaderless_since_ = clock_.Monotonic();
  }
}

void Proposer::Stop() {
  stopped_ = true;
  flush_timer_.Stop();
  leader_watch_.Stop();
  auto queued = std::move(batch_);
  batch_.clear();
  for (Queued& item : queued) item.done(ErrorResult(Status::Unavailable("shutting down")));
}

void Proposer::OnProposeRequest(const wire::ProposeRequest& request, PeerService::Reply reply) {
  const wire::Op& op = request.op();
  Status refused =
      engine_.IsLeader() ? CheckOp(op) : Status(StatusCode::kNotLeader, "not the leader");
  if (refused.ok() && op.request_id().empty()) refused = Status::Invalid("no request id");
  if (refused.ok() && stopped_) refused = Status::Unavailable("shutting down");
  if (!refused.ok()) {
    wire::PeerMessage response;
    *response.mutable_propose_response()->mutable_result() = ErrorResult(refused);
    reply(response);
    return;
  }
  ProposeLocally(std::make_shared<wire::Op>(op), [reply](wire::OpResult result) {
    wire::PeerMessage response;
    *response.mutable_propose_response()->mutable_result() = std::move(result);
    reply(response);
  });
}

Status Proposer::CheckOp(const wire::Op& op) const {
  // An operation no node can apply would stop every node that reads it: it never enters the log.
  const std::optional<uint32_t> version = state_.ProposableVersion(op.module());
  if (!version) return Status::Invalid("no state module '" + op.module() + "'");
  if (op.version() == 0 || op.version() > *version) {
    return Status::Unsupported("module " + op.module() + " has no version " +
                               std::to_string(op.version()) + " here");
  }
  if (op.version() > 1 && members_.FeatureLevel(op.module()) < op.version()) {
    // Some member would stop at it: wait until every member runs a build that knows it.
    return Status::Unsupported("not every member supports " + op.module() + " version " +
                               std::to_string(op.version()) + " yet");
  }
  if (op.request_id().size() > kMaxRequestIdBytes) {
    return Status::Invalid("request id longer than " + std::to_string(kMaxRequestIdBytes) +
                           " bytes");
  }
  return Status::Ok();
}

void Proposer::Propose(Proposal proposal, Callback done) {
  if (proposal.request_id.empty()) proposal.request_id = NewRequestId();
  auto op = std::make_shared<wire::Op>(OpOf(std::move(proposal)));
  if (Status refused = CheckOp(*op); !refused.ok()) {
    done(refused);
    return;
  }
  Submit(std::make_shared<Attempt>(
             Attempt{std::move(op), clock_.Monotonic() + options_.timeout, std::move(done)}),
         false);
}

void Proposer::Retry(std::shared_ptr<Attempt> attempt, const Status& why, bool sent) {
  if (clock_.Monotonic() + kForwardRetry >= attempt->deadline) return GiveUp(*attempt, why, sent);
  loop_.RunAfter(kForwardRetry,
                 [this, attempt = std::move(attempt), sent] { Submit(attempt, sent); });
}

void Proposer::GiveUp(const Attempt& attempt, const Status& why, bool sent) {
  if (sent && why.code() != StatusCode::kNotLeader) {
    attempt.done(Status(StatusCode::kUnknownOutcome,
                        why.message() +
                            "; the proposal may have been committed (retry with request id " +
                            attempt.op->request_id() + ")"));
  } else {
    attempt.done(Status(StatusCode::kNoQuorum, why.message()));
  }
}

void Proposer::Submit(std::shared_ptr<Attempt> attempt, bool maybe_sent) {
  if (stopped_) {
    attempt->done(maybe_sent
                      ? Status(StatusCode::kUnknownOutcome,
                               "shutting down; the proposal may have been committed (request id " +
                                   attempt->op->request_id() + ")")
                      : Status::Unavailable("shutting down"));
    return;
  }
  if (engine_.IsLeader()) {
    ProposeLocally(attempt->op, [this, attempt, maybe_sent](wire::OpResult answer) {
      Result<Committed> result = FromOpResult(answer);
      if (!result.ok() && Retriable(result.code())) {
        Retry(attempt, result.status(), maybe_sent || result.code() == StatusCode::kUnknownOutcome);
        return;
      }
      attempt->done(std::move(result));
    });
    return;
  }
  auto leader = leader_ip_();
  if (!leader || *leader == options_.self_ip) {
    ObserveLeader();
    const auto leaderless = clock_.Monotonic() - leaderless_since_.value_or(clock_.Monotonic());
    const Status why =
        engine_.started()
            ? Status(StatusCode::kNoQuorum,
                     "no leader for " +
                         std::to_string(
                             std::chrono::duration_cast<std::chrono::milliseconds>(leaderless)
                                 .count()) +
                         " ms: the cluster has lost its quorum, is electing one, or this node is "
                         "cut off from it")
            : Status::Unavailable("this node is not part of a cluster yet");
    // A node long without a leader says so at once rather than at the timeout.
    if (engine_.started() && leaderless >= options_.leaderless_grace) {
      return GiveUp(*attempt, why, maybe_sent);
    }
    Retry(std::move(attempt), why, maybe_sent);
    return;
  }
  wire::PeerMessage request;
  *request.mutable_propose_request()->mutable_op() = *attempt->op;
  const auto budget =
      std::chrono::duration_cast<std::chrono::milliseconds>(attempt->deadline - clock_.Monotonic());
  const uint64_t forward = ++next_forward_;
  forwarded_.emplace(forward, Forwarded{attempt, *leader});
  if (forwarded_.size() == 1)
    leader_watch_.Start(kLeaderWatch, kLeaderWatch, [this] { FollowLeader(); });
  peers_.Call(
      *leader, request, std::max(budget, std::chrono::milliseconds(1)),
      [this, forward](Result<wire::PeerMessage> response) {
        auto it = forwarded_.find(forward);
        if (it == forwarded_.end()) return;  // sent to a newer leader meanwhile
        std::shared_ptr<Attempt> attempt = std::move(it->second.attempt);
        forwarded_.erase(it);
        if (forwarded_.empty()) leader_watch_.Stop();
        if (!response.ok()) {
          // It may have reached the leader before the connection failed.
          Retry(attempt, Status(StatusCode::kNoQuorum, "leader unreachable: " + response.error()),
                true);
          return;
        }
        Result<Committed> result = FromOpResult(response.value().propose_response().result());
        if (!result.ok() && Retriable(result.code())) {
          Retry(attempt, result.status(), result.code() != StatusCode::kNotLeader);
          return;
        }
        attempt->done(std::move(result));
      });
}

void Proposer::FollowLeader() {
  ObserveLeader();
  const std::optional<Ipv4> leader = engine_.IsLeader() ? options_.self_ip : leader_ip_();
  if (!leader) return;  // none yet: the answers (or their timeouts) decide
  std::vector<std::shared_ptr<Attempt>> moved;
  for (auto it = forwarded_.begin(); it != forwarded_.end();) {
    if (it->second.leader == *leader) {
      ++it;
      continue;
    }
    moved.push_back(std::move(it->second.attempt));
    it = forwarded_.erase(it);
  }
  if (forwarded_.empty()) leader_watch_.Stop();
  // The old leader may have committed it: the same request id keeps it applied once.
  for (auto& attempt : moved) Submit(std::move(attempt), true);
}

void Proposer::ProposeLocally(OpPtr op, std::function<void(wire::OpResult)> done) {
  batch_.push_back(Queued{std::move(op), std::move(done)});
  if (batch_.size() >= kMaxBatch) {
    FlushBatch();
  } else if (batch_.size() == 1) {
    // Everything proposed during this turn of the loop goes into one entry.
    flush_timer_.Start(std::chrono::milliseconds(0), std::chrono::milliseconds(0),
                       [this] { FlushBatch(); });
  }
}

void Proposer::FlushBatch() {
  // Flow control: every node applies what commits in one go, so a burst of big entries would
  // hold every event loop (heartbeats included) for as long as it takes. What is over the
  // limit waits here for the entries ahead of it to commit.
  while (!batch_.empty() && in_flight_ops_ < kMaxInFlightOps &&
         in_flight_bytes_ < kMaxInFlightBytes) {
    const size_t count = std::min(batch_.size(), kMaxBatch);
    auto batch = std::make_shared<std::vector<Queued>>(
        std::make_move_iterator(batch_.begin()), std::make_move_iterator(batch_.begin() + count));
    batch_.erase(batch_.begin(), batch_.begin() + count);
    wire::Entry entry;
    entry.set_format(kEntryFormat);
    entry.set_at_nanos(clock_.WallUtcNanos());  // the leader's clock, whoever proposed it
    entry.mutable_ops()->Reserve(static_cast<int>(count));
    for (const Queued& queued : *batch) *entry.add_ops() = *queued.op;
    std::string bytes = entry.SerializeAsString();
    const size_t size = bytes.size();
    in_flight_ops_ += count;
    in_flight_bytes_ += size;
    engine_.Apply(std::move(bytes),
                  [this, batch, count, size](Result<std::string> applied, uint64_t) {
                    in_flight_ops_ -= count;
                    in_flight_bytes_ -= size;
                    if (!batch_.empty()) {
                      flush_timer_.Start(std::chrono::milliseconds(0), std::chrono::milliseconds(0),
                                         [this] { FlushBatch(); });
                    }
                    wire::EntryResult results;
                    if (applied.ok() && !results.ParseFromString(applied.value())) {
                      applied = Status::Error("undecodable apply result");
                    }
                    for (size_t i = 0; i < batch->size(); ++i) {
                      auto& done = (*batch)[i].done;
                      if (!applied.ok()) {
                        done(ErrorResult(applied.status()));
                      } else if (static_cast<int>(i) < results.results_size()) {
                        // Its own index: a retried request id answers the first commit's.
                        done(results.results(static_cast<int>(i)));
                      } else {
                        done(ErrorResult(Status::Error("no result for the operation")));
                      }
                    }
                  });
  }
}

}  // namespace synod
