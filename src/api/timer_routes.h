// Webhook timers over HTTP.
//
// The seed's API, unchanged (errors are {"detail": "..."}: 422 for a bad request or an id that
// is not a UUID, 404 for an unknown timer, 413 for a body over the limit):
//   POST /timer/  {"hours", "minutes", "seconds", "url"} -> {"id", "time_left"} once committed
//   GET  /timer/{id}                                      -> {"id", "status", "time_left"}
//   and the same at /timers and /timers/{id}.
// The native API (errors are {"error", "code"}):
//   POST   /v1/timers               (timer_json.h) -> the record, once committed; an
//                                   idempotency key (field or Idempotency-Key header) repeated
//                                   within 24 h returns the first timer
//   GET    /v1/timers/{id}          the record with every attempt
//   PATCH  /v1/timers/{id}          {"delay"} or {"at"}: reschedule while waiting (409 otherwise)
//   DELETE /v1/timers/{id}          cancel while waiting (409 with the reason otherwise)
//   GET    /v1/timers?status=&limit=&after=   a page ordered by due time (pending timers by
//                                   their next attempt, finished ones by when they finished),
//                                   with "next" to pass as after= for the following page
//   GET    /v1/timers/stats         counts by status
// Reads answer from this node's replica; a timer it has not applied yet (created through
// another node a moment ago) is read from the leader's.
#pragma once

#include "api/consistent_read.h"
#include "net/http_server.h"
#include "timers/timer_service.h"

namespace synod {

// `timers` must outlive the router.
// `reads` wraps the routes that read replicated state (every GET).
void AddTimerRoutes(HttpRouter& router, TimerService& timers, const ReadPolicy& reads);

}  // namespace synod
