#include "api/ranks_routes.h"

#include <charconv>

#include "core/clock.h"

namespace synod {
namespace {

const char* StateName(wire::DeliveryState state) {
  switch (state) {
    case wire::DELIVERED:
      return "delivered";
    case wire::DELIVERY_FAILED:
      return "failed";
    default:
      return "pending";
  }
}

// The named string field of a JSON object body; with an empty body, the query parameter of
// that name (some clients send DELETE without a body).
Result<std::string> StringField(const HttpRequest& request, const std::string& name) {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    auto it = request.query.find(name);
    if (it != request.query.end()) return it->second;
    return Status::Error("the body must be a JSON object with \"" + name + "\"");
  }
  const nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
  if (!body.is_object()) return Status::Error("the body is not a JSON object");
  auto it = body.find(name);
  if (it == body.end()) return Status::Error("\"" + name + "\" is missing");
  if (!it->is_string()) return Status::Error("\"" + name + "\" must be a string");
  return it->get<std::string>();
}

HttpResponse SendError(const SendOutcome& outcome) {
  return HttpResponse::Error(outcome.status, outcome.error);
}

Result<uint64_t> NumberParam(const HttpRequest& request, const std::string& name,
                             uint64_t fallback) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return fallback;
  uint64_t value = 0;
  const std::string& text = it->second;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::Error("query parameter " + name + " must be a non-negative integer");
  }
  return value;
}

}  // namespace

nlohmann::json CommandRecordJson(const wire::CommandRecord& record) {
  nlohmann::json recipients = nlohmann::json::array();
  int delivered = 0, failed = 0, pending = 0;
  for (const auto& d : record.deliveries()) {
    delivered += d.state() == wire::DELIVERED;
    failed += d.state() == wire::DELIVERY_FAILED;
    pending += d.state() == wire::DELIVERY_PENDING;
    nlohmann::json entry = {{"rank", d.rank()},
                            {"kind", d.kind() == wire::EXTERNAL_RANK ? "external" : "member"},
                            {"address", d.address()},
                            {"state", StateName(d.state())}};
    if (d.kind() == wire::MEMBER_RANK) entry["id"] = d.recipient();
    if (!d.error().empty()) entry["error"] = d.error();
    recipients.push_back(std::move(entry));
  }
  return {
      {"id", record.id()},
      {"command", record.text()},
      {"sender", {{"rank", record.sender_rank()}, {"address", record.sender_address()}}},
      {"sent_at", NanosToSeconds(record.sent_at_nanos())},
      {"settled", pending == 0},
      {"delivered", delivered},
      {"failed", failed},
      {"pending", pending},
      {"recipients", recipients},
  };
}

void AddRanksRoutes(HttpRouter& router, RanksService& ranks, const ReadPolicy& reads) {
  auto respond_json = [](HttpResponder respond) {
    return
        [respond](int status, nlohmann::json body) { respond(HttpResponse::Json(status, body)); };
  };
  router.Handle("POST", "/assign-rank",
                [&ranks, respond_json](const HttpRequest& request, HttpResponder respond) {
                  Result<std::string> ip_port = StringField(request, "ip_port");
                  if (!ip_port.ok()) return respond(HttpResponse::Error(400, ip_port.error()));
                  ranks.AssignExternal(ip_port.value(), respond_json(respond));
                });
  HttpHandler unassign = [&ranks, respond_json](const HttpRequest& request, HttpResponder respond) {
    Result<std::string> ip_port = StringField(request, "ip_port");
    if (!ip_port.ok()) {
      return respond(HttpResponse::Json(400, {{"success", false}, {"error", ip_port.error()}}));
    }
    ranks.UnassignExternal(ip_port.value(), respond_json(respond));
  };
  router.Handle("DELETE", "/unassign-rank", unassign);
  router.Handle("POST", "/unassign-rank", unassign);
  router.Handle("POST", "/send-command",
                [&ranks](const HttpRequest& request, HttpResponder respond) {
                  Result<std::string> command = StringField(request, "command");
                  if (!command.ok()) return respond(HttpResponse::Error(400, command.error()));
                  Result<std::string> ip_port = StringField(request, "ip_port");
                  if (!ip_port.ok()) return respond(HttpResponse::Error(400, ip_port.error()));
                  Result<std::string> sender = ranks.SenderFor(ip_port.value());
                  if (!sender.ok()) return respond(HttpResponse::Error(400, sender.error()));
                  ranks.Send(sender.value(), command.value(), [respond](SendOutcome outcome) {
                    if (outcome.status != 200) return respond(SendError(outcome));
                    nlohmann::json results = nlohmann::json::object();
                    for (const auto& d : outcome.record.deliveries()) {
                      nlohmann::json result = {{"success", d.state() == wire::DELIVERED}};
                      if (d.state() == wire::DELIVERY_PENDING)
                        result["error"] = "still being delivered";
                      if (!d.error().empty()) result["error"] = d.error();
                      results[d.address()] = std::move(result);
                    }
                    respond(HttpResponse::Json(200, results));
                  });
                });

  router.Handle("GET", "/v1/ranks", reads([&ranks](const HttpRequest&, HttpResponder respond) {
                  respond(HttpResponse::Json(200, ranks.RanksJson()));
                }));
  router.Handle("POST", "/v1/commands",
                [&ranks](const HttpRequest& request, HttpResponder respond) {
                  Result<std::string> command = StringField(request, "command");
                  if (!command.ok()) return respond(HttpResponse::Error(400, command.error()));
                  ranks.Send(ranks.self_key(), command.value(), [respond](SendOutcome outcome) {
                    if (outcome.status != 200) return respond(SendError(outcome));
                    respond(HttpResponse::Json(200, CommandRecordJson(outcome.record)));
                  });
                });
  router.Handle("GET", "/v1/commands/recent",
                reads([&ranks](const HttpRequest& request, HttpResponder respond) {
                  Result<uint64_t> limit = NumberParam(request, "limit", 20);
                  if (!limit.ok()) return respond(HttpResponse::Error(400, limit.error()));
                  const RankState& state = ranks.rank_state();
                  nlohmann::json commands = nlohmann::json::array();
                  const uint64_t wanted = std::min<uint64_t>(limit.value(), 1000);
                  // The newest commands are kept (only settled ones are pruned, oldest first); an
                  // old command still pending is not worth a walk through every pruned id.
                  const uint64_t last = state.last_command_id();
                  for (uint64_t id = last; id > 0 && commands.size() < wanted && last - id < 10'000;
                       --id) {
                    if (auto record = state.FindCommand(id))
                      commands.push_back(CommandRecordJson(*record));
                  }
                  respond(HttpResponse::Json(200, {{"commands", std::move(commands)}}));
                }));
  router.Handle("GET", "/v1/commands", [&ranks](const HttpRequest& request, HttpResponder respond) {
    Result<uint64_t> since = NumberParam(request, "since", 0);
    Result<uint64_t> limit = NumberParam(request, "limit", 100);
    if (!since.ok()) return respond(HttpResponse::Error(400, since.error()));
    if (!limit.ok()) return respond(HttpResponse::Error(400, limit.error()));
    respond(HttpResponse::Json(
        200, ranks.ReceivedJson(since.value(), std::min<uint64_t>(limit.value(), 1000))));
  });
}

}  // namespace synod
