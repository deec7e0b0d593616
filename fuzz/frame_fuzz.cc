// Any byte stream on the peer port: the frame decoder and the message parser never crash.
#include <cstdint>
#include <string_view>

#include "net/frame_codec.h"
#include "peer/peer_link.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  synod::FrameDecoder decoder(synod::kMaxPeerFrameBytes);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parse = [](std::string_view frame) {
    synod::wire::PeerMessage message;
    (void)message.ParseFromArray(frame.data(), static_cast<int>(frame.size()));
    return true;
  };
  // Feed in uneven pieces, as a stream arrives.
  for (size_t at = 0, piece = 1; at < input.size(); at += piece, piece = piece % 7 + 1) {
    if (!decoder.Feed(input.substr(at, piece), parse).ok()) break;
  }
  return 0;
}
