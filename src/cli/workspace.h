// Workspace: a local cluster of agents on this machine, as `synod init` / `bootstrap` / `clients`
// manage it (the seed's `tsc`, without Docker).
//
// A workspace is a directory: workspace.json (the state file, always replaced atomically),
// nodes/<name>/ (each agent's data dir, holding its node_id and agent.pid) and logs/<name>.log.
// Agents are real daemons: their own session and process group, output to their log file.
// Their pids are recorded before anything waits on them, and a process is taken for ours only if
// its command line names our data dir, so no agent is lost or a stranger killed even after the
// CLI itself was killed. Not thread-safe; one CLI process at a time.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "net/ipv4.h"

namespace synod::cli {

struct WorkspaceNode {
  std::string name;  // node1, node2, ...
  std::string ip;
  pid_t pid = 0;  // last started process
  bool removed = false;

  std::string DataDir(const std::string& root) const;
  std::string LogPath(const std::string& root) const;
  // The folder its agent keeps in sync with the other agents' (--sync-dir).
  std::string SyncDir(const std::string& root) const;
  // The node's id, once its agent has created it.
  std::string NodeId(const std::string& root) const;
};

class Workspace {
 public:
  // $SYNOD_WORKSPACE, else ~/.synod.
  static std::string DefaultPath();
  // Creates (or finds, idempotently) a workspace. `first_ip` is where agents start (127.0.0.2).
  static Result<Workspace> Init(const std::string& path, Ipv4 first_ip);
  // Errors when there is no workspace at `path` (say: run synod init).
  static Result<Workspace> Open(const std::string& path);

  Status Save() const;
  const std::string& path() const { return path_; }
  uint16_t broadcast_port() const { return broadcast_port_; }
  std::vector<WorkspaceNode>& nodes() { return nodes_; }
  const std::vector<WorkspaceNode>& nodes() const { return nodes_; }

  bool IsRunning(const WorkspaceNode& node) const;
  // Running agents, workspace order.
  std::vector<const WorkspaceNode*> Running() const;
  // "ADDR:7400" of some running agent, if any.
  std::optional<std::string> AnyApi() const;
  // By node id (or a unique prefix of it) or name; errors name what was not found.
  Result<WorkspaceNode*> Find(const std::string& id_or_name);

  // <workspace>/api.tokens: the agents' --api-token-file, when it exists.
  std::string ApiTokenFile() const;
  // <workspace>/cluster.key: the agents' --cluster-key-file, when it exists.
  std::string ClusterKeyFile() const;
  // Creates what is missing of api.tokens (one fresh write token) and cluster.key (a fresh
  // key), both mode 0600; never replaces either.
  Status EnsureSecrets() const;
  // The first write token of api.tokens, if any: what CLI commands send to this workspace's
  // agents (unless $SYNOD_TOKEN is set).
  std::optional<std::string> ApiToken() const;

  // Adds a node on the next free loopback address and starts its agent.
  Result<WorkspaceNode*> AddNode(const std::vector<std::string>& extra_flags);
  // Starts (again) the agent of an existing node.
  Status Start(WorkspaceNode& node, const std::vector<std::string>& extra_flags);
  // Stops one agent: SIGTERM (graceful leave) or SIGKILL; waits up to `wait_ms` for it to go.
  Status Stop(WorkspaceNode& node, bool kill, int wait_ms);
  // Every process of ours, found by command line (also those the state file lost).
  std::vector<pid_t> StrayAgents() const;

 private:
  std::string path_;
  uint32_t first_ip_ = 0;
  uint16_t broadcast_port_ = 0;
  unsigned next_index_ = 1;
  std::vector<WorkspaceNode> nodes_;
};

// Reads the last `lines` lines of a file.
std::vector<std::string> TailLines(const std::string& path, size_t lines);

}  // namespace synod::cli
