#include <iostream>
#include <memory>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "cli/commands.h"
#include "core/duration.h"

namespace synod::cli {
namespace {

struct AgentFlags {
  std::string name;
  std::string bind;
  std::string data_dir;
  uint16_t api_port = 7400;
  uint16_t peer_port = 7402;
  uint16_t broadcast_port = 35498;
  std::string broadcast_addr;
  std::string beacon_interval = "1s";
  std::string log_level = "info";
};

int Fail(const std::string& message, int status) {
  std::cerr << "synod agent: error: " << message << "\n";
  return status;
}

int RunAgent(const AgentFlags& flags) {
  AgentConfig config;
  config.name = flags.name;
  config.data_dir = flags.data_dir;
  config.api_port = flags.api_port;
  config.peer_port = flags.peer_port;
  config.broadcast_port = flags.broadcast_port;
  Result<Ipv4> bind = Ipv4::Parse(flags.bind);
  if (!bind.ok()) return Fail("--bind: " + bind.error(), 2);
  config.bind = bind.value();
  if (!flags.broadcast_addr.empty()) {
    Result<Ipv4> broadcast = Ipv4::Parse(flags.broadcast_addr);
    if (!broadcast.ok()) return Fail("--broadcast-addr: " + broadcast.error(), 2);
    config.broadcast_addr = broadcast.value();
  }
  Result<std::chrono::milliseconds> interval = ParseDuration(flags.beacon_interval);
  if (!interval.ok()) return Fail("--beacon-interval: " + interval.error(), 2);
  if (interval.value() < std::chrono::milliseconds(10) ||
      interval.value() > std::chrono::hours(1)) {
    return Fail("--beacon-interval must be between 10ms and 1h", 2);
  }
  config.beacon_interval = interval.value();
  if (config.api_port == config.peer_port) {
    return Fail("--api-port and --peer-port must differ", 2);
  }

  auto level = spdlog::level::from_str(flags.log_level);
  auto logger = spdlog::stderr_color_mt("synod");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(level);
  spdlog::set_default_logger(logger);

  Agent agent(config);
  if (Status status = agent.Start(); !status.ok()) return Fail(status.message(), 1);
  agent.Run();
  return 0;
}

}  // namespace

void RegisterAgentCommand(CLI::App& app, CommandRunner& run) {
  auto flags = std::make_shared<AgentFlags>();
  CLI::App* cmd = app.add_subcommand("agent", "Run a Synod node in the foreground");
  cmd->footer(
      "Example:\n  synod agent --name n1 --bind 127.0.0.2 --data-dir /tmp/synod/n1 "
      "--beacon-interval 1s");
  cmd->add_option("--name", flags->name, "Human-readable node name (default: its short id)");
  cmd->add_option("--bind", flags->bind, "IPv4 address of this machine to bind")->required();
  cmd->add_option("--data-dir", flags->data_dir, "Directory for the node's durable state")
      ->required();
  cmd->add_option("--api-port", flags->api_port, "HTTP API port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--peer-port", flags->peer_port, "Native peer protocol port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--broadcast-port", flags->broadcast_port, "SDSS discovery UDP port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--broadcast-addr", flags->broadcast_addr,
                  "Where beacons go (default: the bound interface's directed broadcast)");
  cmd->add_option("--beacon-interval", flags->beacon_interval, "Time between beacons (e.g. 1s)")
      ->capture_default_str();
  cmd->add_option("--log-level", flags->log_level, "trace, debug, info, warn, error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  cmd->callback([&run, flags] { run = [flags] { return RunAgent(*flags); }; });
}

}  // namespace synod::cli
