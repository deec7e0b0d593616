// The timers' JSON: requests parsed into commands, records shown to users. Pure; the HTTP
// routes and the CLI use it.
//
// Every parser treats the body as hostile: a wrong type, an out-of-range number, a malformed
// time or URL is an error naming the field, and nothing else is looked at. Unknown fields are
// ignored (clients of other versions may send more).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "proto/timers.pb.h"

namespace synod {

// The seed's POST /timer/: {"hours", "minutes", "seconds", "url"} (hours and minutes default
// to 0, seconds to 1); the webhook goes to <url>/<id>. `delay_seconds` gets the whole delay.
Result<wire::TimerCreate> ParseSeedTimer(std::string_view body, int64_t* delay_seconds);

// POST /v1/timers: {"url", "delay" | "at" | "every" | "cron", "method", "headers", "body",
// "timeout", "retry": {"max_attempts", "initial_backoff", "max_backoff", "multiplier"},
// "late_policy": "fire" | "skip" | "fail", "late_after", "append_id", "idempotency_key"}.
// Durations are strings ("90s", "1h30m") or seconds; times RFC 3339 strings or epoch seconds.
// `idempotency_header` (the Idempotency-Key header, may be empty) is used if the body has none.
Result<wire::TimerCreate> ParseNativeTimer(std::string_view body,
                                           const std::string& idempotency_header);

// PATCH /v1/timers/{id}: {"delay"} or {"at"}.
Result<wire::TimerReschedule> ParseReschedule(std::string_view body, const std::string& id);

// The whole record, as GET /v1/timers/{id} shows it, at `now_nanos`.
nlohmann::json TimerJson(const wire::TimerRecord& record, int64_t now_nanos);
// Whole seconds until the next attempt, 0 once it is no longer waiting.
int64_t TimeLeftSeconds(const wire::TimerRecord& record, int64_t now_nanos);

}  // namespace synod
