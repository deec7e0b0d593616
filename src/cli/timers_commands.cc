// synod timers add|get|list|cancel: webhook timers, from any node.
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/node_client.h"

namespace synod::cli {
namespace {

struct TimerFlags {
  NodeTarget target;
  std::string url;
  std::string in;
  std::string at;
  std::string every;
  std::string cron;
  std::string method;
  std::string body;
  std::string idempotency_key;
  unsigned max_attempts = 0;
  std::string id;
  std::string status;
  size_t limit = 50;
  bool json = false;
};

std::string Text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "-";
  return value.dump();
}

void PrintRecord(const nlohmann::json& timer) {
  std::printf("Timer %s: %s\n", Text(timer["id"]).c_str(), Text(timer["status"]).c_str());
  std::printf("  %s %s%s\n", Text(timer["method"]).c_str(), Text(timer["url"]).c_str(),
              timer.value("append_id", false) ? "/<id>" : "");
  std::printf("  due       %s (in %lld s)\n", Text(timer["due"]).c_str(),
              static_cast<long long>(timer.value("time_left", 0)));
  if (timer["schedule"].contains("every_s")) {
    std::printf("  every     %g s\n", timer["schedule"]["every_s"].get<double>());
  }
  if (timer["schedule"].contains("cron")) {
    std::printf("  cron      %s (UTC)\n", Text(timer["schedule"]["cron"]).c_str());
  }
  if (!timer["outcome"].get<std::string>().empty()) {
    std::printf("  outcome   %s\n", Text(timer["outcome"]).c_str());
  }
  const nlohmann::json& history = timer["history"];
  if (history.empty()) return;
  std::printf("  %-4s %-8s %-33s %10s %8s  %s\n", "#", "NODE", "STARTED", "LATE(ms)", "TOOK(ms)",
              "RESULT");
  for (const auto& attempt : history) {
    std::string result = attempt.contains("http_status")
                             ? "HTTP " + std::to_string(attempt["http_status"].get<int>())
                             : Text(attempt.value("error", nlohmann::json("skipped")));
    std::printf("  %-4d %-8.8s %-33s %10.1f %8.1f  %s\n", attempt.value("attempt", 0),
                Text(attempt["node"]).c_str(), Text(attempt["started"]).c_str(),
                attempt.value("lateness_ms", 0.0), attempt.value("duration_ms", 0.0),
                result.c_str());
  }
}

int RunAdd(const TimerFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty())
    return CommandError("timers add", resolved.error, resolved.error_status);
  nlohmann::json request = {{"url", flags.url}};
  if (!flags.in.empty()) request["delay"] = flags.in;
  if (!flags.at.empty()) request["at"] = flags.at;
  if (!flags.every.empty()) request["every"] = flags.every;
  if (!flags.cron.empty()) request["cron"] = flags.cron;
  if (!flags.method.empty()) request["method"] = flags.method;
  if (!flags.body.empty()) request["body"] = flags.body;
  if (!flags.idempotency_key.empty()) request["idempotency_key"] = flags.idempotency_key;
  if (flags.max_attempts > 0) request["retry"] = {{"max_attempts", flags.max_attempts}};
  Result<nlohmann::json> timer = AskNode(resolved.node, "POST", "/v1/timers", request.dump());
  if (!timer.ok()) return CommandError("timers add", timer.error());
  if (flags.json) {
    std::cout << timer.value().dump(2) << "\n";
  } else {
    std::cout << Text(timer.value()["id"]) << " due " << Text(timer.value()["due"]) << "\n";
  }
  return 0;
}

int RunGet(const TimerFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty())
    return CommandError("timers get", resolved.error, resolved.error_status);
  Result<nlohmann::json> timer = AskNode(resolved.node, "GET", "/v1/timers/" + flags.id);
  if (!timer.ok()) return CommandError("timers get", timer.error());
  if (flags.json) {
    std::cout << timer.value().dump(2) << "\n";
  } else {
    PrintRecord(timer.value());
  }
  return 0;
}

int RunList(const TimerFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) {
    return CommandError("timers list", resolved.error, resolved.error_status);
  }
  std::string path = "/v1/timers?limit=" + std::to_string(flags.limit);
  if (!flags.status.empty()) path += "&status=" + flags.status;
  Result<nlohmann::json> page = AskNode(resolved.node, "GET", path);
  if (!page.ok()) return CommandError("timers list", page.error());
  if (flags.json) {
    std::cout << page.value().dump(2) << "\n";
    return 0;
  }
  const nlohmann::json& timers = page.value()["timers"];
  std::printf("%-36s  %-9s  %-30s  %-4s  %s\n", "ID", "STATUS", "DUE", "TRY", "URL");
  for (const auto& timer : timers) {
    std::printf("%-36s  %-9s  %-30s  %-4d  %s\n", Text(timer["id"]).c_str(),
                Text(timer["status"]).c_str(), Text(timer["due"]).c_str(),
                timer.value("attempts", 0), Text(timer["url"]).c_str());
  }
  if (!page.value()["next"].is_null()) {
    std::printf("(more: raise --limit, or GET /v1/timers?after=%s)\n",
                Text(page.value()["next"]).c_str());
  }
  return 0;
}

int RunCancel(const TimerFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) {
    return CommandError("timers cancel", resolved.error, resolved.error_status);
  }
  Result<nlohmann::json> timer = AskNode(resolved.node, "DELETE", "/v1/timers/" + flags.id);
  if (!timer.ok()) return CommandError("timers cancel", timer.error());
  if (flags.json) {
    std::cout << timer.value().dump(2) << "\n";
  } else {
    std::cout << Text(timer.value()["id"]) << " cancelled\n";
  }
  return 0;
}

}  // namespace

void RegisterTimersCommands(CLI::App& app, CommandRunner& run) {
  CLI::App* timers = app.add_subcommand("timers", "Webhook timers: schedule, inspect, cancel");
  timers->require_subcommand(1);
  {
    auto flags = std::make_shared<TimerFlags>();
    CLI::App* add = timers->add_subcommand("add", "Schedule a webhook (answered once committed)");
    add->add_option("--url", flags->url, "Where to send it (http or https)")->required();
    auto* in = add->add_option("--in", flags->in, "Fire after this long: 90s, 1h30m, 250ms");
    auto* at = add->add_option("--at", flags->at,
                               "Fire at this time: RFC 3339, e.g. 2026-12-01T14:05:00Z");
    add->add_option("--every", flags->every, "Fire every this long (first after one period)");
    add->add_option("--cron", flags->cron, "Fire on this 5-field cron expression, in UTC");
    in->excludes(at);
    add->add_option("--method", flags->method, "HTTP method (default POST)");
    add->add_option("--body", flags->body, "Request body (default: a small JSON with the id)");
    add->add_option("--max-attempts", flags->max_attempts, "Attempts before it fails (default 10)");
    add->add_option("--idempotency-key", flags->idempotency_key,
                    "A repeat with the same key within 24 h returns the first timer");
    add->add_flag("--json", flags->json, "Print the whole record as JSON");
    AddNodeOption(*add, flags->target);
    add->footer("Example: synod timers add --in 90s --url http://127.0.0.1:8080/hook");
    add->callback([&run, flags] {
      run = [flags] {
        if (flags->in.empty() && flags->at.empty() && flags->every.empty() && flags->cron.empty()) {
          return CommandError("timers add", "give --in, --at, --every or --cron", 2);
        }
        return RunAdd(*flags);
      };
    });
  }
  {
    auto flags = std::make_shared<TimerFlags>();
    CLI::App* get = timers->add_subcommand("get", "A timer with every attempt");
    get->add_option("id", flags->id, "The timer id")->required();
    get->add_flag("--json", flags->json, "Print JSON");
    AddNodeOption(*get, flags->target);
    get->callback([&run, flags] { run = [flags] { return RunGet(*flags); }; });
  }
  {
    auto flags = std::make_shared<TimerFlags>();
    CLI::App* list = timers->add_subcommand("list", "Timers by due time");
    list->add_option("--status", flags->status,
                     "Only waiting, executing, done, failed, cancelled or skipped ones")
        ->check(CLI::IsMember({"waiting", "executing", "done", "failed", "cancelled", "skipped"}));
    list->add_option("-n,--limit", flags->limit, "How many (1-1000)")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    list->add_flag("--json", flags->json, "Print JSON");
    AddNodeOption(*list, flags->target);
    list->callback([&run, flags] { run = [flags] { return RunList(*flags); }; });
  }
  {
    auto flags = std::make_shared<TimerFlags>();
    CLI::App* cancel = timers->add_subcommand("cancel", "Cancel a waiting timer");
    cancel->add_option("id", flags->id, "The timer id")->required();
    cancel->add_flag("--json", flags->json, "Print the record as JSON");
    AddNodeOption(*cancel, flags->target);
    cancel->callback([&run, flags] { run = [flags] { return RunCancel(*flags); }; });
  }
}

}  // namespace synod::cli
