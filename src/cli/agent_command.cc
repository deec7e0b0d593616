#include <unistd.h>

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
  uint16_t raft_port = 7401;
  uint16_t broadcast_port = 35498;
  std::string broadcast_addr;
  std::string beacon_interval = "1s";
  std::string formation_beacon_interval;
  std::string log_level = "info";
  bool bootstrap = false;
  unsigned bootstrap_expect = 0;
  std::vector<std::string> join;
  unsigned voters = 3;
  unsigned standbys = 2;
  unsigned feed_window = 4096;
  unsigned snapshot_threshold = 8192;
  std::string election_timeout = "300ms";
  std::string heartbeat_timeout = "100ms";
  std::string master_timeout = "60s";
  std::string master_policy = "lowest-ip";
  std::string on_command;
  std::string on_command_timeout = "10s";
  unsigned external_failures = 3;
  bool demo_commands = false;
  std::string webhook_secret_file;
  std::string cluster_key_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_file;
  std::string timer_retention = "24h";
  std::string sync_tombstone_retention = "24h";
  std::string sync_dir;
  std::string api_tls_cert_file;
  std::string api_tls_key_file;
  std::string api_tls_ca_file;
  std::string api_token_file;
  bool api_read_requires_token = false;
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
  auto beacon_interval = [](const std::string& flag,
                            const std::string& text) -> Result<std::chrono::milliseconds> {
    Result<std::chrono::milliseconds> interval = ParseDuration(text);
    if (!interval.ok()) return Status::Error(flag + ": " + interval.error());
    if (interval.value() < std::chrono::milliseconds(10) ||
        interval.value() > std::chrono::hours(1)) {
      return Status::Error(flag + " must be between 10ms and 1h");
    }
    return interval;
  };
  Result<std::chrono::milliseconds> interval =
      beacon_interval("--beacon-interval", flags.beacon_interval);
  if (!interval.ok()) return Fail(interval.error(), 2);
  config.beacon_interval = interval.value();
  if (!flags.formation_beacon_interval.empty()) {
    Result<std::chrono::milliseconds> formation =
        beacon_interval("--formation-beacon-interval", flags.formation_beacon_interval);
    if (!formation.ok()) return Fail(formation.error(), 2);
    config.formation_beacon_interval = formation.value();
  }
  if (config.api_port == config.peer_port || config.api_port == flags.raft_port ||
      config.peer_port == flags.raft_port) {
    return Fail("--api-port, --raft-port and --peer-port must differ", 2);
  }
  config.raft_port = flags.raft_port;
  config.bootstrap = flags.bootstrap;
  config.bootstrap_expect = flags.bootstrap_expect;
  if (flags.bootstrap && flags.bootstrap_expect > 0) {
    return Fail("--bootstrap and --bootstrap-expect exclude each other", 2);
  }
  for (const std::string& address : flags.join) {
    Result<Ipv4> ip = Ipv4::Parse(address);
    if (!ip.ok()) return Fail("--join: " + ip.error(), 2);
    config.join.push_back(ip.value());
  }
  config.voters = flags.voters;
  config.standbys = flags.standbys;
  config.feed_window = flags.feed_window;
  config.snapshot_threshold = flags.snapshot_threshold;
  Result<std::chrono::milliseconds> election = ParseDuration(flags.election_timeout);
  if (!election.ok()) return Fail("--election-timeout: " + election.error(), 2);
  Result<std::chrono::milliseconds> heartbeat = ParseDuration(flags.heartbeat_timeout);
  if (!heartbeat.ok()) return Fail("--heartbeat-timeout: " + heartbeat.error(), 2);
  if (election.value() < std::chrono::milliseconds(50) ||
      heartbeat.value() < std::chrono::milliseconds(5) ||
      heartbeat.value() * 2 > election.value()) {
    return Fail(
        "timeouts: need --election-timeout >= 50ms, --heartbeat-timeout >= 5ms and at "
        "most half the election timeout",
        2);
  }
  Result<std::chrono::milliseconds> master_timeout = ParseDuration(flags.master_timeout);
  if (!master_timeout.ok()) return Fail("--master-timeout: " + master_timeout.error(), 2);
  if (master_timeout.value() < std::chrono::seconds(1)) {
    return Fail("--master-timeout must be at least 1s", 2);
  }
  config.master_timeout = master_timeout.value();
  config.master_policy = flags.master_policy;
  config.election_timeout = election.value();
  config.heartbeat_timeout = heartbeat.value();
  if (!flags.on_command.empty() && access(flags.on_command.c_str(), X_OK) != 0) {
    return Fail("--on-command: " + flags.on_command + " is not an executable file", 2);
  }
  config.on_command = flags.on_command;
  Result<std::chrono::milliseconds> on_command_timeout = ParseDuration(flags.on_command_timeout);
  if (!on_command_timeout.ok()) {
    return Fail("--on-command-timeout: " + on_command_timeout.error(), 2);
  }
  if (on_command_timeout.value() < std::chrono::milliseconds(10)) {
    return Fail("--on-command-timeout must be at least 10ms", 2);
  }
  config.on_command_timeout = on_command_timeout.value();
  config.external_failures = flags.external_failures;
  config.demo_commands = flags.demo_commands;
  config.webhook_secret_file = flags.webhook_secret_file;
  Result<std::chrono::milliseconds> retention = ParseDuration(flags.timer_retention);
  if (!retention.ok()) return Fail("--timer-retention: " + retention.error(), 2);
  if (retention.value() < std::chrono::seconds(1)) {
    return Fail("--timer-retention must be at least 1s", 2);
  }
  config.timer_retention = std::chrono::duration_cast<std::chrono::seconds>(retention.value());
  config.sync_dir = flags.sync_dir;
  Result<std::chrono::milliseconds> tombstones = ParseDuration(flags.sync_tombstone_retention);
  if (!tombstones.ok()) return Fail("--sync-tombstone-retention: " + tombstones.error(), 2);
  if (tombstones.value() < std::chrono::seconds(1)) {
    return Fail("--sync-tombstone-retention must be at least 1s", 2);
  }
  config.sync_tombstone_retention = tombstones.value();
  config.cluster_key_file = flags.cluster_key_file;
  config.tls_cert_file = flags.tls_cert_file;
  config.tls_key_file = flags.tls_key_file;
  config.tls_ca_file = flags.tls_ca_file;
  if (flags.api_read_requires_token && flags.api_token_file.empty()) {
    return Fail("--api-read-requires-token needs --api-token-file", 2);
  }
  config.api_tls_cert_file = flags.api_tls_cert_file;
  config.api_tls_key_file = flags.api_tls_key_file;
  config.api_tls_ca_file = flags.api_tls_ca_file;
  config.api_token_file = flags.api_token_file;
  config.api_read_requires_token = flags.api_read_requires_token;

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
      "Examples:\n  synod agent --name n1 --bind 127.0.0.2 --data-dir /tmp/synod/n1 "
      "--bootstrap-expect 3\n  synod agent --name n4 --bind 127.0.0.5 --data-dir /tmp/synod/n4 "
      "--join 127.0.0.2");
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
  cmd->add_option("--raft-port", flags->raft_port, "Raft port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--broadcast-port", flags->broadcast_port, "SDSS discovery UDP port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--broadcast-addr", flags->broadcast_addr,
                  "Where beacons go (default: the bound interface's directed broadcast)");
  cmd->add_option("--beacon-interval", flags->beacon_interval, "Time between beacons (e.g. 1s)")
      ->capture_default_str();
  cmd->add_option("--formation-beacon-interval", flags->formation_beacon_interval,
                  "Time between beacons until the node is a cluster member (default: "
                  "--beacon-interval)");
  cmd->add_flag("--bootstrap", flags->bootstrap,
                "Form a new one-node cluster that others join (only on a first start)");
  cmd->add_option("--bootstrap-expect", flags->bootstrap_expect,
                  "Wait until N nodes are discovered, then form one cluster of them")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--join", flags->join, "Address of a member to join through (repeatable)");
  cmd->add_option("--voters", flags->voters, "Voting members")
      ->capture_default_str()
      ->check(CLI::IsMember({1, 3, 5, 7}));
  cmd->add_option("--standbys", flags->standbys,
                  "Members replicated by Raft without a vote, ready to replace a voter; the "
                  "rest are spares, fed committed entries by the leader")
      ->capture_default_str()
      ->check(CLI::Range(0, 15));
  cmd->add_option("--feed-window", flags->feed_window,
                  "Committed entries the leader keeps to catch spares up; a spare further "
                  "behind fetches the whole state")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  cmd->add_option("--snapshot-threshold", flags->snapshot_threshold,
                  "Log entries between two snapshots of the replicated state (written in the "
                  "background; the log before one is dropped)")
      ->capture_default_str()
      ->check(CLI::Range(16, 10'000'000));
  cmd->add_option("--election-timeout", flags->election_timeout, "Raft election timeout")
      ->capture_default_str();
  cmd->add_option("--heartbeat-timeout", flags->heartbeat_timeout, "Raft heartbeat interval")
      ->capture_default_str();
  cmd->add_option("--master-timeout", flags->master_timeout,
                  "A master clock silent this long is replaced (>= 1s)")
      ->capture_default_str();
  cmd->add_option("--master-policy", flags->master_policy, "How the master clock is chosen")
      ->capture_default_str()
      ->check(CLI::IsMember({"lowest-ip"}));
  cmd->add_option("--on-command", flags->on_command,
                  "Program run (not through a shell) as PROGRAM <command> for each received "
                  "command");
  cmd->add_option("--on-command-timeout", flags->on_command_timeout,
                  "An --on-command program running longer is killed")
      ->capture_default_str();
  cmd->add_option("--external-failures", flags->external_failures,
                  "Failed receive-command calls in a row before an external client is unranked")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--demo-commands", flags->demo_commands,
                "Send a random START/STOP/PAUSE/RESTART_TRANSMIT command every 10-60 s");
  cmd->add_option("--webhook-secret-file", flags->webhook_secret_file,
                  "Sign timer webhooks (Standard Webhooks): one or two whsec_ keys, one per line, "
                  "the new one first");
  cmd->add_option("--timer-retention", flags->timer_retention,
                  "How long finished timers stay readable")
      ->capture_default_str();
  cmd->add_option("--sync-dir", flags->sync_dir,
                  "Keep this folder identical on every node that syncs one (not the data dir)");
  cmd->add_option("--sync-tombstone-retention", flags->sync_tombstone_retention,
                  "How long the cluster remembers a deleted file; a node down longer still "
                  "removes its copy when it comes back")
      ->capture_default_str();
  cmd->add_option("--cluster-key-file", flags->cluster_key_file,
                  "Encrypt and authenticate all cluster traffic (TLS 1.3) with this key, made by "
                  "`synod keygen`; nodes without it cannot join");
  cmd->add_option("--tls-cert", flags->tls_cert_file,
                  "Instead of a cluster key: this node's certificate (PEM), with --tls-key and "
                  "--tls-ca");
  cmd->add_option("--tls-key", flags->tls_key_file, "The private key of --tls-cert (PEM)");
  cmd->add_option("--tls-ca", flags->tls_ca_file,
                  "The CA (PEM) whose certificates make a node a member");
  cmd->add_option("--api-tls-cert", flags->api_tls_cert_file,
                  "Serve the API over HTTPS with this certificate (PEM), with --api-tls-key");
  cmd->add_option("--api-tls-key", flags->api_tls_key_file, "The private key of --api-tls-cert");
  cmd->add_option("--api-tls-ca", flags->api_tls_ca_file,
                  "The CA (PEM) that signed the other members' API certificates, for the "
                  "dashboard's fetches of their views (default: the system's CAs)");
  cmd->add_option("--api-token-file", flags->api_token_file,
                  "API tokens, one \"read|write <token>\" per line (16+ characters): every "
                  "request that changes state then needs Authorization: Bearer <write token>; "
                  "SIGHUP reloads it");
  cmd->add_flag("--api-read-requires-token", flags->api_read_requires_token,
                "With --api-token-file: reads need a read or write token too (but /healthz and "
                "the dashboard's page and files)");
  cmd->add_option("--log-level", flags->log_level, "trace, debug, info, warn, error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  cmd->callback([&run, flags] { run = [flags] { return RunAgent(*flags); }; });
}

}  // namespace synod::cli
