#include "timers/timer_json.h"

#include <cmath>

#include "core/clock.h"
#include "core/duration.h"
#include "timers/schedule.h"
#include "timers/timer_state.h"

namespace synod {
namespace {

using nlohmann::json;
constexpr int64_t kSecond = TimerState::kSecond;
constexpr size_t kMaxRequestBytes = 128 * 1024;

Result<json> ParseObject(std::string_view body) {
  if (body.size() > kMaxRequestBytes) {
    return Status(StatusCode::kTooLarge, "the request body is over 128 KiB");
  }
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded()) return Status::Invalid("the body is not valid JSON");
  if (!parsed.is_object()) return Status::Invalid("the body must be a JSON object");
  return parsed;
}

// An integer, or a number with no fraction (5.0).
Result<int64_t> WholeNumber(const json& value, const std::string& field) {
  if (value.is_number_integer()) {
    if (value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX) {
      return Status::Invalid(field + " is out of range");
    }
    return value.get<int64_t>();
  }
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (std::isfinite(number) && number == std::floor(number) && std::fabs(number) < 1e15) {
      return static_cast<int64_t>(number);
    }
  }
  return Status::Invalid(field + " must be an integer");
}

// A duration: "90s", "1h30m", "250ms", or a number of seconds.
Result<int64_t> DurationNanos(const json& value, const std::string& field) {
  if (value.is_number()) {
    const double seconds = value.get<double>();
    if (!std::isfinite(seconds) || seconds < 0 ||
        seconds > static_cast<double>(TimerState::kMaxHorizonNanos / kSecond)) {
      return Status::Invalid(field + " must be 0 to 10 years");
    }
    return static_cast<int64_t>(std::llround(seconds * 1e9));
  }
  if (value.is_string()) {
    Result<std::chrono::milliseconds> parsed = ParseDuration(value.get<std::string>());
    if (!parsed.ok()) return Status::Invalid(field + ": " + parsed.status().message());
    const int64_t nanos = parsed.value().count() * 1'000'000;
    if (nanos > TimerState::kMaxHorizonNanos) return Status::Invalid(field + " is over 10 years");
    return nanos;
  }
  return Status::Invalid(field + " must be a duration (\"90s\", \"1h30m\") or seconds");
}

// A time: RFC 3339, or seconds since the epoch.
Result<int64_t> TimeNanos(const json& value, const std::string& field) {
  if (value.is_number()) {
    const double seconds = value.get<double>();
    if (!std::isfinite(seconds) || seconds < 0 || seconds > 9e9) {
      return Status::Invalid(field + " must be seconds since 1970 (before the year 2255)");
    }
    return static_cast<int64_t>(std::llround(seconds * 1e9));
  }
  if (value.is_string()) {
    Result<int64_t> parsed = ParseRfc3339(value.get<std::string>());
    if (!parsed.ok()) return Status::Invalid(field + ": " + parsed.status().message());
    return parsed.value();
  }
  return Status::Invalid(field + " must be an RFC 3339 time or seconds since 1970");
}

// "delay" or "at" (at most one) into a create's or a reschedule's start.
template <typename Command>
Status ParseStart(const json& request, Command& command) {
  if (request.contains("delay") && request.contains("at")) {
    return Status::Invalid("give delay or at, not both");
  }
  if (request.contains("delay")) {
    Result<int64_t> delay = DurationNanos(request["delay"], "delay");
    if (!delay.ok()) return delay.status();
    command.set_delay_nanos(delay.value());
  }
  if (request.contains("at")) {
    Result<int64_t> at = TimeNanos(request["at"], "at");
    if (!at.ok()) return at.status();
    command.set_at_nanos(at.value());
  }
  return Status::Ok();
}

void SetDefaults(wire::TimerSpec& spec) {
  const RetryPolicy defaults;
  spec.set_method("POST");
  spec.set_timeout_ms(10'000);
  spec.set_max_attempts(defaults.max_attempts);
  spec.set_initial_backoff_nanos(defaults.initial_backoff_nanos);
  spec.set_max_backoff_nanos(defaults.max_backoff_nanos);
  spec.set_backoff_multiplier(defaults.multiplier);
}

Status ParseRetry(const json& retry, wire::TimerSpec& spec) {
  if (!retry.is_object()) return Status::Invalid("retry must be an object");
  if (retry.contains("max_attempts")) {
    Result<int64_t> attempts = WholeNumber(retry["max_attempts"], "retry.max_attempts");
    if (!attempts.ok()) return attempts.status();
    if (attempts.value() < 1 || attempts.value() > 100) {
      return Status::Invalid("retry.max_attempts must be 1 to 100");
    }
    spec.set_max_attempts(static_cast<uint32_t>(attempts.value()));
  }
  for (const auto& [field, setter] :
       {std::pair{"initial_backoff", &wire::TimerSpec::set_initial_backoff_nanos},
        std::pair{"max_backoff", &wire::TimerSpec::set_max_backoff_nanos}}) {
    if (!retry.contains(field)) continue;
    Result<int64_t> nanos = DurationNanos(retry[field], std::string("retry.") + field);
    if (!nanos.ok()) return nanos.status();
    (spec.*setter)(nanos.value());
  }
  if (retry.contains("multiplier")) {
    if (!retry["multiplier"].is_number())
      return Status::Invalid("retry.multiplier must be a number");
    spec.set_backoff_multiplier(retry["multiplier"].get<double>());
  }
  return Status::Ok();
}

std::string_view LatePolicyName(wire::LatePolicy policy) {
  switch (policy) {
    case wire::LATE_SKIP:
      return "skip";
    case wire::LATE_FAIL:
      return "fail";
    default:
      return "fire";
  }
}

}  // namespace

Result<wire::TimerCreate> ParseSeedTimer(std::string_view body, int64_t* delay_seconds) {
  Result<json> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json& request = parsed.value();
  // Each part within 10 years, so that the sum cannot overflow.
  constexpr int64_t kMaxSeconds = TimerState::kMaxHorizonNanos / kSecond;
  int64_t total = 0;
  for (const auto& [field, unit, fallback] : {std::tuple{"hours", int64_t{3600}, int64_t{0}},
                                              std::tuple{"minutes", int64_t{60}, int64_t{0}},
                                              std::tuple{"seconds", int64_t{1}, int64_t{1}}}) {
    int64_t value = fallback;
    if (request.contains(field) && !request[field].is_null()) {
      Result<int64_t> number = WholeNumber(request[field], field);
      if (!number.ok()) return number.status();
      value = number.value();
    }
    if (value < 0) return Status::Invalid(std::string(field) + " must not be negative");
    if (value > kMaxSeconds / unit) return Status::Invalid(std::string(field) + " is too large");
    total += value * unit;
  }
  if (total > kMaxSeconds) return Status::Invalid("the timer is over 10 years away");
  if (!request.contains("url") || !request["url"].is_string()) {
    return Status::Invalid("url is required and must be a string");
  }
  wire::TimerCreate create;
  wire::TimerSpec& spec = *create.mutable_spec();
  SetDefaults(spec);
  spec.set_url(request["url"].get<std::string>());
  spec.set_append_id(true);
  if (Status bad = TimerState::CheckSpec(spec); !bad.ok()) return bad;
  create.set_delay_nanos(total * kSecond);
  *delay_seconds = total;
  return create;
}

Result<wire::TimerCreate> ParseNativeTimer(std::string_view body,
                                           const std::string& idempotency_header) {
  Result<json> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json& request = parsed.value();
  wire::TimerCreate create;
  wire::TimerSpec& spec = *create.mutable_spec();
  SetDefaults(spec);

  if (!request.contains("url") || !request["url"].is_string()) {
    return Status::Invalid("url is required and must be a string");
  }
  spec.set_url(request["url"].get<std::string>());
  int starts = 0;
  for (const char* field : {"delay", "at", "every", "cron"}) starts += request.contains(field);
  if (starts == 0) return Status::Invalid("give one of delay, at, every or cron");
  if (Status bad = ParseStart(request, create); !bad.ok()) return bad;
  if (request.contains("every")) {
    Result<int64_t> every = DurationNanos(request["every"], "every");
    if (!every.ok()) return every.status();
    if (every.value() < kSecond) return Status::Invalid("every must be at least 1 s");
    spec.set_every_nanos(every.value());
  }
  if (request.contains("cron")) {
    if (!request["cron"].is_string()) return Status::Invalid("cron must be a string");
    spec.set_cron(request["cron"].get<std::string>());
  }
  if (request.contains("method")) {
    if (!request["method"].is_string()) return Status::Invalid("method must be a string");
    std::string method = request["method"].get<std::string>();
    for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    spec.set_method(method);
  }
  if (request.contains("headers")) {
    if (!request["headers"].is_object()) {
      return Status::Invalid("headers must be an object of strings");
    }
    for (const auto& [name, value] : request["headers"].items()) {
      if (!value.is_string()) return Status::Invalid("header " + name + " must be a string");
      wire::TimerHeader& header = *spec.add_headers();
      header.set_name(name);
      header.set_value(value.get<std::string>());
    }
  }
  if (request.contains("body")) {
    if (!request["body"].is_string()) return Status::Invalid("body must be a string");
    spec.set_body(request["body"].get<std::string>());
    spec.set_has_body(true);
  }
  if (request.contains("timeout")) {
    Result<int64_t> timeout = DurationNanos(request["timeout"], "timeout");
    if (!timeout.ok()) return timeout.status();
    spec.set_timeout_ms(static_cast<uint32_t>(
        std::min<int64_t>(timeout.value() / 1'000'000, TimerState::kMaxTimeoutMs + 1)));
  }
  if (request.contains("retry")) {
    if (Status bad = ParseRetry(request["retry"], spec); !bad.ok()) return bad;
  }
  if (request.contains("late_policy")) {
    const json& policy = request["late_policy"];
    if (policy == "fire") {
      spec.set_late_policy(wire::LATE_FIRE);
    } else if (policy == "skip") {
      spec.set_late_policy(wire::LATE_SKIP);
    } else if (policy == "fail") {
      spec.set_late_policy(wire::LATE_FAIL);
    } else {
      return Status::Invalid("late_policy must be fire, skip or fail");
    }
    spec.set_late_after_nanos(60 * kSecond);
  }
  if (request.contains("late_after")) {
    Result<int64_t> late = DurationNanos(request["late_after"], "late_after");
    if (!late.ok()) return late.status();
    spec.set_late_after_nanos(late.value());
  }
  if (request.contains("append_id")) {
    if (!request["append_id"].is_boolean())
      return Status::Invalid("append_id must be true or false");
    spec.set_append_id(request["append_id"].get<bool>());
  }
  std::string key = idempotency_header;
  if (request.contains("idempotency_key")) {
    if (!request["idempotency_key"].is_string()) {
      return Status::Invalid("idempotency_key must be a string");
    }
    key = request["idempotency_key"].get<std::string>();
  }
  if (request.contains("idempotency_key") && key.empty()) {
    return Status::Invalid("idempotency_key must not be empty");
  }
  spec.set_idempotency_key(key);
  if (Status bad = TimerState::CheckSpec(spec); !bad.ok()) return bad;
  return create;
}

Result<wire::TimerReschedule> ParseReschedule(std::string_view body, const std::string& id) {
  Result<json> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json& request = parsed.value();
  wire::TimerReschedule reschedule;
  reschedule.set_id(id);
  if (request.contains("delay") == request.contains("at")) {
    return Status::Invalid("give delay or at (one of them)");
  }
  if (Status bad = ParseStart(request, reschedule); !bad.ok()) return bad;
  return reschedule;
}

int64_t TimeLeftSeconds(const wire::TimerRecord& record, int64_t now_nanos) {
  if (record.status() != wire::TIMER_WAITING || now_nanos >= record.next_attempt_nanos()) return 0;
  return (record.next_attempt_nanos() - now_nanos) / kSecond;
}

nlohmann::json TimerJson(const wire::TimerRecord& record, int64_t now_nanos) {
  const wire::TimerSpec& spec = record.spec();
  auto time_or_null = [](int64_t nanos) -> json {
    return nanos == 0 ? json(nullptr) : json(FormatRfc3339(nanos));
  };
  json headers = json::object();
  for (const wire::TimerHeader& header : spec.headers()) headers[header.name()] = header.value();
  json schedule = json::object();
  if (spec.every_nanos() > 0) schedule["every_s"] = NanosToSeconds(spec.every_nanos());
  if (!spec.cron().empty()) schedule["cron"] = spec.cron();
  json history = json::array();
  for (const wire::TimerAttempt& attempt : record.history()) {
    json entry = {{"occurrence", attempt.occurrence()},
                  {"attempt", attempt.number()},
                  {"node", attempt.node()},
                  {"term", attempt.term()},
                  {"due", FormatRfc3339(attempt.due_nanos())},
                  {"started", FormatRfc3339(attempt.started_nanos())},
                  {"ended", FormatRfc3339(attempt.ended_nanos())},
                  {"lateness_ms", NanosToMillis(attempt.started_nanos() - attempt.due_nanos())},
                  {"duration_ms", NanosToMillis(attempt.ended_nanos() - attempt.started_nanos())}};
    if (attempt.skipped()) entry["skipped"] = true;
    if (attempt.http_status() != 0) entry["http_status"] = attempt.http_status();
    if (!attempt.error().empty()) entry["error"] = attempt.error();
    history.push_back(std::move(entry));
  }
  json out = {
      {"id", record.id()},
      {"status", TimerStatusName(record, now_nanos)},
      {"time_left", TimeLeftSeconds(record, now_nanos)},
      {"url", spec.url()},
      {"append_id", spec.append_id()},
      {"method", spec.method()},
      {"headers", std::move(headers)},
      {"timeout_s", spec.timeout_ms() / 1000.0},
      {"retry",
       {{"max_attempts", spec.max_attempts()},
        {"initial_backoff_s", NanosToSeconds(spec.initial_backoff_nanos())},
        {"max_backoff_s", NanosToSeconds(spec.max_backoff_nanos())},
        {"multiplier", spec.backoff_multiplier()}}},
      {"late_policy", LatePolicyName(spec.late_policy())},
      {"late_after_s", NanosToSeconds(spec.late_after_nanos())},
      {"schedule", std::move(schedule)},
      {"created", FormatRfc3339(record.created_nanos())},
      {"due", FormatRfc3339(record.due_nanos())},
      {"due_nanos", record.due_nanos()},
      {"next_attempt", record.status() == wire::TIMER_WAITING
                           ? time_or_null(record.next_attempt_nanos())
                           : json(nullptr)},
      {"attempts", record.attempts()},
      {"occurrence", record.occurrence()},
      {"completed", record.completed()},
      {"finished", time_or_null(record.finished_nanos())},
      {"outcome", record.outcome()},
      {"history", std::move(history)},
  };
  if (spec.has_body()) out["body"] = spec.body();
  if (!spec.idempotency_key().empty()) out["idempotency_key"] = spec.idempotency_key();
  return out;
}

}  // namespace synod
