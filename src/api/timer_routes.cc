#include "api/timer_routes.h"

#include <charconv>
#include <limits>

#include <nlohmann/json.hpp>

#include "timers/schedule.h"
#include "timers/timer_json.h"

namespace synod {
namespace {

using nlohmann::json;

constexpr size_t kMaxPage = 1000;

// The seed's error form (FastAPI's): {"detail": "..."}; request errors are 422.
HttpResponse SeedError(const Status& status) {
  int code = HttpStatusFor(status.code());
  if (code == 400) code = 422;
  return HttpResponse::Json(code, {{"detail", status.message()}});
}

void SeedCreate(TimerService& timers, const HttpRequest& request, HttpResponder respond) {
  int64_t delay_seconds = 0;
  Result<wire::TimerCreate> create = ParseSeedTimer(request.body, &delay_seconds);
  if (!create.ok()) return respond(SeedError(create.status()));
  timers.Create(
      std::move(create.value()), "", [respond, delay_seconds](Result<wire::TimerRecord> record) {
        if (!record.ok()) return respond(SeedError(record.status()));
        respond(
            HttpResponse::Json(200, {{"id", record.value().id()}, {"time_left", delay_seconds}}));
      });
}

// The record of a timer as JSON: from this node's replica, or, for a timer it has not applied
// yet (created through another node a moment ago), from the leader's.
// Reads are linearizable (ConsistentRead): a timer this node does not hold does not exist.
Result<json> Lookup(TimerService& timers, const Uuid& id) {
  if (std::optional<wire::TimerRecord> record = timers.state().Get(id)) {
    return TimerJson(*record, timers.NowNanos());
  }
  return Status::NotFound("no such timer: " + id.ToString());
}

void SeedGet(TimerService& timers, const HttpRequest& request, HttpResponder respond) {
  const std::string& text = request.path_params.at("id");
  std::optional<Uuid> id = Uuid::Parse(text);
  if (!id) return respond(SeedError(Status::Invalid("the timer id is not a UUID: " + text)));
  Result<json> record = Lookup(timers, *id);
  if (!record.ok()) return respond(SeedError(Status::NotFound("Timer not found")));
  const json& timer = record.value();
  respond(HttpResponse::Json(
      200, {{"id", timer["id"]}, {"status", timer["status"]}, {"time_left", timer["time_left"]}}));
}

Result<Uuid> IdOf(const HttpRequest& request) {
  const std::string& text = request.path_params.at("id");
  std::optional<Uuid> id = Uuid::Parse(text);
  if (!id) return Status::Invalid("the timer id is not a UUID: " + text);
  return *id;
}

void RespondRecord(HttpResponder& respond, TimerService& timers,
                   const Result<wire::TimerRecord>& record) {
  if (!record.ok()) return respond(HttpResponse::FromStatus(record.status()));
  respond(HttpResponse::Json(200, TimerJson(record.value(), timers.NowNanos())));
}

// A page token: "p" (pending) or "f" (finished), the position's time and the timer id.
struct PageToken {
  bool finished = false;
  std::pair<int64_t, Uuid> position;
};

std::string Token(bool finished, const std::pair<int64_t, Uuid>& position) {
  return std::string(finished ? "f." : "p.") + std::to_string(position.first) + "." +
         position.second.ToString();
}

Result<PageToken> ParseToken(const std::string& text) {
  const Status bad = Status::Invalid("after= must be a \"next\" token from an earlier page");
  if (text.size() < 3 || (text[0] != 'p' && text[0] != 'f') || text[1] != '.') return bad;
  const size_t dot = text.find('.', 2);
  if (dot == std::string::npos) return bad;
  int64_t nanos = 0;
  auto [end, ec] = std::from_chars(text.data() + 2, text.data() + dot, nanos);
  if (ec != std::errc() || end != text.data() + dot) return bad;
  std::optional<Uuid> id = Uuid::Parse(std::string_view(text).substr(dot + 1));
  if (!id) return bad;
  return PageToken{text[0] == 'f', {nanos, *id}};
}

void List(TimerService& timers, const HttpRequest& request, HttpResponder respond) {
  static const std::set<std::string> kStatuses = {"waiting", "executing", "done",
                                                  "failed",  "cancelled", "skipped"};
  std::string status;
  if (auto it = request.query.find("status"); it != request.query.end()) {
    status = it->second;
    if (!kStatuses.contains(status)) {
      return respond(HttpResponse::FromStatus(Status::Invalid(
          "status must be waiting, executing, done, failed, cancelled or skipped")));
    }
  }
  size_t limit = 100;
  if (auto it = request.query.find("limit"); it != request.query.end()) {
    auto [end, ec] =
        std::from_chars(it->second.data(), it->second.data() + it->second.size(), limit);
    if (ec != std::errc() || end != it->second.data() + it->second.size() || limit < 1 ||
        limit > kMaxPage) {
      return respond(HttpResponse::FromStatus(Status::Invalid("limit must be 1 to 1000")));
    }
  }
  PageToken from;
  bool has_from = false;
  if (auto it = request.query.find("after"); it != request.query.end()) {
    Result<PageToken> token = ParseToken(it->second);
    if (!token.ok()) return respond(HttpResponse::FromStatus(token.status()));
    from = token.value();
    has_from = true;
  }
  const TimerState& state = timers.state();
  const int64_t now = timers.NowNanos();
  const bool want_pending = status.empty() || status == "waiting" || status == "executing";
  const bool want_finished = status.empty() || !want_pending;
  json page = json::array();
  std::optional<std::string> next;
  // Bounded work per request, however rare the status asked for.
  size_t budget = 100'000;
  auto walk = [&](const TimerState::Index& index, bool finished) {
    auto it = index.begin();
    if (has_from && from.finished == finished) it = index.upper_bound(from.position);
    // Where the next page starts: after the last entry looked at here.
    std::pair<int64_t, Uuid> last{std::numeric_limits<int64_t>::min(), Uuid{}};
    if (it != index.begin()) last = *std::prev(it);
    for (; it != index.end(); ++it) {
      if (page.size() >= limit || budget == 0) {
        next = Token(finished, last);
        return false;
      }
      --budget;
      last = *it;
      std::optional<wire::TimerRecord> record = state.Get(it->second);
      if (!status.empty() && TimerStatusName(*record, now) != status) continue;
      page.push_back(TimerJson(*record, now));
    }
    return true;
  };
  bool more = true;
  if (want_pending && !(has_from && from.finished)) more = walk(state.pending(), false);
  if (more && want_finished) walk(state.finished(), true);
  json body = {{"timers", std::move(page)}, {"next", next ? json(*next) : json(nullptr)}};
  respond(HttpResponse::Json(200, body));
}

json Stats(const TimerState& state, int64_t now) {
  size_t due = 0;
  for (auto it = state.pending().begin(); it != state.pending().end() && it->first <= now; ++it) {
    ++due;
  }
  json stats = {{"waiting", state.count(wire::TIMER_WAITING) - due},
                {"executing", due},
                {"done", state.count(wire::TIMER_DONE)},
                {"failed", state.count(wire::TIMER_FAILED)},
                {"cancelled", state.count(wire::TIMER_CANCELLED)},
                {"skipped", state.count(wire::TIMER_SKIPPED)},
                {"total", state.size()}};
  stats["next_due"] =
      state.pending().empty() ? json(nullptr) : json(FormatRfc3339(state.pending().begin()->first));
  return stats;
}

}  // namespace

void AddTimerRoutes(HttpRouter& router, TimerService& timers, const ReadPolicy& reads) {
  for (const char* path : {"/timer", "/timers"}) {
    router.Handle("POST", path, [&timers](const HttpRequest& request, HttpResponder respond) {
      SeedCreate(timers, request, std::move(respond));
    });
    router.Handle("GET", std::string(path) + "/{id}",
                  reads([&timers](const HttpRequest& request, HttpResponder respond) {
                    SeedGet(timers, request, std::move(respond));
                  }));
  }
  router.Handle("POST", "/v1/timers", [&timers](const HttpRequest& request, HttpResponder respond) {
    auto header = request.headers.find("idempotency-key");
    Result<wire::TimerCreate> create =
        ParseNativeTimer(request.body, header == request.headers.end() ? "" : header->second);
    if (!create.ok()) return respond(HttpResponse::FromStatus(create.status()));
    // A repeated key is recognised by the timers module for 24 h, and by the request id while
    // the cluster still remembers it.
    const std::string key = create.value().spec().idempotency_key();
    timers.Create(std::move(create.value()), key.empty() ? "" : "timer-key:" + key,
                  [&timers, respond](Result<wire::TimerRecord> record) mutable {
                    RespondRecord(respond, timers, record);
                  });
  });
  router.Handle("GET", "/v1/timers",
                reads([&timers](const HttpRequest& request, HttpResponder respond) {
                  List(timers, request, std::move(respond));
                }));
  router.Handle("GET", "/v1/timers/stats",
                reads([&timers](const HttpRequest&, HttpResponder respond) {
                  respond(HttpResponse::Json(200, Stats(timers.state(), timers.NowNanos())));
                }));
  router.Handle("GET", "/v1/timers/{id}",
                reads([&timers](const HttpRequest& request, HttpResponder respond) {
                  Result<Uuid> id = IdOf(request);
                  if (!id.ok()) return respond(HttpResponse::FromStatus(id.status()));
                  Result<json> record = Lookup(timers, id.value());
                  respond(record.ok() ? HttpResponse::Json(200, record.value())
                                      : HttpResponse::FromStatus(record.status()));
                }));
  router.Handle("PATCH", "/v1/timers/{id}",
                [&timers](const HttpRequest& request, HttpResponder respond) {
                  Result<Uuid> id = IdOf(request);
                  if (!id.ok()) return respond(HttpResponse::FromStatus(id.status()));
                  Result<wire::TimerReschedule> reschedule =
                      ParseReschedule(request.body, id.value().ToString());
                  if (!reschedule.ok()) {
                    return respond(HttpResponse::FromStatus(reschedule.status()));
                  }
                  timers.Reschedule(std::move(reschedule.value()),
                                    [&timers, respond](Result<wire::TimerRecord> record) mutable {
                                      RespondRecord(respond, timers, record);
                                    });
                });
  router.Handle("DELETE", "/v1/timers/{id}",
                [&timers](const HttpRequest& request, HttpResponder respond) {
                  Result<Uuid> id = IdOf(request);
                  if (!id.ok()) return respond(HttpResponse::FromStatus(id.status()));
                  timers.Cancel(id.value().ToString(),
                                [&timers, respond](Result<wire::TimerRecord> record) mutable {
                                  RespondRecord(respond, timers, record);
                                });
                });
}

}  // namespace synod
