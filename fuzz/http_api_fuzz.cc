// Arbitrary bytes on the HTTP API port of a running node (fuzz/fuzz_node.h): the request parser,
// the router and every real route behind it (KV, timers, ranks, commands, sync, events, the
// dashboard's files). The node must neither crash nor trip a sanitizer; it answers or closes.
//
// Each input is sent on a fresh connection as it is, then the connection is half-closed and the
// answers read until the node closes it (or 1 s passes: a stream or a long poll stays open).
// Seeds and dictionary: fuzz/corpus/http_api_fuzz, fuzz/http_api.dict.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_node.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  synod::fuzz::StartFuzzNode();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const synod::fuzz::FuzzNode& node = synod::fuzz::StartFuzzNode();
  const int fd = synod::fuzz::ConnectAsStranger(node.api_port);
  if (fd < 0) return 0;
  if (synod::fuzz::SendAll(fd, std::string_view(reinterpret_cast<const char*>(data), size))) {
    ::shutdown(fd, SHUT_WR);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    char buffer[16 * 1024];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd wait{.fd = fd, .events = POLLIN, .revents = 0};
      if (::poll(&wait, 1, 100) < 0) break;
      if (wait.revents == 0) continue;
      if (::recv(fd, buffer, sizeof buffer, 0) <= 0) break;
    }
  }
  ::close(fd);
  return 0;
}
