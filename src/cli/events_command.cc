// synod events [-f] [--json] [--since ID] [-n N]: the cluster's event stream, as a node sees it.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/node_client.h"
#include "net/http_client.h"
#include "net/ipv4.h"
#include "net/sse_parser.h"

namespace synod::cli {
namespace {

struct EventsFlags {
  NodeTarget target;
  bool follow = false;
  bool json = false;
  std::string since;
  unsigned last = 50;
};

std::string Who(const nlohmann::json& member) {
  if (!member.is_object()) return "(none)";
  return member.value("name", "?") + " (" + member.value("ip", "?") + ")";
}

// One line a person reads: what happened, in the words of its type.
std::string Describe(const nlohmann::json& event) {
  const std::string type = event.value("type", "");
  if (type.rfind("member.", 0) == 0) return Who(event["member"]);
  if (type == "leader.changed") {
    return Who(event["leader"]) + ", term " + std::to_string(event.value("term", 0ULL));
  }
  if (type == "master.changed") return Who(event["master"]);
  if (type == "command.sent") {
    return "#" + std::to_string(event.value("command_id", 0ULL)) + " " + event["command"].dump() +
           " from " + event.value("sender", "?") + " to " +
           std::to_string(event.value("recipients", 0ULL)) + " recipients";
  }
  if (type == "command.settled") {
    return "#" + std::to_string(event.value("command_id", 0ULL)) + ": " +
           std::to_string(event.value("delivered", 0)) + " delivered, " +
           std::to_string(event.value("failed", 0)) + " failed";
  }
  if (type.rfind("timer.", 0) == 0) {
    char lateness[32];
    std::snprintf(lateness, sizeof lateness, "%.1f ms late", event.value("lateness_ms", 0.0));
    std::string line = event.value("timer_id", "?") + " " + event.value("url", "") + " by " +
                       event.value("by", "?") + ", " + lateness;
    if (event.contains("http_status")) line += ", answered " + event["http_status"].dump();
    if (event.contains("error") && !event.contains("http_status")) {
      line += ": " + event.value("error", "");
    }
    return line;
  }
  if (type == "file.conflict") {
    return event.value("path", "?") + " (the other version kept as " +
           event.value("conflict_path", "?") + ")";
  }
  if (type.rfind("file.", 0) == 0) return event.value("path", "?");
  nlohmann::json rest = event;
  for (const char* key : {"id", "type", "time", "node"}) rest.erase(key);
  return rest.dump();
}

void Print(const SseEvent& sse, bool json) {
  nlohmann::json event = nlohmann::json::parse(sse.data, nullptr, false);
  if (!event.is_object()) {
    std::fprintf(stderr, "synod events: skipped an event that is not a JSON object\n");
    return;
  }
  if (json) {
    std::cout << event.dump() << std::endl;
    return;
  }
  const double time = event.value("time", 0.0);
  const std::time_t seconds = static_cast<std::time_t>(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[40];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::printf("%s.%03dZ  %-16s %s\n", stamp, static_cast<int>((time - seconds) * 1000),
              event.value("type", "?").c_str(), Describe(event).c_str());
  std::fflush(stdout);
}

int RunEvents(const EventsFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) return CommandError("events", resolved.error, resolved.error_status);
  Result<OutgoingHttpRequest> stream = NodeRequest(resolved.node, "GET", "/v1/events");
  if (!stream.ok()) return CommandError("events", stream.error(), 2);
  if (!flags.since.empty() && flags.since.find_first_not_of("0123456789") != std::string::npos) {
    return CommandError("events", "--since must be an event id (a decimal number)", 2);
  }
  std::string last_id = flags.since;
  unsigned printed = 0;
  bool reconnecting = false;
  while (true) {
    OutgoingHttpRequest request = stream.value();
    if (!flags.follow) request.url += "?follow=false";
    if (last_id.empty() && !flags.follow) request.url += "&since=0";
    if (!last_id.empty()) request.headers.push_back("Last-Event-ID: " + last_id);
    std::vector<SseEvent> backlog;
    SseParser parser([&](const SseEvent& event) {
      last_id = event.id;
      if (flags.follow) {
        Print(event, flags.json);
        ++printed;
      } else {
        backlog.push_back(event);
      }
    });
    Result<HttpReply> reply = HttpGetStream(request, [&](std::string_view bytes) {
      if (reconnecting) {
        std::fprintf(stderr, "synod events: reading %s again\n", resolved.node.c_str());
        reconnecting = false;
      }
      parser.Feed(bytes);
      return true;
    });
    if (reply.ok() && (reply.value().status == 401 || reply.value().status == 403)) {
      nlohmann::json answer = nlohmann::json::parse(reply.value().body, nullptr, false);
      const std::string why =
          answer.is_object() && answer.contains("error") && answer["error"].is_string()
              ? answer["error"].get<std::string>()
              : "refused";
      return CommandError("events", TokenRefusal(resolved.node, reply.value().status, why));
    }
    if (reply.ok() && reply.value().status != 200) {
      return CommandError("events", resolved.node + " answered " +
                                        std::to_string(reply.value().status) + ": " +
                                        reply.value().body);
    }
    if (!flags.follow) {
      if (!reply.ok()) return CommandError("events", reply.error());
      const size_t skip = backlog.size() > flags.last ? backlog.size() - flags.last : 0;
      for (size_t i = skip; i < backlog.size(); ++i) Print(backlog[i], flags.json);
      if (backlog.empty() && !flags.json) std::printf("(no events)\n");
      return 0;
    }
    // Following: the node restarted or the network failed; resume where we were.
    if (!reconnecting) {
      std::fprintf(stderr, "synod events: lost the stream from %s (%s); reconnecting\n",
                   resolved.node.c_str(),
                   reply.ok() ? "the node closed it" : reply.error().c_str());
      reconnecting = true;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

void RegisterEventsCommand(CLI::App& app, CommandRunner& run) {
  auto flags = std::make_shared<EventsFlags>();
  CLI::App* cmd = app.add_subcommand(
      "events", "Show the cluster's events (members, leader, master, commands, timers, files)");
  cmd->footer(
      "Without -f: the node's recent events, then exit. With -f: then every new one as it\n"
      "happens, resuming after a lost connection.\n"
      "Example:\n  synod events -n 20\n  synod events -f --json --node 127.0.0.2");
  AddNodeOption(*cmd, flags->target);
  cmd->add_flag("-f,--follow", flags->follow, "Keep printing new events as they happen");
  cmd->add_flag("--json", flags->json, "One JSON object per line");
  cmd->add_option("--since", flags->since, "Only events after this id (from --json output)");
  cmd->add_option("-n,--last", flags->last, "Without -f: how many of the recent events (50)")
      ->check(CLI::Range(1u, 100000u));
  cmd->callback([&run, flags] { run = [flags] { return RunEvents(*flags); }; });
}

}  // namespace synod::cli
