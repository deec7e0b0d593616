// Length-prefixed framing for the native peer protocol.
//
// A frame is a 4-byte big-endian payload length followed by the payload. FrameDecoder takes bytes
// as they arrive from a stream and yields whole payloads; a length above the limit is an error
// that poisons the decoder (the connection must be closed), never an allocation.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace synod {

std::string EncodeFrame(std::string_view payload);
// The frame of `size` payload bytes that `write(char* payload)` fills in place (one copy less
// than serializing first and framing after).
template <typename Write>
std::string EncodeFrameInPlace(size_t size, Write write) {
  std::string frame(4 + size, '\0');
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((size >> (24 - 8 * i)) & 0xff);
  write(frame.data() + 4);
  return frame;
}

class FrameDecoder {
 public:
  // Takes a payload, valid during the call only; false stops there (what follows stays buffered
  // for the next Feed).
  using FrameCallback = std::function<bool(std::string_view payload)>;

  explicit FrameDecoder(uint32_t max_payload) : max_payload_(max_payload) {}

  // Takes bytes and passes every complete payload to `on_frame`, in order, without copying the
  // payload where it can. After an error, every call fails. `on_frame` must not call Feed.
  Status Feed(std::string_view bytes, const FrameCallback& on_frame);

 private:
  // Passes the whole frames at the start of `data` on; the bytes they took, or error_ set.
  size_t Decode(std::string_view data, const FrameCallback& on_frame);

  uint32_t max_payload_;
  std::string buffer_;
  size_t consumed_ = 0;  // bytes of buffer_ already handed out; compacted now and then
  Status error_;
};

}  // namespace synod
