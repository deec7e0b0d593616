#include "timers/timer_state.h"

#include <algorithm>
#include <cctype>

#include "timers/schedule.h"

namespace synod {
namespace {

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// Headers a user may not set: the transport's own, and those that carry the firing's identity.
bool IsReservedHeader(const std::string& lower_name) {
  return lower_name == "host" || lower_name == "content-length" ||
         lower_name == "transfer-encoding" || lower_name == "connection" ||
         lower_name == "idempotency-key" || lower_name.starts_with("synod-") ||
         lower_name.starts_with("webhook-");
}

Status CheckUrl(const std::string& url) {
  if (url.empty()) return Status::Invalid("url is required");
  if (url.size() > TimerState::kMaxUrlBytes) return Status::Invalid("url is over 2048 bytes");
  const std::string lower = Lower(url.substr(0, 8));
  size_t host_at = 0;
  if (lower.starts_with("http://")) {
    host_at = 7;
  } else if (lower.starts_with("https://")) {
    host_at = 8;
  } else {
    return Status::Invalid("url must be an absolute http:// or https:// URL: " + url);
  }
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) {
      return Status::Invalid("url must not contain spaces or control characters");
    }
  }
  if (host_at >= url.size() || url[host_at] == '/' || url[host_at] == ':' || url[host_at] == '?' ||
      url[host_at] == '#') {
    return Status::Invalid("url has no host: " + url);
  }
  return Status::Ok();
}

RetryPolicy PolicyOf(const wire::TimerSpec& spec) {
  return RetryPolicy{spec.max_attempts(), spec.initial_backoff_nanos(), spec.max_backoff_nanos(),
                     spec.backoff_multiplier()};
}

bool Recurring(const wire::TimerSpec& spec) {
  return spec.every_nanos() > 0 || !spec.cron().empty();
}

// The first occurrence of a recurring timer after `after`, or none (a cron expression that
// never matches again).
std::optional<int64_t> NextOccurrence(const wire::TimerSpec& spec, int64_t previous_due,
                                      int64_t after) {
  if (spec.every_nanos() > 0) {
    int64_t next = previous_due + spec.every_nanos();
    if (next <= after) next += ((after - next) / spec.every_nanos() + 1) * spec.every_nanos();
    return next;
  }
  Result<CronSchedule> cron = CronSchedule::Parse(spec.cron());
  if (!cron.ok()) return std::nullopt;
  return cron.value().NextAfter(std::max(previous_due, after));
}

// The due time a create or a reschedule gives: a delay from the entry's time, or a time; none
// if the command has neither (`start_case` 0).
template <typename Command>
Result<std::optional<int64_t>> StartOf(const Command& command, int64_t now) {
  if (command.start_case() == Command::kDelayNanos) {
    if (command.delay_nanos() < 0 || command.delay_nanos() > TimerState::kMaxHorizonNanos) {
      return Status::Invalid("the delay must be 0 to 10 years");
    }
    return std::optional<int64_t>(now + command.delay_nanos());
  }
  if (command.start_case() == Command::kAtNanos) {
    if (command.at_nanos() < 0 || command.at_nanos() - now > TimerState::kMaxHorizonNanos) {
      return Status::Invalid("the time must be after 1970 and within 10 years");
    }
    return std::optional<int64_t>(command.at_nanos());
  }
  return std::optional<int64_t>();
}

std::string Serialize(const wire::TimerRecord& record) {
  std::string bytes;
  record.SerializeToString(&bytes);
  return bytes;
}

std::string Seconds(int64_t nanos) {
  char text[32];
  snprintf(text, sizeof text, "%.3f s", static_cast<double>(nanos) / 1e9);
  return text;
}

}  // namespace

Proposal TimerState::Create(const wire::TimerCreate& create) {
  wire::TimersCommand command;
  *command.mutable_create() = create;
  return MakeProposal(kName, command);
}

Proposal TimerState::Complete(const wire::TimerComplete& complete) {
  wire::TimersCommand command;
  *command.mutable_complete() = complete;
  return MakeProposal(kName, command);
}

Proposal TimerState::Begin(const wire::TimerBegin& begin, uint32_t version) {
  wire::TimersCommand command;
  *command.mutable_begin() = begin;
  return MakeProposal(kName, command, version);
}

int64_t TimerState::ClaimExpiry(const wire::TimerRecord& record) {
  // An announcement (version 1) has no time of its own; its attempt began after it was due.
  const int64_t since = std::max(record.begun_nanos(), record.next_attempt_nanos());
  return since + static_cast<int64_t>(record.spec().timeout_ms()) * 1'000'000 + kClaimGraceNanos;
}

Proposal TimerState::Cancel(const std::string& id) {
  wire::TimersCommand command;
  command.mutable_cancel()->set_id(id);
  return MakeProposal(kName, command);
}

Proposal TimerState::Reschedule(const wire::TimerReschedule& reschedule) {
  wire::TimersCommand command;
  *command.mutable_reschedule() = reschedule;
  return MakeProposal(kName, command);
}

Proposal TimerState::Compact(int64_t finished_before_nanos, uint64_t keep_at_most) {
  wire::TimersCommand command;
  command.mutable_compact()->set_finished_before_nanos(finished_before_nanos);
  command.mutable_compact()->set_keep_at_most(keep_at_most);
  return MakeProposal(kName, command);
}

Status TimerState::CheckSpec(const wire::TimerSpec& spec) {
  if (Status bad = CheckUrl(spec.url()); !bad.ok()) return bad;
  static constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  if (std::find(std::begin(kMethods), std::end(kMethods), spec.method()) == std::end(kMethods)) {
    return Status::Invalid("method must be one of GET, POST, PUT, PATCH, DELETE");
  }
  if (spec.headers_size() > static_cast<int>(kMaxHeaders)) {
    return Status::Invalid("at most 32 headers");
  }
  for (const wire::TimerHeader& header : spec.headers()) {
    if (header.name().empty() || header.name().size() > 128 ||
        !std::all_of(header.name().begin(), header.name().end(), IsTokenChar)) {
      return Status::Invalid("invalid header name '" + header.name() + "'");
    }
    if (IsReservedHeader(Lower(header.name()))) {
      return Status::Invalid("header " + header.name() + " is set by Synod and cannot be given");
    }
    if (header.value().size() > 4096 ||
        header.value().find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return Status::Invalid("invalid value for header " + header.name());
    }
  }
  if (spec.body().size() > kMaxBodyBytes) {
    return Status(StatusCode::kTooLarge, "body is over 64 KiB");
  }
  if (spec.timeout_ms() < 1 || spec.timeout_ms() > kMaxTimeoutMs) {
    return Status::Invalid("timeout must be 1 ms to 300 s");
  }
  if (Status bad = CheckRetryPolicy(PolicyOf(spec)); !bad.ok()) return bad;
  if (spec.late_after_nanos() < 0 || spec.late_after_nanos() > kMaxHorizonNanos) {
    return Status::Invalid("late_after must be 0 to 10 years");
  }
  if (!wire::LatePolicy_IsValid(spec.late_policy())) return Status::Invalid("unknown late policy");
  if (spec.every_nanos() < 0 || (spec.every_nanos() > 0 && spec.every_nanos() < kSecond) ||
      spec.every_nanos() > kMaxHorizonNanos) {
    return Status::Invalid("every must be 1 s to 10 years");
  }
  if (!spec.cron().empty()) {
    if (spec.every_nanos() > 0) return Status::Invalid("give every or cron, not both");
    Result<CronSchedule> cron = CronSchedule::Parse(spec.cron());
    if (!cron.ok()) return Status::Invalid("cron: " + cron.status().message());
  }
  if (spec.idempotency_key().size() > kMaxIdempotencyKeyBytes) {
    return Status::Invalid("idempotency key must be at most 128 bytes");
  }
  return Status::Ok();
}

std::optional<wire::TimerRecord> TimerState::Get(const Uuid& id) const {
  const Entry* entry = records_.Find(id);
  if (entry == nullptr) return std::nullopt;
  const std::string_view bytes = entry->record.first();
  wire::TimerRecord record;
  record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  return record;
}

Result<wire::TimerRecord> TimerState::Find(const std::string& text) const {
  std::optional<Uuid> id = Uuid::Parse(text);
  if (!id) return Status::Invalid("timer id is not a UUID: " + text);
  std::optional<wire::TimerRecord> record = Get(*id);
  if (!record) return Status::NotFound("no such timer: " + text);
  return *record;
}

void TimerState::Store(const Uuid& id, const wire::TimerRecord* before,
                       const wire::TimerRecord& record, std::string_view bytes) {
  if (before != nullptr) {
    --counts_[before->status()];
    if (before->status() == wire::TIMER_WAITING) {
      pending_.erase({before->next_attempt_nanos(), id});
    } else {
      finished_.erase({before->finished_nanos(), id});
    }
  }
  ++counts_[record.status()];
  std::optional<int64_t> next_attempt;
  if (record.status() == wire::TIMER_WAITING) {
    pending_.emplace(record.next_attempt_nanos(), id);
    next_attempt = record.next_attempt_nanos();
  } else {
    finished_.emplace(record.finished_nanos(), id);
  }
  if (!record.spec().idempotency_key().empty() && before == nullptr) {
    // A key names its newest timer: a snapshot loads the records in no particular order.
    auto [key, added] = by_idempotency_key_.try_emplace(record.spec().idempotency_key(), id);
    if (!added) {
      std::optional<wire::TimerRecord> named = Get(key->second);
      if (!named || named->created_nanos() <= record.created_nanos()) key->second = id;
    }
  }
  records_.Put(Entry{id, SharedBytes(bytes)});
  // Once the change is made, so that the listener reads the new record.
  if (listener_.on_change) listener_.on_change(id, next_attempt);
}

void TimerState::Remove(const Uuid& id, const wire::TimerRecord& record) {
  --counts_[record.status()];
  if (record.status() == wire::TIMER_WAITING) {
    pending_.erase({record.next_attempt_nanos(), id});
  } else {
    finished_.erase({record.finished_nanos(), id});
  }
  auto key = by_idempotency_key_.find(record.spec().idempotency_key());
  if (key != by_idempotency_key_.end() && key->second == id) by_idempotency_key_.erase(key);
  records_.Erase(id);
  if (listener_.on_change) listener_.on_change(id, std::nullopt);
}

Result<std::string> TimerState::Apply(const ApplyContext& context, uint32_t version,
                                      std::string_view bytes) {
  wire::TimersCommand command;
  if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Invalid("timers: undecodable command");
  }
  switch (command.body_case()) {
    case wire::TimersCommand::kCreate:
      return ApplyCreate(context, *command.mutable_create());
    case wire::TimersCommand::kComplete:
      return ApplyComplete(context, command.complete());
    case wire::TimersCommand::kBegin:
      return ApplyBegin(context, version, command.begin());
    case wire::TimersCommand::kCancel:
      return ApplyCancel(context, command.cancel());
    case wire::TimersCommand::kReschedule:
      return ApplyReschedule(context, command.reschedule());
    case wire::TimersCommand::kCompact:
      return ApplyCompact(command.compact());
    case wire::TimersCommand::BODY_NOT_SET:
      break;
  }
  return Status::Invalid("timers: unknown command kind");
}

Result<std::string> TimerState::ApplyCreate(const ApplyContext& context,
                                            wire::TimerCreate& create) {
  std::optional<Uuid> id = Uuid::Parse(create.id());
  if (!id) return Status::Invalid("timer id is not a UUID: " + create.id());
  if (Status bad = CheckSpec(create.spec()); !bad.ok()) return bad;
  const std::string& key = create.spec().idempotency_key();
  if (!key.empty()) {
    auto earlier = by_idempotency_key_.find(key);
    if (earlier != by_idempotency_key_.end()) {
      std::optional<wire::TimerRecord> first = Get(earlier->second);
      if (first && context.at_nanos - first->created_nanos() < kIdempotencyWindowNanos) {
        return Serialize(*first);
      }
    }
  }
  if (records_.Find(*id) != nullptr) return Status(StatusCode::kConflict, "timer id in use");

  Result<std::optional<int64_t>> start = StartOf(create, context.at_nanos);
  if (!start.ok()) return start.status();
  std::optional<int64_t> due = start.value();
  if (!due) {
    if (!Recurring(create.spec())) return Status::Invalid("a timer needs a delay or a time");
    due = NextOccurrence(create.spec(), context.at_nanos, context.at_nanos);
    if (!due || *due - context.at_nanos > kMaxHorizonNanos) {
      return Status::Invalid("the cron expression matches no time within 10 years");
    }
  }
  wire::TimerRecord record;
  record.set_id(id->ToString());
  *record.mutable_spec() = std::move(*create.mutable_spec());
  record.set_status(wire::TIMER_WAITING);
  record.set_created_nanos(context.at_nanos);
  record.set_due_nanos(*due);
  record.set_next_attempt_nanos(*due);
  std::string bytes = Serialize(record);
  Store(*id, nullptr, record, bytes);
  return bytes;
}

std::optional<int64_t> TimerState::LastHeardFrom(const std::string& node) const {
  auto it = last_heard_.find(node);
  if (it == last_heard_.end()) return std::nullopt;
  return it->second;
}

Result<std::string> TimerState::ApplyComplete(const ApplyContext& context,
                                              const wire::TimerComplete& done) {
  if (last_heard_.size() < 4096 || last_heard_.contains(done.attempt().node())) {
    last_heard_[done.attempt().node()] = context.at_nanos;
  }
  Result<wire::TimerRecord> found = Find(done.id());
  if (!found.ok()) return found.status();
  wire::TimerRecord record = std::move(found.value());
  const wire::TimerRecord before = record;
  const wire::TimerAttempt& attempt = done.attempt();
  if (record.status() != wire::TIMER_WAITING) {
    return Status(StatusCode::kConflict, "the timer is no longer waiting");
  }
  if (attempt.occurrence() != record.occurrence() || attempt.number() != record.attempts() + 1) {
    return Status(StatusCode::kConflict, "this attempt is already recorded");
  }
  record.clear_begun_attempt();
  record.clear_begun_node();
  record.clear_begun_nanos();
  *record.add_history() = attempt;
  if (record.history_size() > static_cast<int>(kHistory)) {
    record.mutable_history()->DeleteSubrange(0, record.history_size() - kHistory);
  }
  record.set_attempts(record.attempts() + 1);

  if (attempt.skipped()) {
    const std::string late = "came back " + Seconds(attempt.started_nanos() - record.due_nanos()) +
                             " after the due time";
    if (record.spec().late_policy() == wire::LATE_FAIL) {
      EndOccurrence(record, wire::TIMER_FAILED, "failed: " + late, context.at_nanos);
    } else {
      EndOccurrence(record, wire::TIMER_SKIPPED, "skipped: " + late, context.at_nanos);
    }
  } else if (attempt.http_status() >= 200 && attempt.http_status() < 300) {
    EndOccurrence(record, wire::TIMER_DONE, "answered " + std::to_string(attempt.http_status()),
                  context.at_nanos);
  } else {
    const std::string why = attempt.http_status() != 0
                                ? "answered " + std::to_string(attempt.http_status())
                                : attempt.error();
    if (record.attempts() >= record.spec().max_attempts()) {
      EndOccurrence(record, wire::TIMER_FAILED,
                    "failed after " + std::to_string(record.attempts()) + " attempts: " + why,
                    context.at_nanos);
    } else {
      const uint64_t seed = StableHash(*Uuid::Parse(record.id())) ^
                            StableHash(record.occurrence() << 16 | record.attempts());
      int64_t wait = BackoffNanos(PolicyOf(record.spec()), record.attempts(), seed);
      wait = std::max(wait, std::min(done.retry_after_nanos(), 3600 * kSecond));
      record.set_next_attempt_nanos(context.at_nanos + wait);
      record.set_outcome("attempt " + std::to_string(record.attempts()) + " " + why);
    }
  }
  Store(*Uuid::Parse(record.id()), &before, record, Serialize(record));
  if (listener_.on_attempt) listener_.on_attempt(record, attempt);
  return std::string();
}

// Version 1 refuses any second Begin of an attempt. A claim (version 2) is refused while
// another node's claim or announcement of the attempt stands, so of two nodes claiming the same
// late timer only one sends it; it is granted to the node that already holds it (which
// restarted since), and over a claim that expired (ClaimExpiry: that node crashed), so that an
// attempt whose node died is still made.
Result<std::string> TimerState::ApplyBegin(const ApplyContext& context, uint32_t version,
                                           const wire::TimerBegin& begin) {
  if (last_heard_.size() < 4096 || last_heard_.contains(begin.node())) {
    last_heard_[begin.node()] = context.at_nanos;
  }
  Result<wire::TimerRecord> found = Find(begin.id());
  if (!found.ok()) return found.status();
  wire::TimerRecord record = std::move(found.value());
  const wire::TimerRecord before = record;
  if (record.status() != wire::TIMER_WAITING || begin.occurrence() != record.occurrence() ||
      begin.number() != record.attempts() + 1) {
    return Status(StatusCode::kConflict, "this attempt is already recorded");
  }
  if (record.begun_attempt() == begin.number()) {
    const bool taken_over = version >= kClaimVersion && (record.begun_node() == begin.node() ||
                                                         context.at_nanos >= ClaimExpiry(record));
    if (!taken_over) {
      return Status(StatusCode::kConflict,
                    "this attempt is already under way on " + record.begun_node());
    }
  }
  record.set_begun_attempt(begin.number());
  record.set_begun_node(begin.node());
  if (version >= kClaimVersion) record.set_begun_nanos(context.at_nanos);
  Store(*Uuid::Parse(record.id()), &before, record, Serialize(record));
  return std::string();
}

void TimerState::EndOccurrence(wire::TimerRecord& record, wire::TimerStatus status,
                               std::string outcome, int64_t now) {
  record.set_completed(record.completed() + 1);
  record.set_outcome(std::move(outcome));
  if (Recurring(record.spec())) {
    std::optional<int64_t> next = NextOccurrence(record.spec(), record.due_nanos(), now);
    if (next && *next - now <= kMaxHorizonNanos) {
      record.set_occurrence(record.occurrence() + 1);
      record.set_attempts(0);
      record.set_due_nanos(*next);
      record.set_next_attempt_nanos(*next);
      return;
    }
    status = wire::TIMER_DONE;
    record.set_outcome(record.outcome() + "; no later occurrence");
  }
  record.set_status(status);
  record.set_finished_nanos(now);
}

Result<wire::TimerRecord> TimerState::FindWaiting(const std::string& id, int64_t now) const {
  Result<wire::TimerRecord> found = Find(id);
  if (!found.ok()) return found.status();
  std::string_view status = TimerStatusName(found.value(), now);
  if (status != "waiting") {
    return Status(StatusCode::kConflict, "the timer is " + std::string(status));
  }
  return found;
}

Result<std::string> TimerState::ApplyCancel(const ApplyContext& context,
                                            const wire::TimerCancel& cancel) {
  Result<wire::TimerRecord> found = FindWaiting(cancel.id(), context.at_nanos);
  if (!found.ok()) return found.status();
  wire::TimerRecord record = found.value();
  record.set_status(wire::TIMER_CANCELLED);
  record.set_finished_nanos(context.at_nanos);
  record.set_outcome("cancelled");
  std::string bytes = Serialize(record);
  Store(*Uuid::Parse(record.id()), &found.value(), record, bytes);
  return bytes;
}

Result<std::string> TimerState::ApplyReschedule(const ApplyContext& context,
                                                const wire::TimerReschedule& reschedule) {
  Result<wire::TimerRecord> found = FindWaiting(reschedule.id(), context.at_nanos);
  if (!found.ok()) return found.status();
  Result<std::optional<int64_t>> due = StartOf(reschedule, context.at_nanos);
  if (!due.ok()) return due.status();
  if (!due.value()) return Status::Invalid("a reschedule needs a delay or a time");
  wire::TimerRecord record = found.value();
  record.set_due_nanos(*due.value());
  record.set_next_attempt_nanos(*due.value());
  std::string bytes = Serialize(record);
  Store(*Uuid::Parse(record.id()), &found.value(), record, bytes);
  return bytes;
}

Result<std::string> TimerState::ApplyCompact(const wire::TimerCompact& compact) {
  size_t removed = 0;
  while (!finished_.empty() && removed < kCompactBatch) {
    const auto [finished_at, id] = *finished_.begin();
    if (finished_at >= compact.finished_before_nanos() &&
        finished_.size() <= compact.keep_at_most()) {
      break;
    }
    std::optional<wire::TimerRecord> record = Get(id);
    Remove(id, *record);
    ++removed;
  }
  return std::to_string(removed);
}

std::unique_ptr<SectionCapture> TimerState::Capture() const {
  // Records are kept as their section bytes.
  return CaptureMap(records_,
                    [](const Entry& entry, std::string&) { return entry.record.first(); });
}

class TimerState::Loader final : public SectionLoader {
 public:
  explicit Loader(TimerState& state) : state_(state) {}

  Status Add(std::string_view bytes) override {
    wire::TimerRecord record;
    if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return Status::Invalid("timers: undecodable record");
    }
    std::optional<Uuid> id = Uuid::Parse(record.id());
    if (!id) return Status::Invalid("timers: record with a bad id: " + record.id());
    if (!wire::TimerStatus_IsValid(record.status())) {
      return Status::Invalid("timers: record " + record.id() + " has an unknown status");
    }
    if (next_.records_.Find(*id) != nullptr) {
      return Status::Invalid("timers: timer " + record.id() + " twice");
    }
    next_.Store(*id, nullptr, record, bytes);
    return Status::Ok();
  }

  void Install() override {
    next_.listener_ = std::move(state_.listener_);
    state_ = std::move(next_);
    if (state_.listener_.on_reset) state_.listener_.on_reset();
  }

 private:
  TimerState& state_;
  TimerState next_;
};

std::unique_ptr<SectionLoader> TimerState::NewLoader(uint32_t) {
  return std::make_unique<Loader>(*this);
}

std::string_view TimerStatusName(const wire::TimerRecord& record, int64_t now_nanos) {
  switch (record.status()) {
    case wire::TIMER_WAITING:
      return record.attempts() == 0 && now_nanos < record.next_attempt_nanos() ? "waiting"
                                                                               : "executing";
    case wire::TIMER_DONE:
      return "done";
    case wire::TIMER_FAILED:
      return "failed";
    case wire::TIMER_CANCELLED:
      return "cancelled";
    case wire::TIMER_SKIPPED:
      return "skipped";
    default:
      return "unknown";
  }
}

}  // namespace synod
