#include "cli/workspace.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/access_policy.h"
#include "core/node_identity.h"
#include "core/secret_file.h"
#include "net/tls.h"

namespace synod::cli {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStateFile = "workspace.json";
constexpr const char* kApiTokenFile = "api.tokens";
constexpr const char* kClusterKeyFile = "cluster.key";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The command line of a process, NULs as spaces; empty if it is gone.
std::string CommandLine(pid_t pid) {
  std::string text = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : text) {
    if (c == '\0') c = ' ';
  }
  return text;
}

bool PortFree(Ipv4 ip, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr = ip.ToSockaddr(port);
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return free;
}

}  // namespace

std::string WorkspaceNode::DataDir(const std::string& root) const {
  return (fs::path(root) / "nodes" / name).string();
}
std::string WorkspaceNode::SyncDir(const std::string& root) const {
  return (fs::path(root) / "folders" / name).string();
}
std::string WorkspaceNode::LogPath(const std::string& root) const {
  return (fs::path(root) / "logs" / (name + ".log")).string();
}
std::string WorkspaceNode::NodeId(const std::string& root) const {
  std::string id = ReadFile((fs::path(DataDir(root)) / "node_id").string());
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

std::string Workspace::DefaultPath() {
  if (const char* env = std::getenv("SYNOD_WORKSPACE"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return (fs::path(home != nullptr ? home : "/tmp") / ".synod").string();
}

Result<Workspace> Workspace::Init(const std::string& path, Ipv4 first_ip) {
  if (fs::exists(fs::path(path) / kStateFile)) return Open(path);
  std::error_code ec;
  fs::create_directories(fs::path(path) / "nodes", ec);
  if (!ec) fs::create_directories(fs::path(path) / "logs", ec);
  if (ec) return Status::Error("cannot create workspace " + path + ": " + ec.message());
  Workspace workspace;
  workspace.path_ = fs::absolute(path).string();
  workspace.first_ip_ = first_ip.host_order;
  // Each workspace broadcasts on its own port, so that two on one machine never merge.
  std::random_device random;
  workspace.broadcast_port_ = static_cast<uint16_t>(40000 + random() % 20000);
  if (Status saved = workspace.Save(); !saved.ok()) return saved;
  if (Status tokens = workspace.EnsureSecrets(); !tokens.ok()) return tokens;
  return workspace;
}

Result<Workspace> Workspace::Open(const std::string& path) {
  const std::string file = (fs::path(path) / kStateFile).string();
  if (!fs::exists(file)) {
    return Status::Error("no workspace at " + path + " (create one with: synod init -p " + path +
                         ")");
  }
  nlohmann::json state = nlohmann::json::parse(ReadFile(file), nullptr, false);
  if (state.is_discarded() || !state.is_object() || state.value("version", 0) != 1) {
    return Status::Error("workspace state " + file + " is unreadable or from another version");
  }
  Workspace workspace;
  workspace.path_ = fs::absolute(path).string();
  workspace.first_ip_ = state.value("first_ip", 0u);
  workspace.broadcast_port_ = state.value("broadcast_port", uint16_t{35498});
  workspace.next_index_ = state.value("next_index", 1u);
  for (const auto& node : state.value("nodes", nlohmann::json::array())) {
    workspace.nodes_.push_back(WorkspaceNode{node.value("name", ""), node.value("ip", ""),
                                             node.value("pid", 0), node.value("removed", false)});
  }
  return workspace;
}

Status Workspace::Save() const {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& node : nodes_) {
    nodes.push_back(
        {{"name", node.name}, {"ip", node.ip}, {"pid", node.pid}, {"removed", node.removed}});
  }
  nlohmann::json state = {{"version", 1},
                          {"first_ip", first_ip_},
                          {"broadcast_port", broadcast_port_},
                          {"next_index", next_index_},
                          {"nodes", nodes}};
  return WriteFileAtomically((fs::path(path_) / kStateFile).string(), state.dump(2) + "\n");
}

bool Workspace::IsRunning(const WorkspaceNode& node) const {
  if (node.pid <= 0) return false;
  ::waitpid(node.pid, nullptr, WNOHANG);  // a child of ours that exited is not running
  if (::kill(node.pid, 0) != 0) return false;
  return CommandLine(node.pid).find("--data-dir " + node.DataDir(path_) + " ") != std::string::npos;
}

std::vector<const WorkspaceNode*> Workspace::Running() const {
  std::vector<const WorkspaceNode*> running;
  for (const auto& node : nodes_) {
    if (!node.removed && IsRunning(node)) running.push_back(&node);
  }
  return running;
}

std::optional<std::string> Workspace::AnyApi() const {
  auto running = Running();
  if (running.empty()) return std::nullopt;
  return running.front()->ip + ":7400";
}

Result<WorkspaceNode*> Workspace::Find(const std::string& id_or_name) {
  WorkspaceNode* found = nullptr;
  for (auto& node : nodes_) {
    if (node.removed) continue;
    const std::string id = node.NodeId(path_);
    const bool match = node.name == id_or_name ||
                       (!id.empty() && !id_or_name.empty() && id.rfind(id_or_name, 0) == 0);
    if (!match) continue;
    if (found != nullptr) return Status::Error("client id '" + id_or_name + "' is ambiguous");
    found = &node;
  }
  if (found == nullptr) {
    return Status::Error("no client with id '" + id_or_name + "' in workspace " + path_ +
                         " (see: synod clients list)");
  }
  return found;
}

std::string Workspace::ClusterKeyFile() const {
  return (fs::path(path_) / kClusterKeyFile).string();
}

std::string Workspace::ApiTokenFile() const { return (fs::path(path_) / kApiTokenFile).string(); }

Status Workspace::EnsureSecrets() const {
  if (!fs::exists(ApiTokenFile())) {
    const std::string token = NewApiToken();
    if (token.empty()) return Status::Error("cannot create " + ApiTokenFile() + ": no randomness");
    const std::string text =
        "# API tokens of this workspace's agents (--api-token-file): \"<read|write> <token>\" "
        "per line.\n# CLI commands of the workspace send the first write token.\nwrite " +
        token + "\n";
    if (Status created = CreateSecretFile(ApiTokenFile(), text);
        !created.ok() && created.code() != StatusCode::kConflict) {
      return created;
    }
  }
  if (!fs::exists(ClusterKeyFile())) {
    Result<std::string> key = TlsConfig::GenerateClusterKey();
    if (!key.ok()) return key.status();
    if (Status created = CreateSecretFile(ClusterKeyFile(), key.value());
        !created.ok() && created.code() != StatusCode::kConflict) {
      return created;
    }
  }
  return Status::Ok();
}

std::optional<std::string> Workspace::ApiToken() const {
  std::ifstream in(ApiTokenFile());
  std::string scope;
  std::string token;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    if (fields >> scope >> token && scope == "write") return token;
  }
  return std::nullopt;
}

Result<WorkspaceNode*> Workspace::AddNode(const std::vector<std::string>& extra_flags) {
  // The next address whose three ports are free (another program may hold some).
  uint32_t ip = first_ip_;
  for (const auto& node : nodes_) {
    ip = std::max(ip, Ipv4::Parse(node.ip).value().host_order + 1);
  }
  for (int tries = 0;; ++ip, ++tries) {
    if (tries > 200 || (ip & 0xff) == 0xff) {
      return Status::Error("no free loopback address with ports 7400-7402 after " +
                           Ipv4{first_ip_}.ToString());
    }
    if ((ip & 0xff) == 0) continue;
    if (PortFree(Ipv4{ip}, 7400) && PortFree(Ipv4{ip}, 7401) && PortFree(Ipv4{ip}, 7402)) break;
  }
  nodes_.push_back(WorkspaceNode{"node" + std::to_string(next_index_++), Ipv4{ip}.ToString()});
  WorkspaceNode* node = &nodes_.back();
  if (Status started = Start(*node, extra_flags); !started.ok()) return started;
  return node;
}

Status Workspace::Start(WorkspaceNode& node, const std::vector<std::string>& extra_flags) {
  if (IsRunning(node)) return Status::Error(node.name + " is already running");
  std::error_code ec;
  fs::create_directories(node.DataDir(path_), ec);
  fs::create_directories(node.SyncDir(path_), ec);
  const std::string log = node.LogPath(path_);
  std::vector<std::string> args = {"/proc/self/exe", "agent", "--name", node.name, "--bind",
                                   node.ip, "--data-dir", node.DataDir(path_), "--broadcast-port",
                                   std::to_string(broadcast_port_),
                                   // Quick to form, then quiet: N agents on one
                                   // machine hear N-1 beacons each per interval.
                                   "--formation-beacon-interval", "250ms", "--beacon-interval",
                                   "1s", "--sync-dir", node.SyncDir(path_)};
  // The agents check the API's tokens (the file, never a token, is in their command line).
  if (fs::exists(ApiTokenFile())) {
    args.insert(args.end(), {"--api-token-file", ApiTokenFile()});
  }
  // Their cluster traffic is TLS with the workspace's key.
  if (fs::exists(ClusterKeyFile())) {
    args.insert(args.end(), {"--cluster-key-file", ClusterKeyFile()});
  }
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  // The child reports a failed exec through a close-on-exec pipe: EOF means it became the agent.
  int handshake[2];
  if (::pipe2(handshake, O_CLOEXEC) != 0) return Status::Error("cannot start an agent: pipe");
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(handshake[0]);
    ::close(handshake[1]);
    return Status::Error("cannot start an agent: fork failed");
  }
  if (pid == 0) {
    // The daemon: its own session, output to its log, nothing inherited from the terminal.
    ::close(handshake[0]);
    ::setsid();
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out >= 0 && in >= 0) {
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(self.c_str(), argv.data());
    }
    const int error = errno;
    (void)!::write(handshake[1], &error, sizeof error);
    _exit(127);
  }
  ::close(handshake[1]);
  int exec_errno = 0;
  ssize_t got;
  do {
    got = ::read(handshake[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  ::close(handshake[0]);
  if (got > 0) {
    ::waitpid(pid, nullptr, 0);
    return Status::Error("cannot start the agent " + self + ": " + std::strerror(exec_errno));
  }
  node.pid = pid;
  node.removed = false;
  // Record the pid before anything else can go wrong.
  if (Status saved = Save(); !saved.ok()) return saved;
  std::ofstream(fs::path(node.DataDir(path_)) / "agent.pid") << pid << "\n";
  return Status::Ok();
}

Status Workspace::Stop(WorkspaceNode& node, bool kill, int wait_ms) {
  if (!IsRunning(node)) return Status::Ok();
  ::kill(node.pid, kill ? SIGKILL : SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (IsRunning(node)) {
    ::waitpid(node.pid, nullptr, WNOHANG);  // reap it if it is our child
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::Error(node.name + " (pid " + std::to_string(node.pid) +
                           ") did not stop in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Ok();
}

std::vector<pid_t> Workspace::StrayAgents() const {
  std::vector<pid_t> found;
  const std::string marker = "--data-dir " + (fs::path(path_) / "nodes").string() + "/";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    const std::string command = CommandLine(pid);
    if (command.find(" agent ") != std::string::npos && command.find(marker) != std::string::npos) {
      found.push_back(pid);
    }
  }
  return found;
}

std::vector<std::string> TailLines(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  return {last.begin(), last.end()};
}

}  // namespace synod::cli
