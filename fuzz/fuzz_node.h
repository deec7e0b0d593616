// FuzzNode: a real Synod node inside the fuzzing process, for targets that reach its handlers.
//
// The first call to StartFuzzNode() moves the process into a network namespace of its own (so
// that nothing a fuzz input makes the node do, a webhook to any address or a connection to any
// peer, can leave the machine), brings its loopback up, and starts an agent there that
// bootstraps a one-voter cluster on 127.0.0.1 with a synced folder: it is the leader, so every
// handler is live. The agent runs on its own thread until the process exits; inputs reach it
// only through its sockets, as a stranger's would. Its node id is fixed (kFuzzNodeId) so that
// inputs can name it. Call StartFuzzNode() from LLVMFuzzerInitialize, before any other thread
// exists; it aborts with a message if the node cannot start.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace synod::fuzz {

inline constexpr char kFuzzNodeId[] = "f022f022f022f022f022f022f022f022";

struct FuzzNode {
  uint16_t api_port = 0;
  uint16_t peer_port = 0;
};

const FuzzNode& StartFuzzNode();

// A blocking TCP connection to 127.0.0.1:`port` from 127.0.0.2 (an address that is not the
// node's); -1 if it fails.
int ConnectAsStranger(uint16_t port);

// Sends all of `bytes`; false if the connection failed first.
bool SendAll(int fd, std::string_view bytes);

}  // namespace synod::fuzz
