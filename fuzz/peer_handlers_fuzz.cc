// Arbitrary peer messages through the real handlers of a running node (fuzz/fuzz_node.h): every
// request kind a stranger can send on the peer port (proposals, joins, leaves, feeds, state
// chunk and block requests, heartbeats, command deliveries and acknowledgements, ...). The node
// must neither crash nor trip a sanitizer, whatever it is sent and in whatever order.
//
// Input: a sequence of messages, each a 2-byte little-endian length and that many bytes of a
// serialized wire::PeerMessage (or anything else: it goes out framed, as sent). After them the
// target sends a time request and waits for its answer, so that every message before it has
// been handled when the input ends. Seeds: fuzz/peer_seeds.cc.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_node.h"
#include "net/frame_codec.h"
#include "peer/peer_link.h"

namespace {

constexpr uint64_t kSentinelSequence = 0x5e17e15e17e1ULL;
constexpr size_t kMaxMessagesPerInput = 64;

// Reads the node's answers until the answer to the sentinel, the end of the link, or 2 s.
void DrainUntilSentinel(int fd) {
  synod::FrameDecoder decoder(synod::kMaxPeerFrameBytes);
  char buffer[64 * 1024];
  bool sentinel = false;
  const auto look = [&sentinel](std::string_view frame) {
    synod::wire::PeerMessage message;
    sentinel = message.ParseFromArray(frame.data(), static_cast<int>(frame.size())) &&
               message.has_time_response() &&
               message.time_response().sequence() == kSentinelSequence;
    return !sentinel;
  };
  while (!sentinel) {
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got <= 0) return;  // closed, refused or timed out (SO_RCVTIMEO)
    if (!decoder.Feed(std::string_view(buffer, static_cast<size_t>(got)), look).ok()) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  synod::fuzz::StartFuzzNode();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const synod::fuzz::FuzzNode& node = synod::fuzz::StartFuzzNode();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string stream;
  for (size_t count = 0; input.size() >= 2 && count < kMaxMessagesPerInput; ++count) {
    const size_t length = static_cast<uint8_t>(input[0]) | static_cast<uint8_t>(input[1]) << 8;
    input.remove_prefix(2);
    const std::string_view payload = input.substr(0, length);
    input.remove_prefix(payload.size());
    stream += synod::EncodeFrame(payload);
  }
  synod::wire::PeerMessage sentinel;
  sentinel.mutable_time_request()->set_sequence(kSentinelSequence);
  stream += synod::EncodeFrame(sentinel.SerializeAsString());

  const int fd = synod::fuzz::ConnectAsStranger(node.peer_port);
  if (fd < 0) return 0;  // the node refuses more links from this address for now
  if (synod::fuzz::SendAll(fd, stream)) DrainUntilSentinel(fd);
  ::close(fd);
  return 0;
}
