#include "timers/timer_service.h"

#include <charconv>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "timers/schedule.h"
#include "timers/timer_ownership.h"

namespace synod {
namespace {

constexpr auto kRecordRetry = std::chrono::milliseconds(500);
constexpr auto kHousekeepingPeriod = std::chrono::seconds(5);
constexpr auto kLeaderlessRetry = std::chrono::milliseconds(100);

// "http://host:port" of a URL: requests to one destination share its concurrency limit.
std::string DestinationOf(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const size_t host_end = url.find_first_of("/?#", scheme_end + 3);
  return url.substr(0, host_end);
}

// Retry-After: seconds, or an HTTP date (which we do not parse: the backoff applies).
int64_t RetryAfterNanos(const HttpReply& reply) {
  const std::string* value = reply.Header("retry-after");
  if (value == nullptr) return 0;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), seconds);
  if (ec != std::errc() || end != value->data() + value->size() || seconds < 0) return 0;
  return std::min<int64_t>(seconds, 3600) * TimerState::kSecond;
}

bool MayPassLater(StatusCode code) { return !IsRequestError(code) && code != StatusCode::kOk; }

}  // namespace

// One attempt, from the moment it is taken until its record is committed.
struct TimerService::Firing {
  Uuid id;
  wire::TimerComplete complete;
  OutgoingHttpRequest request;
  std::string request_id;  // for recording, kept across retries
  std::string claim_id;    // for the claim, kept across retries; empty if sent unclaimed
  std::shared_ptr<bool> answered = std::make_shared<bool>(false);
};

TimerService::TimerService(Scheduler& loop, const Clock& clock, ClusterLog& cluster,
                           HttpSender& webhooks, TimerOptions options)
    : loop_(loop),
      clock_(clock),
      cluster_(cluster),
      options_(std::move(options)),
      scheduler_(state_, options_.self_id,
                 std::chrono::duration_cast<Nanos>(options_.backup_delay).count()),
      http_(webhooks),
      wake_timer_(loop),
      housekeeping_timer_(loop) {
  cluster_.RegisterModule(state_);
  TimerState::Listener listener = scheduler_.Listener();
  if (options_.events) {
    listener.on_attempt = [this](const wire::TimerRecord& record,
                                 const wire::TimerAttempt& attempt) {
      PublishAttempt(record, attempt);
    };
  }
  state_.SetListener(std::move(listener));
  cluster_.AddStateListener([this] { OnStateChanged(); });
}

TimerService::~TimerService() { *alive_ = false; }

void TimerService::Start() {
  housekeeping_timer_.Start(kHousekeepingPeriod, kHousekeepingPeriod, [this] { Housekeeping(); });
  OnStateChanged();
}

void TimerService::Stop() {
  stopped_ = true;
  wake_timer_.Stop();
  housekeeping_timer_.Stop();
}

void TimerService::Propose(Proposal proposal, std::string request_id, RecordCallback done) {
  proposal.request_id = std::move(request_id);
  cluster_.Propose(std::move(proposal), [done = std::move(done)](Result<Committed> result) {
    if (!result.ok()) return done(result.status());
    wire::TimerRecord record;
    if (!record.ParseFromString(result.value().value)) {
      return done(Status::Error("timers: undecodable answer"));
    }
    done(std::move(record));
  });
}

void TimerService::Create(wire::TimerCreate create, std::string request_id, RecordCallback done) {
  if (create.id().empty()) create.set_id(NewTimerId());
  Propose(TimerState::Create(create), std::move(request_id), std::move(done));
}

void TimerService::Cancel(const std::string& id, RecordCallback done) {
  Propose(TimerState::Cancel(id), "", std::move(done));
}

void TimerService::Reschedule(wire::TimerReschedule reschedule, RecordCallback done) {
  Propose(TimerState::Reschedule(reschedule), "", std::move(done));
}

void TimerService::OnStateChanged() {
  if (stopped_) return;
  scheduler_.SetNodes(TimerOwnership::EligibleNodes(cluster_.members().MembersInJoinOrder()),
                      clock_.WallUtcNanos());
  Arm();
}

void TimerService::Arm() {
  if (stopped_ || scheduler_.started() >= options_.max_in_flight) return;
  std::optional<int64_t> next = scheduler_.NextWake();
  if (!next) {
    if (armed_for_) wake_timer_.Stop();
    armed_for_.reset();
    return;
  }
  if (armed_for_ && *armed_for_ <= *next) return;
  const int64_t wait = *next - clock_.WallUtcNanos();
  // Rounded up: a timer is never fired before its time.
  const auto delay = std::chrono::milliseconds(wait <= 0 ? 0 : (wait + 999'999) / 1'000'000);
  armed_for_ = *next;
  wake_timer_.Start(delay, std::chrono::milliseconds(0), [this] { Wake(); });
}

void TimerService::Wake() {
  armed_for_.reset();
  if (stopped_) return;
  // A node that knows no leader may have missed a cancel or a reschedule: it fires nothing
  // until it is part of a working cluster again.
  if (!cluster_.LeaderAddress()) {
    armed_for_ = clock_.WallUtcNanos() + kLeaderlessRetry.count() * 1'000'000;
    wake_timer_.Start(kLeaderlessRetry, std::chrono::milliseconds(0), [this] { Wake(); });
    return;
  }
  if (cluster_.term() != term_) {
    // A leader this node has not fired under: it may have been cut off, or have restarted, and
    // miss attempts that others recorded meanwhile, so it first catches up with what is
    // committed. And since no node fires without a leader, the owners' silence until now says
    // nothing of whether they are down: the backups wait a little (CI saw two live nodes send
    // the same timers when they did not).
    if (confirming_) return;
    confirming_ = true;
    cluster_.ConfirmRead([this, alive = alive_, term = cluster_.term()](Status caught_up) {
      if (!*alive) return;
      confirming_ = false;
      if (stopped_) return;
      if (!caught_up.ok()) {
        wake_timer_.Start(kLeaderlessRetry, std::chrono::milliseconds(0), [this] { Wake(); });
        return;
      }
      term_ = term;
      // An owner that fires now has announced it (or recorded it) within twice announce_after;
      // the whole backup delay would make a dead leader's timers later still.
      scheduler_.HoldBackups(
          clock_.WallUtcNanos() +
          2 * std::chrono::duration_cast<Nanos>(options_.announce_after).count());
      Wake();
    });
    return;
  }
  const int64_t now = clock_.WallUtcNanos();
  const size_t room =
      options_.max_in_flight - std::min(options_.max_in_flight, scheduler_.started());
  for (const Uuid& id : scheduler_.TakeDue(now, room)) Fire(id, now);
  Arm();
}

void TimerService::Fire(const Uuid& id, int64_t now) {
  std::optional<wire::TimerRecord> record = state_.Get(id);
  if (!record || record->status() != wire::TIMER_WAITING) {
    scheduler_.Finished(id);
    return;
  }
  const wire::TimerSpec& spec = record->spec();
  auto firing = std::make_unique<Firing>();
  firing->id = id;
  firing->request_id = cluster_.NewRequestId();
  firing->complete.set_id(record->id());
  wire::TimerAttempt& attempt = *firing->complete.mutable_attempt();
  attempt.set_occurrence(record->occurrence());
  attempt.set_number(record->attempts() + 1);
  attempt.set_node(options_.self_id);
  attempt.set_term(cluster_.term());
  attempt.set_due_nanos(record->next_attempt_nanos());
  attempt.set_started_nanos(now);

  if (attempt.number() == 1) {
    const double lateness = NanosToSeconds(now - record->due_nanos());
    for (size_t i = 0; i < stats_.lateness_buckets.size(); ++i) {
      if (lateness <= TimerFireStats::kLatenessBounds[i]) ++stats_.lateness_buckets[i];
    }
    ++stats_.lateness_count;
    stats_.lateness_sum += lateness;
    if (spec.late_policy() != wire::LATE_FIRE &&
        now - record->due_nanos() > spec.late_after_nanos()) {
      attempt.set_skipped(true);
      attempt.set_ended_nanos(now);
      ++stats_.skipped;
      return Record(std::move(firing));
    }
  }

  OutgoingHttpRequest& request = firing->request;
  request.method = spec.method();
  request.url = spec.append_id()
                    ? spec.url() + (spec.url().ends_with("/") ? "" : "/") + record->id()
                    : spec.url();
  request.timeout = std::chrono::milliseconds(spec.timeout_ms());
  request.body = spec.has_body() ? spec.body()
                                 : nlohmann::json{{"id", record->id()},
                                                  {"due", FormatRfc3339(record->due_nanos())},
                                                  {"attempt", attempt.number()}}
                                       .dump();
  for (const wire::TimerHeader& header : spec.headers()) {
    request.headers.push_back(header.name() + ": " + header.value());
  }
  request.headers.push_back("Idempotency-Key: " + record->id());
  request.headers.push_back("Synod-Timer-Id: " + record->id());
  request.headers.push_back("Synod-Attempt: " + std::to_string(attempt.number()));
  request.headers.push_back("Synod-Occurrence: " + std::to_string(attempt.occurrence()));
  request.headers.push_back("Synod-Term: " + std::to_string(attempt.term()));
  request.headers.push_back("Synod-Node: " + options_.self_id);
  request.headers.push_back("Synod-Due-Nanos: " + std::to_string(record->due_nanos()));
  if (options_.signer) {
    const int64_t timestamp = now / TimerState::kSecond;
    request.headers.push_back("webhook-id: " + record->id());
    request.headers.push_back("webhook-timestamp: " + std::to_string(timestamp));
    request.headers.push_back("webhook-signature: " +
                              options_.signer->Sign(record->id(), timestamp, request.body));
  }
  if (MustClaim(*record, now)) {
    firing->claim_id = cluster_.NewRequestId();
    Claim(std::move(firing));
    return;
  }
  Send(DestinationOf(request.url), std::move(firing));
}

bool TimerService::MustClaim(const wire::TimerRecord& record, int64_t now) const {
  // Unless a member would not know claims: then it fires as version 1 did.
  return scheduler_.MustClaim(record, now) &&
         cluster_.members().FeatureLevel(std::string(TimerState::kName)) >=
             TimerState::kClaimVersion;
}

void TimerService::Claim(std::unique_ptr<Firing> firing) {
  wire::TimerBegin begin;
  begin.set_id(firing->complete.id());
  begin.set_occurrence(firing->complete.attempt().occurrence());
  begin.set_number(firing->complete.attempt().number());
  begin.set_node(options_.self_id);
  Proposal proposal = TimerState::Begin(begin, TimerState::kClaimVersion);
  proposal.request_id = firing->claim_id;
  cluster_.Propose(std::move(proposal), [this, alive = alive_,
                                         firing = std::shared_ptr<Firing>(std::move(firing))](
                                            Result<Committed> result) mutable {
    if (!*alive || stopped_) return;
    const Uuid id = firing->id;
    if (result.ok()) {
      firing->complete.mutable_attempt()->set_started_nanos(clock_.WallUtcNanos());
      const std::string destination = DestinationOf(firing->request.url);
      Send(destination, std::make_unique<Firing>(std::move(*firing)));
      return;
    }
    if (MayPassLater(result.status().code())) {
      // Maybe committed: the same request id answers the first result if it was.
      loop_.RunAfter(kRecordRetry, [this, alive, firing] {
        if (*alive) Claim(std::make_unique<Firing>(std::move(*firing)));
      });
      return;
    }
    scheduler_.Finished(id);
    std::optional<wire::TimerRecord> record = state_.Get(id);
    if (result.status().code() == StatusCode::kConflict && record &&
        record->begun_attempt() == firing->complete.attempt().number()) {
      // Under way elsewhere. Taken again when that node records it, or when its claim
      // expires (it crashed).
      const int64_t wait = TimerState::ClaimExpiry(*record) - clock_.WallUtcNanos();
      loop_.RunAfter(std::chrono::milliseconds(std::max<int64_t>(wait / 1'000'000, 0) + 1),
                     [this, alive, id] {
                       if (!*alive || stopped_) return;
                       scheduler_.Release(id);
                       Arm();
                     });
    }
    Arm();
  });
}

void TimerService::Send(const std::string& destination, std::unique_ptr<Firing> firing) {
  Destination& slot = destinations_[destination];
  if (slot.active >= options_.per_destination) {
    slot.waiting.push_back(std::move(firing));
    return;
  }
  ++slot.active;
  ++stats_.attempts;
  if (firing->claim_id.empty()) {
    loop_.RunAfter(options_.announce_after,
                   [this, alive = alive_, answered = firing->answered,
                    attempt = firing->complete.attempt(), id = firing->complete.id()] {
                     if (*alive && !*answered) Announce(attempt, id);
                   });
  }
  OutgoingHttpRequest request = firing->request;
  http_.Send(std::move(request), [this, destination, alive = alive_,
                                  firing = std::shared_ptr<Firing>(std::move(firing))](
                                     Result<HttpReply> reply) mutable {
    if (!*alive) return;
    Destination& slot = destinations_[destination];
    --slot.active;
    OnAnswered(std::make_unique<Firing>(std::move(*firing)), std::move(reply));
    if (!slot.waiting.empty()) {
      std::unique_ptr<Firing> next = std::move(slot.waiting.front());
      slot.waiting.pop_front();
      Send(destination, std::move(next));
    } else if (slot.active == 0) {
      destinations_.erase(destination);
    }
  });
}

void TimerService::PublishAttempt(const wire::TimerRecord& record,
                                  const wire::TimerAttempt& attempt) const {
  const wire::MemberRecord* node = cluster_.members().FindMember(attempt.node());
  nlohmann::json fields = {
      {"timer_id", record.id()},
      {"url", record.spec().url()},
      {"attempt", attempt.number()},
      {"lateness_ms", NanosToMillis(attempt.started_nanos() - attempt.due_nanos())},
      {"by", node ? node->name() : attempt.node()},
      {"status", TimerStatusName(record, attempt.ended_nanos())},
  };
  const char* type = "timer.fired";
  if (attempt.skipped()) {
    type = "timer.skipped";
  } else if (attempt.http_status() >= 200 && attempt.http_status() < 300) {
    fields["http_status"] = attempt.http_status();
  } else {
    type = "timer.failed";
    if (attempt.http_status() != 0) fields["http_status"] = attempt.http_status();
    fields["error"] = attempt.http_status() != 0
                          ? "answered " + std::to_string(attempt.http_status())
                          : attempt.error();
  }
  options_.events(type, attempt.ended_nanos(), std::move(fields));
}

void TimerService::Announce(const wire::TimerAttempt& attempt, const std::string& id) {
  wire::TimerBegin begin;
  begin.set_id(id);
  begin.set_occurrence(attempt.occurrence());
  begin.set_number(attempt.number());
  begin.set_node(options_.self_id);
  const uint32_t version = std::min(
      TimerState::kClaimVersion, cluster_.members().FeatureLevel(std::string(TimerState::kName)));
  cluster_.Propose(TimerState::Begin(begin, std::max(version, 1u)), [](Result<Committed>) {});
}

void TimerService::OnAnswered(std::unique_ptr<Firing> firing, Result<HttpReply> reply) {
  *firing->answered = true;
  wire::TimerAttempt& attempt = *firing->complete.mutable_attempt();
  attempt.set_ended_nanos(clock_.WallUtcNanos());
  if (reply.ok()) {
    attempt.set_http_status(static_cast<int32_t>(reply.value().status));
    if (reply.value().status >= 200 && reply.value().status < 300) {
      ++stats_.succeeded;
    } else {
      ++stats_.failed;
      firing->complete.set_retry_after_nanos(RetryAfterNanos(reply.value()));
    }
  } else {
    ++stats_.failed;
    attempt.set_error(reply.status().message());
  }
  Record(std::move(firing));
}

void TimerService::Record(std::unique_ptr<Firing> firing) {
  Proposal proposal = TimerState::Complete(firing->complete);
  proposal.request_id = firing->request_id;
  cluster_.Propose(std::move(proposal),
                   [this, alive = alive_, firing = std::shared_ptr<Firing>(std::move(firing))](
                       Result<Committed> result) mutable {
                     if (!*alive) return;
                     if (!result.ok() && MayPassLater(result.status().code()) && !stopped_) {
                       // Not recorded yet: the attempt happened, so it must be, or another
                       // node would send it again.
                       loop_.RunAfter(kRecordRetry, [this, alive, firing] {
                         if (*alive) Record(std::make_unique<Firing>(std::move(*firing)));
                       });
                       return;
                     }
                     if (!result.ok() && result.status().code() != StatusCode::kConflict) {
                       spdlog::warn("timers: cannot record attempt {} of {}: {}",
                                    firing->complete.attempt().number(), firing->complete.id(),
                                    result.status().message());
                     }
                     scheduler_.Finished(firing->id);
                     Arm();
                   });
}

void TimerService::Housekeeping() {
  if (stopped_ || !cluster_.IsLeader()) return;
  const TimerState::Index& finished = state_.finished();
  if (finished.empty()) return;
  const int64_t before =
      clock_.WallUtcNanos() - std::chrono::duration_cast<Nanos>(options_.retention).count();
  if (finished.begin()->first >= before && finished.size() <= options_.keep_finished) return;
  cluster_.Propose(TimerState::Compact(before, options_.keep_finished),
                   [this, alive = alive_](Result<Committed> result) {
                     if (!*alive) return;
                     if (!result.ok()) {
                       spdlog::debug("timers: compaction not committed: {}",
                                     result.status().message());
                       return;
                     }
                     // A full batch: more may be due for removal, faster than every period.
                     if (result.value().value == std::to_string(TimerState::kCompactBatch)) {
                       Housekeeping();
                     }
                   });
}

}  // namespace synod
