// synod clients ..., synod cluster status, synod kv ...: the cluster as the replicated state
// sees it, asked from any node.
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/node_client.h"

namespace synod::cli {
namespace {

struct ClusterFlags {
  NodeTarget target;
  bool json = false;
  bool verbose = false;
  bool watch = false;
};

Result<nlohmann::json> FetchCluster(const std::string& node) {
  Result<NodeReply> reply = CallNode(node, "GET", "/v1/cluster");
  if (!reply.ok()) return reply.status();
  if (reply.value().status != 200) {
    return Status::Error(node + " answered " + std::to_string(reply.value().status) + ": " +
                         reply.value().body.dump());
  }
  return reply.value().body;
}

int UsageOrFailure(const std::string& command, const Status& error) {
  return CommandError(command, error.message(), error.message().rfind("--node", 0) == 0 ? 2 : 1);
}

int RunClientsList(const ClusterFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) {
    return CommandError("clients list", resolved.error, resolved.error_status);
  }
  Result<nlohmann::json> cluster = FetchCluster(resolved.node);
  if (!cluster.ok()) return UsageOrFailure("clients list", cluster.status());
  nlohmann::json members = nlohmann::json::array();
  for (const auto& member : cluster.value()["members"]) {
    if (member.value("state", "") != "left") members.push_back(member);
  }
  if (flags.json) {
    std::cout << members.dump(2) << "\n";
    return 0;
  }
  // With -v, each member's clock as the leader last heard it (the seed's Time and Master).
  std::map<std::string, nlohmann::json> clocks;
  if (flags.verbose) {
    if (auto reply = CallNode(resolved.node, "GET", "/v1/clock/members");
        reply.ok() && reply.value().body.is_array()) {
      for (const auto& report : reply.value().body) clocks[report.value("id", "")] = report;
    }
  }
  std::cout << "Found " << members.size() << " clients in cluster:\n";
  for (const auto& member : members) {
    if (flags.verbose) {
      const std::string id = member.value("id", "?");
      std::string time = "None", master = "None";
      if (auto it = clocks.find(id); it != clocks.end()) {
        char text[32];
        std::snprintf(text, sizeof text, "%.2f", it->second.value("time", 0.0));
        time = text;
        if (it->second["master_id"].is_string()) master = it->second["master_id"];
      }
      std::cout << "Client ID: " << id << ", IP Address " << member.value("ip", "?") << ", Time "
                << time << ", Master Client ID " << master << ", Role " << member.value("role", "?")
                << ", State " << member.value("state", "?") << "\n";
    } else {
      std::cout << member.value("id", "?") << "\n";
    }
  }
  if (members.empty()) std::cerr << "(" << cluster.value().value("phase", "") << ")\n";
  return 0;
}

int RunGetMaster(const ClusterFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) {
    return CommandError("clients get-master", resolved.error, resolved.error_status);
  }
  Result<NodeReply> reply = CallNode(resolved.node, "GET", "/v1/clock");
  if (!reply.ok()) return CommandError("clients get-master", reply.error());
  const nlohmann::json& clock = reply.value().body;
  if (flags.json) {
    std::cout << clock["master"].dump(2) << "\n";
    return clock["master"].is_object() ? 0 : 1;
  }
  if (!clock["master"].is_object()) {
    std::cout << "No master clock yet\n";
    return 1;
  }
  const auto& master = clock["master"];
  if (flags.verbose) {
    std::cout << "Master Client ID: " << master.value("id", "?") << ", IP Address "
              << master.value("ip", "?") << ", Name " << master.value("name", "?") << "\n";
  } else {
    std::cout << master.value("id", "?") << "\n";
  }
  return 0;
}

int RunTime(const ClusterFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) return CommandError("time", resolved.error, resolved.error_status);
  for (int round = 0;; ++round) {
    Result<NodeReply> reply = CallNode(resolved.node, "GET", "/v1/clock");
    if (!reply.ok()) return CommandError("time", reply.error());
    const nlohmann::json& c = reply.value().body;
    if (flags.json) {
      std::cout << c.dump() << "\n" << std::flush;
    } else if (!c.value("synced", false)) {
      std::cout << "not synchronised yet (master: "
                << (c["master"].is_object() ? c["master"].value("name", "?") : "none") << ")\n"
                << std::flush;
    } else {
      std::printf(
          "cluster time %.6f  offset %+.3f ms  error ±%.3f ms  drift %+.2f ppm  master %s "
          "(%s)%s\n",
          c.value("cluster_time", 0.0), c.value("offset_ms", 0.0), c.value("error_ms", 0.0),
          c.value("drift_ppm", 0.0), c["master"].value("name", "?").c_str(),
          c["master"].value("ip", "?").c_str(), c.value("is_master", false) ? " [this node]" : "");
      std::fflush(stdout);
    }
    if (!flags.watch) return c.value("synced", false) ? 0 : 1;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int RunClusterStatus(const ClusterFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) {
    return CommandError("cluster status", resolved.error, resolved.error_status);
  }
  const std::string& node = resolved.node;
  Result<nlohmann::json> fetched = FetchCluster(node);
  if (!fetched.ok()) return UsageOrFailure("cluster status", fetched.status());
  const nlohmann::json& c = fetched.value();
  if (flags.json) {
    std::cout << c.dump(2) << "\n";
    return c.value("quorum", false) ? 0 : 1;
  }
  const auto& leader = c["leader"];
  const unsigned voters = c.value("voters", 0u), alive = c.value("voters_alive", 0u);
  std::printf("Cluster  %s\n",
              c.value("cluster_id", "").empty() ? "(none yet)" : c.value("cluster_id", "").c_str());
  std::printf("Node     %s (phase: %s)\n", node.c_str(), c.value("phase", "?").c_str());
  if (leader.is_object()) {
    std::printf("Leader   %s (%s), term %llu\n", leader.value("name", "?").c_str(),
                leader.value("ip", "?").c_str(),
                static_cast<unsigned long long>(c.value("term", 0ULL)));
  } else {
    std::printf("Leader   none\n");
  }
  std::printf("Voters   %u (%u alive), standbys %u, spares %u\n", voters, alive,
              c.value("standbys", 0u), c.value("spares", 0u));
  if (c.value("quorum", false)) {
    std::printf("Quorum   healthy (%u of %u voters alive, %u needed)\n", alive, voters,
                voters / 2 + 1);
  } else {
    std::printf("Quorum   LOST: %u of %u voters alive, %u needed; writes fail until it is back\n",
                alive, voters, voters / 2 + 1);
  }
  std::printf("Log      commit %llu, applied %llu\n",
              static_cast<unsigned long long>(c.value("commit_index", 0ULL)),
              static_cast<unsigned long long>(c.value("applied_index", 0ULL)));
  return c.value("quorum", false) ? 0 : 1;
}

int RunKv(const std::string& verb, const std::string& key, const std::string& value, bool stale,
          const NodeTarget& target) {
  const Resolved resolved = ResolveOrExplain(target);
  if (!resolved.error.empty())
    return CommandError("kv " + verb, resolved.error, resolved.error_status);
  const std::string& node = resolved.node;
  const std::string method = verb == "get" ? "GET" : verb == "put" ? "PUT" : "DELETE";
  Result<NodeReply> reply =
      CallNode(node, method, "/v1/kv/" + key + (stale ? "?stale" : ""), value);
  if (!reply.ok()) return UsageOrFailure("kv " + verb, reply.status());
  const nlohmann::json& body = reply.value().body;
  if (reply.value().status != 200) {
    return CommandError("kv " + verb, body.value("error", body.dump()));
  }
  if (verb == "get") {
    std::cout << body.value("value", "") << "\n";
  } else {
    std::cout << "ok (log index " << body.value("index", 0ULL) << ")\n";
  }
  return 0;
}

}  // namespace

void RegisterClusterCommands(CLI::App& app, CommandRunner& run) {
  CLI::App* clients = app.add_subcommand("clients", "Members of the cluster");
  clients->require_subcommand(1);
  {
    auto flags = std::make_shared<ClusterFlags>();
    CLI::App* list = clients->add_subcommand("list", "List the members' ids");
    list->footer("Examples:\n  synod clients list --node 127.0.0.2\n  synod clients list -v");
    AddNodeOption(*list, flags->target);
    list->add_flag("-v,--verbose", flags->verbose, "One line per member: id, IP, role, state");
    list->add_flag("--json", flags->json, "Print the members as JSON");
    list->callback([&run, flags] { run = [flags] { return RunClientsList(*flags); }; });
  }
  {
    auto flags = std::make_shared<ClusterFlags>();
    CLI::App* master = clients->add_subcommand("get-master", "The member whose clock is master");
    AddNodeOption(*master, flags->target);
    master->add_flag("-v,--verbose", flags->verbose, "Id, IP address and name");
    master->add_flag("--json", flags->json, "Print the raw JSON");
    master->callback([&run, flags] { run = [flags] { return RunGetMaster(*flags); }; });
  }
  {
    auto flags = std::make_shared<ClusterFlags>();
    CLI::App* time = app.add_subcommand("time", "Cluster time, offset to the master, error bound");
    time->footer("Examples:\n  synod time\n  synod time --watch --node 127.0.0.3");
    AddNodeOption(*time, flags->target);
    time->add_flag("-w,--watch", flags->watch, "Print again every second");
    time->add_flag("--json", flags->json, "Print the raw JSON");
    time->callback([&run, flags] { run = [flags] { return RunTime(*flags); }; });
  }
  CLI::App* cluster = app.add_subcommand("cluster", "The cluster as a whole");
  cluster->require_subcommand(1);
  {
    auto flags = std::make_shared<ClusterFlags>();
    CLI::App* status = cluster->add_subcommand(
        "status",
        "Leader, term, voters, standbys and spares, quorum health (exit 1 without quorum)");
    AddNodeOption(*status, flags->target);
    status->add_flag("--json", flags->json, "Print the raw JSON");
    status->callback([&run, flags] { run = [flags] { return RunClusterStatus(*flags); }; });
  }
  CLI::App* kv = app.add_subcommand("kv", "The replicated key/value test surface");
  kv->require_subcommand(1);
  for (const char* verb : {"get", "put", "delete"}) {
    struct KvFlags {
      NodeTarget target;
      std::string key, value;
      bool stale = false;
    };
    auto flags = std::make_shared<KvFlags>();
    CLI::App* command = kv->add_subcommand(verb, std::string(verb) + " a key");
    AddNodeOption(*command, flags->target);
    command->add_option("key", flags->key, "Key")->required();
    if (std::string(verb) == "put") command->add_option("value", flags->value, "Value")->required();
    if (std::string(verb) == "get") {
      command->add_flag("--stale", flags->stale,
                        "Read the node's own copy at once, even if it may be behind (the default "
                        "read sees every acknowledged write, or fails)");
    }
    command->callback([&run, flags, verb = std::string(verb)] {
      run = [flags, verb] {
        return RunKv(verb, flags->key, flags->value, flags->stale, flags->target);
      };
    });
  }
}

}  // namespace synod::cli
