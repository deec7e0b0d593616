// Agent: one Synod node. Wires the modules together on one event loop and runs until SIGINT or
// SIGTERM.
//
// Start-up checks everything a user can get wrong and fails with one clear message: an address
// that is not local, a port in use, an unwritable data directory. Run() blocks the calling
// thread, which becomes the loop thread; everything else in the agent happens there.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "net/ipv4.h"

namespace synod {

struct AgentConfig {
  std::string name;  // empty: the node's short id
  Ipv4 bind;
  std::string data_dir;
  uint16_t api_port = 7400;
  uint16_t peer_port = 7402;
  uint16_t raft_port = 7401;
  uint16_t broadcast_port = 35498;
  std::optional<Ipv4> broadcast_addr;  // default: directed broadcast of the bound interface
  std::chrono::milliseconds beacon_interval{1000};
  // Until the node is a cluster member, beacons this often instead (a cluster forms faster).
  std::optional<std::chrono::milliseconds> formation_beacon_interval;
  bool bootstrap = false;
  unsigned bootstrap_expect = 0;
  std::vector<Ipv4> join;
  unsigned voters = 3;
  unsigned standbys = 2;
  unsigned feed_window = 4096;
  unsigned snapshot_threshold = 8192;
  std::chrono::milliseconds election_timeout{300};
  std::chrono::milliseconds heartbeat_timeout{100};
  std::chrono::milliseconds master_timeout{60'000};
  std::string master_policy = "lowest-ip";
  std::string on_command;  // program run for each received command
  std::chrono::milliseconds on_command_timeout{10'000};
  unsigned external_failures = 3;
  bool demo_commands = false;
  std::string webhook_secret_file;  // Standard Webhooks keys for signing timer webhooks
  std::chrono::seconds timer_retention{24 * 3600};
  // How long the file index keeps a deleted path's tombstone.
  std::chrono::milliseconds sync_tombstone_retention{24 * 3600 * 1000};
  std::string sync_dir;  // empty: this node syncs no folder (it still holds the file index)
  // Cluster traffic (peer protocol, Raft, file blocks) over TLS 1.3: with a shared cluster key
  // (`synod keygen`), or with certificates (all three files). Empty: in clear text.
  std::string cluster_key_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_file;
  // HTTPS for the API with this certificate and key (PEM); empty: plain HTTP. The CA file, if
  // set, is what the other members' API certificates are checked against when this node
  // fetches their views (the dashboard's overview); empty: the system's CAs.
  std::string api_tls_cert_file;
  std::string api_tls_key_file;
  std::string api_tls_ca_file;
  // API tokens (AccessPolicy's format); empty: the API is open, as without tokens.
  std::string api_token_file;
  bool api_read_requires_token = false;  // reads need a token too (needs api_token_file)
};

class Agent {
 public:
  explicit Agent(AgentConfig config);
  ~Agent();

  // Opens the data directory and every socket. On error nothing keeps running.
  Status Start();
  // Runs until a stop signal or Stop(); then closes every socket and returns.
  void Run();
  // Makes Run() return as a stop signal would. Any thread.
  void Stop();
  // The HTTP API's routes, (method, pattern), once started: what /openapi.json must describe.
  std::vector<std::pair<std::string, std::string>> Routes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synod
