#include "fuzz/fuzz_node.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "agent/agent.h"

namespace synod::fuzz {
namespace {

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "fuzz node: %s\n", why.c_str());
  std::abort();
}

void WriteProcFile(const char* path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) Die(std::string("cannot write ") + path);
}

// A network namespace with nothing but a loopback interface, which is brought up.
void EnterPrivateNetwork() {
  if (::unshare(CLONE_NEWNET) != 0) {
    // Not root: a user namespace of our own gives us the right to make one.
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
      Die(std::string("cannot make a private network namespace (run as root, or allow "
                      "unprivileged user namespaces): ") +
          std::strerror(errno));
    }
    WriteProcFile("/proc/self/setgroups", "deny");
    WriteProcFile("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    WriteProcFile("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  }
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (fd < 0 || ::ioctl(fd, SIOCGIFFLAGS, &request) != 0) Die("cannot read the flags of lo");
  request.ifr_flags |= IFF_UP;
  if (::ioctl(fd, SIOCSIFFLAGS, &request) != 0) Die("cannot bring lo up");
  ::close(fd);
}

std::string WorkDir() {
  if (const char* dir = std::getenv("SYNOD_FUZZ_WORKDIR"); dir != nullptr && *dir != '\0') {
    std::filesystem::create_directories(dir);
    return dir;
  }
  char pattern[] = "/tmp/synod-fuzz-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) Die("mkdtemp failed");
  return pattern;
}

// True once the node answers a write: it leads, and commits.
bool Writable(uint16_t api_port) {
  const int fd = ConnectAsStranger(api_port);
  if (fd < 0) return false;
  SendAll(fd,
          "PUT /v1/kv/fuzz-ready HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 1\r\n"
          "Connection: close\r\n\r\n1");
  char head[16] = {};
  const ssize_t got = ::recv(fd, head, sizeof head - 1, MSG_WAITALL);
  ::close(fd);
  return got > 12 && std::string_view(head).substr(9, 3) == "200";
}

// At exit the node is not stopped: the process ends at once with libFuzzer's status. Stopping
// it inside exit() crashed in libraft's close path in 2 of 7 runs (a wild read on the loop
// thread), while the same agent under the same load, stopped by SIGTERM outside a fuzzer, shut
// down cleanly in 32 of 32: the fuzzing process's own exit, not the node, is what races.
void EndWithoutStopping(int status, void*) {
  std::fflush(nullptr);
  ::_exit(status);
}

}  // namespace

int ConnectAsStranger(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in source{};
  source.sin_family = AF_INET;
  source.sin_addr.s_addr = htonl(0x7f000002);
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  target.sin_port = htons(port);
  // A node that stops reading must not hang the fuzzer: every send and receive gives up.
  timeval limit{.tv_sec = 2, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(sent));
  }
  return true;
}

const FuzzNode& StartFuzzNode() {
  static const FuzzNode* node = [] {
    EnterPrivateNetwork();
    // As synod's main does: a write to a client that left is an error, not the end.
    std::signal(SIGPIPE, SIG_IGN);
    if (std::getenv("SYNOD_FUZZ_LOG") == nullptr) spdlog::set_level(spdlog::level::off);
    const std::filesystem::path work = WorkDir();
    AgentConfig config;
    config.name = "fuzz";
    config.bind = Ipv4::Parse("127.0.0.1").value();
    config.data_dir = (work / "data").string();
    config.sync_dir = (work / "sync").string();
    config.bootstrap = true;
    std::filesystem::create_directories(config.data_dir);
    std::filesystem::create_directories(config.sync_dir);
    std::ofstream(work / "sync" / "hello.txt") << "a file the node serves blocks of\n";
    if (!std::filesystem::exists(work / "data" / "node_id")) {
      std::ofstream(work / "data" / "node_id") << kFuzzNodeId << "\n";
    }
    auto* agent = new Agent(config);  // runs until the process exits
    if (Status started = agent->Start(); !started.ok()) Die(started.message());
    std::thread([agent] { agent->Run(); }).detach();
    auto* result = new FuzzNode{config.api_port, config.peer_port};
    for (int attempt = 0; !Writable(result->api_port); ++attempt) {
      if (attempt == 300) Die("the node did not become a writable leader within 30 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::on_exit(EndWithoutStopping, nullptr);
    std::fprintf(stderr, "fuzz node: leader on 127.0.0.1 (api %u, peer %u), files in %s\n",
                 result->api_port, result->peer_port, work.c_str());
    return result;
  }();
  return *node;
}

}  // namespace synod::fuzz
