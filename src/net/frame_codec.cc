#include "net/frame_codec.h"

namespace synod {

std::string EncodeFrame(std::string_view payload) {
  const auto size = static_cast<uint32_t>(payload.size());
  std::string frame;
  frame.reserve(4 + payload.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    frame.push_back(static_cast<char>((size >> shift) & 0xff));
  frame.append(payload);
  return frame;
}

Status FrameDecoder::Feed(std::string_view bytes, const FrameCallback& on_frame) {
  if (!error_.ok()) return error_;
  if (consumed_ == buffer_.size()) {
    // Nothing held back: the frames wholly in `bytes` are handed out from there.
    buffer_.clear();
    consumed_ = 0;
    const size_t used = Decode(bytes, on_frame);
    if (!error_.ok()) return error_;
    buffer_.assign(bytes.substr(used));
    return Status::Ok();
  }
  // Handed-out bytes are dropped once they are most of the buffer, not after every read: a
  // large frame arriving in many reads is then not moved again and again.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
  consumed_ += Decode(std::string_view(buffer_).substr(consumed_), on_frame);
  if (!error_.ok()) return error_;
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return Status::Ok();
}

size_t FrameDecoder::Decode(std::string_view data, const FrameCallback& on_frame) {
  size_t at = 0;
  while (data.size() - at >= 4) {
    uint32_t size = 0;
    for (int i = 0; i < 4; ++i) size = (size << 8) | static_cast<uint8_t>(data[at + i]);
    if (size > max_payload_) {
      error_ = Status::Error("frame of " + std::to_string(size) + " bytes exceeds the limit of " +
                             std::to_string(max_payload_));
      buffer_.clear();
      consumed_ = 0;
      return 0;
    }
    if (data.size() - at - 4 < size) break;
    const std::string_view payload = data.substr(at + 4, size);
    at += 4 + size;
    if (!on_frame(payload)) break;
  }
  return at;
}

}  // namespace synod
