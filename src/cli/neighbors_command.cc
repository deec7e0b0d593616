#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/node_client.h"

namespace synod::cli {
namespace {

struct NeighborsFlags {
  NodeTarget target;
  bool json = false;
};

std::string Millis(const nlohmann::json& value, bool signed_value = false) {
  if (!value.is_number()) return "-";
  char text[32];
  std::snprintf(text, sizeof text, signed_value ? "%+.3f ms" : "%.3f ms", value.get<double>());
  return text;
}

int RunNeighbors(const NeighborsFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty())
    return CommandError("neighbors", resolved.error, resolved.error_status);
  const std::string& node = resolved.node;
  Result<NodeReply> reply = CallNode(node, "GET", "/v1/neighbors");
  if (!reply.ok())
    return CommandError("neighbors", reply.error(), reply.error().rfind("--node", 0) == 0 ? 2 : 1);
  const nlohmann::json& list = reply.value().body;
  if (reply.value().status != 200 || !list.is_array()) {
    return CommandError("neighbors", node + " answered " + std::to_string(reply.value().status) +
                                         ": " + list.dump());
  }
  if (flags.json) {
    std::cout << list.dump(2) << "\n";
    return 0;
  }
  std::printf("%-10s %-15s %-9s %-12s %-10s %-9s %-12s %-11s %s\n", "ID", "IP", "TCP PORT",
              "SDSS DELAY", "BEACONS", "SEEN", "NAME", "RTT", "OFFSET");
  for (const auto& n : list) {
    const std::string seen =
        std::to_string(n.value("last_seen_age_ms", 0) / 1000.0).substr(0, 4) + " s";
    std::printf("%-10s %-15s %-9d %-12s %-10llu %-9s %-12s %-11s %s\n", n.value("id", "?").c_str(),
                n.value("ip", "?").c_str(), n.value("tcp_port", 0),
                Millis(n["sdss_delay_ms"]).c_str(),
                static_cast<unsigned long long>(n.value("broadcast_count", 0ULL)), seen.c_str(),
                n.value("synod", false) ? n.value("name", "").c_str() : "(sdss peer)",
                Millis(n["rtt_ms"]).c_str(), Millis(n["offset_ms"], true).c_str());
  }
  if (list.empty()) std::printf("(no neighbours yet)\n");
  return 0;
}

}  // namespace

void RegisterNeighborsCommand(CLI::App& app, CommandRunner& run) {
  auto flags = std::make_shared<NeighborsFlags>();
  CLI::App* cmd = app.add_subcommand("neighbors", "Show a node's neighbour delay table");
  cmd->footer("Example:\n  synod neighbors --node 127.0.0.2:7400\n  synod neighbors --json");
  AddNodeOption(*cmd, flags->target);
  cmd->add_flag("--json", flags->json, "Print the raw JSON");
  cmd->callback([&run, flags] { run = [flags] { return RunNeighbors(*flags); }; });
}

}  // namespace synod::cli
