// synod init / bootstrap / teardown / clients add|get|remove|kill|restart|tail / server tail:
// a local cluster of agents on this machine's loopback addresses, as the seed's tsc managed
// Docker containers.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/node_client.h"
#include "cli/workspace.h"

namespace synod::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Exit 2 for what the user got wrong (no workspace, unknown id), 1 for what failed.
int Usage(const std::string& command, const std::string& message) {
  return CommandError(command, message, 2);
}

void PrintLogTail(const Workspace& workspace, const WorkspaceNode& node) {
  std::cerr << "  last lines of " << node.LogPath(workspace.path()) << ":\n";
  for (const auto& line : TailLines(node.LogPath(workspace.path()), 8)) {
    std::cerr << "    " << line << "\n";
  }
}

// Polls the cluster until every running agent of the workspace is an alive member and there is
// a leader; fails early, with its log, if an agent dies.
Status WaitForMembers(Workspace& workspace, const std::vector<std::string>& watched,
                      std::chrono::seconds limit, bool quiet) {
  const auto deadline = Clock::now() + limit;
  size_t last_reported = 0;
  while (Clock::now() < deadline) {
    for (const std::string& name : watched) {
      WorkspaceNode* node = workspace.Find(name).value();
      if (!workspace.IsRunning(*node)) {
        PrintLogTail(workspace, *node);
        return Status::Error(node->name + " at " + node->ip + " exited at start");
      }
    }
    size_t alive = 0;
    bool leader = false;
    bool master = false;
    if (auto api = workspace.AnyApi()) {
      if (auto reply = CallNode(*api, "GET", "/v1/cluster"); reply.ok()) {
        leader = reply.value().body["leader"].is_object();
        for (const auto& member : reply.value().body["members"]) {
          alive += member.value("state", "") == "alive";
        }
      }
      // A master clock chosen, and every member reporting that it follows it.
      if (auto clocks = CallNode(*api, "GET", "/v1/clock/members");
          clocks.ok() && clocks.value().body.is_array()) {
        size_t following = 0;
        for (const auto& report : clocks.value().body) following += report["master_id"].is_string();
        master = following > 0 && following >= workspace.Running().size();
      }
    }
    if (!quiet && alive != last_reported) {
      std::cout << "  " << alive << " of " << workspace.Running().size()
                << " agents are members of the cluster\n"
                << std::flush;
      last_reported = alive;
    }
    // Formed: every agent a live member, a leader, and a master clock chosen.
    if (leader && master && alive >= workspace.Running().size()) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Error("the cluster did not form within " + std::to_string(limit.count()) +
                       " s; see the logs in " + workspace.path() + "/logs");
}

// The workspace, whose agents' API token the commands then send (UseWorkspaceTokens).
Result<Workspace> OpenWorkspace(const std::string& path) {
  Result<Workspace> workspace = Workspace::Open(path);
  if (workspace.ok()) UseWorkspaceTokens(workspace.value());
  return workspace;
}

struct LocalFlags {
  std::string workspace;
  bool json = false;
  unsigned count = 4;
  std::string client;
  bool follow = false;
  size_t lines = 20;
  bool purge = false;
  std::string first_ip = "127.0.0.2";
};

int RunInit(const LocalFlags& flags) {
  Result<Ipv4> first = Ipv4::Parse(flags.first_ip);
  if (!first.ok() || !first.value().IsLoopback()) {
    return Usage("init", "--first-ip must be a loopback address (127.x.y.z)");
  }
  Result<Workspace> workspace = Workspace::Init(flags.workspace, first.value());
  if (!workspace.ok()) return CommandError("init", workspace.error());
  if (flags.json) {
    std::cout << nlohmann::json{{"workspace", workspace.value().path()}}.dump() << "\n";
  } else {
    std::cout << "Synod workspace ready at " << workspace.value().path()
              << "\nNext: synod bootstrap -c 4 -p " << workspace.value().path() << "\n";
  }
  return 0;
}

nlohmann::json NodesJson(const Workspace& workspace) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& node : workspace.nodes()) {
    if (node.removed) continue;
    nodes.push_back({{"name", node.name},
                     {"id", node.NodeId(workspace.path())},
                     {"ip", node.ip},
                     {"pid", node.pid},
                     {"running", workspace.IsRunning(node)},
                     {"log", node.LogPath(workspace.path())}});
  }
  return nodes;
}

int StartAgents(const std::string& command, Workspace& workspace, unsigned count,
                const std::vector<std::string>& flags, bool json) {
  if (!json) std::cout << "Starting " << count << " agents..\n" << std::flush;
  std::vector<std::string> started;
  for (unsigned i = 0; i < count; ++i) {
    Result<WorkspaceNode*> node = workspace.AddNode(flags);
    if (!node.ok()) return CommandError(command, node.error());
    started.push_back(node.value()->name);
    if (!json) {
      std::cout << "  started " << node.value()->name << " at " << node.value()->ip << " (pid "
                << node.value()->pid << ")\n"
                << std::flush;
    }
  }
  if (Status formed = WaitForMembers(workspace, started, std::chrono::seconds(30), json);
      !formed.ok()) {
    return CommandError(command, formed.message());
  }
  if (json) {
    std::cout
        << nlohmann::json{{"workspace", workspace.path()}, {"nodes", NodesJson(workspace)}}.dump(2)
        << "\n";
  } else {
    auto api = workspace.AnyApi();
    auto cluster = CallNode(*api, "GET", "/v1/cluster");
    std::string leader = "?";
    if (cluster.ok() && cluster.value().body["leader"].is_object()) {
      leader = cluster.value().body["leader"].value("name", "?") + " (" +
               cluster.value().body["leader"].value("ip", "?") + ")";
    }
    std::string master = "?";
    if (auto clock = CallNode(*api, "GET", "/v1/clock");
        clock.ok() && clock.value().body["master"].is_object()) {
      master = clock.value().body["master"].value("name", "?") + " (" +
               clock.value().body["master"].value("ip", "?") + ")";
    }
    std::cout << "Cluster up: " << workspace.Running().size() << " agents, leader " << leader
              << ", master clock " << master << ".\nTry: synod clients list -v -p "
              << workspace.path() << "\n";
  }
  return 0;
}

int RunBootstrap(const LocalFlags& flags) {
  Result<Workspace> opened = OpenWorkspace(flags.workspace);
  if (!opened.ok()) return Usage("bootstrap", opened.error());
  Workspace& workspace = opened.value();
  if (!workspace.Running().empty()) {
    std::cout << "The cluster is already up (" << workspace.Running().size()
              << " agents running); add more with: synod clients add -n N\n";
    return 0;
  }
  // The agents of a workspace check API tokens and talk TLS with the workspace's key (made by
  // `synod init`, or now for a workspace made before there were either).
  if (Status tokens = workspace.EnsureSecrets(); !tokens.ok()) {
    return CommandError("bootstrap", tokens.message());
  }
  UseWorkspaceTokens(workspace);
  const bool fresh = std::none_of(workspace.nodes().begin(), workspace.nodes().end(),
                                  [](const WorkspaceNode& n) { return !n.removed; });
  if (!fresh) {
    // Agents of an earlier bootstrap, stopped: start them again on their data.
    std::vector<std::string> restarted;
    for (auto& node : workspace.nodes()) {
      if (node.removed) continue;
      if (Status started = workspace.Start(node, {}); !started.ok()) {
        return CommandError("bootstrap", started.message());
      }
      restarted.push_back(node.name);
      if (!flags.json) std::cout << "  restarted " << node.name << " at " << node.ip << "\n";
    }
    Status formed = WaitForMembers(workspace, restarted, std::chrono::seconds(30), flags.json);
    return formed.ok() ? 0 : CommandError("bootstrap", formed.message());
  }
  return StartAgents("bootstrap", workspace, flags.count,
                     {"--bootstrap-expect", std::to_string(flags.count)}, flags.json);
}

int RunTeardown(const LocalFlags& flags) {
  Result<Workspace> opened = OpenWorkspace(flags.workspace);
  if (!opened.ok()) return Usage("teardown", opened.error());
  Workspace& workspace = opened.value();
  unsigned stopped = 0;
  for (auto& node : workspace.nodes()) {
    if (!workspace.IsRunning(node)) continue;
    ::kill(node.pid, SIGTERM);
    ++stopped;
  }
  for (auto& node : workspace.nodes()) {
    if (workspace.Stop(node, false, 5000).ok()) continue;
    std::cerr << node.name << " did not stop in 5 s: killing it\n";
    (void)workspace.Stop(node, true, 2000);
  }
  // Agents the state file does not know (a CLI killed mid-way): found by command line.
  for (pid_t pid : workspace.StrayAgents()) {
    ::kill(pid, SIGKILL);
    ++stopped;
  }
  if (Status saved = workspace.Save(); !saved.ok())
    return CommandError("teardown", saved.message());
  if (flags.purge) {
    std::error_code ec;
    std::filesystem::remove_all(workspace.path(), ec);
    if (ec)
      return CommandError("teardown", "cannot remove " + workspace.path() + ": " + ec.message());
  }
  if (flags.json) {
    std::cout << nlohmann::json{{"stopped", stopped}, {"purged", flags.purge}}.dump() << "\n";
  } else {
    std::cout << "Stopped " << stopped << " agents" << (flags.purge ? "; workspace removed" : "")
              << ".\n";
  }
  return 0;
}

int RunClientsAdd(const LocalFlags& flags) {
  Result<Workspace> opened = OpenWorkspace(flags.workspace);
  if (!opened.ok()) return Usage("clients add", opened.error());
  if (opened.value().Running().empty()) {
    return Usage("clients add", "no agent is running; start the cluster with: synod bootstrap");
  }
  return StartAgents("clients add", opened.value(), flags.count, {}, flags.json);
}

int RunClientStop(const std::string& command, const LocalFlags& flags, bool kill) {
  Result<Workspace> opened = OpenWorkspace(flags.workspace);
  if (!opened.ok()) return Usage(command, opened.error());
  Workspace& workspace = opened.value();
  Result<WorkspaceNode*> node = workspace.Find(flags.client);
  if (!node.ok()) return Usage(command, node.error());
  if (!flags.json) {
    std::cout << "Attempting to " << (kill ? "kill" : "remove") << " client with ID "
              << flags.client << "\n";
  }
  if (Status stopped = workspace.Stop(*node.value(), kill, 6000); !stopped.ok()) {
    return CommandError(command, stopped.message());
  }
  if (!kill) node.value()->removed = true;  // a killed one may be restarted
  if (Status saved = workspace.Save(); !saved.ok()) return CommandError(command, saved.message());
  if (flags.json) {
    std::cout << nlohmann::json{{"name", node.value()->name}, {"ip", node.value()->ip}}.dump()
              << "\n";
  } else {
    std::cout << "Client at IP " << node.value()->ip << (kill ? " killed" : " removed")
              << " successfully\n";
  }
  return 0;
}

int RunClientRestart(const LocalFlags& flags) {
  Result<Workspace> opened = OpenWorkspace(flags.workspace);
  if (!opened.ok()) return Usage("clients restart", opened.error());
  Workspace& workspace = opened.value();
  Result<WorkspaceNode*> node = workspace.Find(flags.client);
  if (!node.ok()) return Usage("clients restart", node.error());
  (void)workspace.Stop(*node.value(), false, 6000);
  if (Status started = workspace.Start(*node.value(), {}); !started.ok()) {
    return CommandError("clients restart", started.message());
  }
  Status formed = WaitForMembers(workspace, {node.value()->name}, std::chrono::seconds(20), true);
  if (!formed.ok()) return CommandError("clients restart", formed.message());
  std::cout << "Client " << node.value()->name << " at IP " << node.value()->ip
            << " restarted (pid " << node.value()->pid << ")\n";
  return 0;
}

int RunClientGet(const LocalFlags& flags) {
  Result<Workspace> opened = OpenWorkspace(flags.workspace);
  if (!opened.ok()) return Usage("clients get", opened.error());
  Workspace& workspace = opened.value();
  Result<WorkspaceNode*> node = workspace.Find(flags.client);
  if (!node.ok()) return Usage("clients get", node.error());
  nlohmann::json info = {{"name", node.value()->name},
                         {"id", node.value()->NodeId(workspace.path())},
                         {"ip", node.value()->ip},
                         {"pid", node.value()->pid},
                         {"running", workspace.IsRunning(*node.value())}};
  if (auto api = workspace.AnyApi()) {
    if (auto cluster = CallNode(*api, "GET", "/v1/cluster"); cluster.ok()) {
      for (const auto& member : cluster.value().body["members"]) {
        if (member.value("id", "") == info["id"]) info["member"] = member;
      }
    }
  }
  if (flags.json) {
    std::cout << info.dump(2) << "\n";
    return 0;
  }
  std::cout << "Client ID: " << info.value("id", "?") << ", IP Address " << info.value("ip", "?")
            << ", Name " << info.value("name", "?") << ", Running "
            << (info.value("running", false) ? "yes" : "no");
  if (info.contains("member")) {
    std::cout << ", Role " << info["member"].value("role", "?") << ", State "
              << info["member"].value("state", "?");
  }
  std::cout << "\n";
  return 0;
}

int FollowFile(const std::string& path, size_t lines, bool follow) {
  for (const auto& line : TailLines(path, lines)) std::cout << line << "\n";
  if (!follow) return 0;
  std::ifstream in(path);
  in.seekg(0, std::ios::end);
  std::string line;
  while (true) {  // until interrupted, as tail -f
    while (std::getline(in, line)) std::cout << line << "\n" << std::flush;
    in.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int RunClientTail(const LocalFlags& flags) {
  Result<Workspace> opened = OpenWorkspace(flags.workspace);
  if (!opened.ok()) return Usage("clients tail", opened.error());
  Result<WorkspaceNode*> node = opened.value().Find(flags.client);
  if (!node.ok()) return Usage("clients tail", node.error());
  return FollowFile(node.value()->LogPath(opened.value().path()), flags.lines, flags.follow);
}

int RunServerTail(const LocalFlags& flags) {
  Result<Workspace> opened = OpenWorkspace(flags.workspace);
  if (!opened.ok()) return Usage("server tail", opened.error());
  Workspace& workspace = opened.value();
  auto api = workspace.AnyApi();
  if (!api) return CommandError("server tail", "no agent is running");
  auto cluster = CallNode(*api, "GET", "/v1/cluster");
  if (!cluster.ok() || !cluster.value().body["leader"].is_object()) {
    return CommandError("server tail", "the cluster has no leader right now");
  }
  const std::string leader_ip = cluster.value().body["leader"].value("ip", "");
  for (const auto& node : workspace.nodes()) {
    if (node.ip == leader_ip && !node.removed) {
      if (!flags.follow) std::cout << "(leader: " << node.name << " at " << node.ip << ")\n";
      return FollowFile(node.LogPath(workspace.path()), flags.lines, flags.follow);
    }
  }
  return CommandError("server tail", "the leader (" + leader_ip + ") is not in this workspace");
}

}  // namespace

void RegisterLocalClusterCommands(CLI::App& app, CommandRunner& run) {
  auto command = [&run](CLI::App* parent, const std::string& name, const std::string& help,
                        int (*runner)(const LocalFlags&)) {
    auto flags = std::make_shared<LocalFlags>();
    CLI::App* cmd = parent->add_subcommand(name, help);
    AddWorkspaceOption(*cmd, flags->workspace);
    cmd->add_flag("--json", flags->json, "Machine-readable output");
    cmd->callback([&run, flags, runner] { run = [flags, runner] { return runner(*flags); }; });
    return std::make_pair(cmd, flags);
  };

  auto [init, init_flags] =
      command(&app, "init", "Create a workspace for a local cluster", RunInit);
  init->add_option("--first-ip", init_flags->first_ip, "First loopback address for agents")
      ->capture_default_str();
  init->footer("Example:\n  synod init -p ~/dev/synod");

  auto [bootstrap, bootstrap_flags] = command(
      &app, "bootstrap", "Start N agents and wait until they form one cluster", RunBootstrap);
  bootstrap->add_option("-c,--count", bootstrap_flags->count, "Agents to start")
      ->capture_default_str()
      ->check(CLI::Range(1, 200));
  bootstrap->footer("Example:\n  synod bootstrap -c 4");

  auto [teardown, teardown_flags] =
      command(&app, "teardown", "Stop every agent of the workspace", RunTeardown);
  teardown->add_flag("--purge", teardown_flags->purge, "Also delete the workspace and its data");

  CLI::App* clients = app.get_subcommand("clients");
  auto [add, add_flags] =
      command(clients, "add", "Start N more agents that join the cluster", RunClientsAdd);
  add->add_option("-n,--count", add_flags->count, "Agents to add")
      ->required()
      ->check(CLI::Range(1, 200));
  add->footer("Example:\n  synod clients add -n 3");
  for (auto [name, help, runner] :
       std::initializer_list<std::tuple<const char*, const char*, int (*)(const LocalFlags&)>>{
           {"get", "Show one client", RunClientGet},
           {"remove", "Stop a client gracefully (it leaves the cluster)",
            [](const LocalFlags& f) { return RunClientStop("clients remove", f, false); }},
           {"kill", "SIGKILL a client, to simulate a crash",
            [](const LocalFlags& f) { return RunClientStop("clients kill", f, true); }},
           {"restart", "Restart a client on its data", RunClientRestart},
           {"tail", "Print a client's log", RunClientTail}}) {
    auto [cmd, flags] = command(clients, name, help, runner);
    cmd->add_option("-c,--client", flags->client, "Client id (or a unique prefix, or its name)")
        ->required();
    if (std::string(name) == "tail") {
      cmd->add_flag("-f,--follow", flags->follow, "Keep printing new lines");
      cmd->add_option("-n,--lines", flags->lines, "Lines to print")->capture_default_str();
    }
  }
  CLI::App* server = app.add_subcommand("server", "The current leader");
  server->require_subcommand(1);
  auto [tail, tail_flags] = command(server, "tail", "Print the leader's log", RunServerTail);
  tail->add_flag("-f,--follow", tail_flags->follow, "Keep printing new lines");
  tail->add_option("-n,--lines", tail_flags->lines, "Lines to print")->capture_default_str();
}

}  // namespace synod::cli
