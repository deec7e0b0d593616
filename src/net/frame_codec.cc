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

Status FrameDecoder::Feed(std::string_view bytes, std::vector<std::string>& out) {
  if (!error_.ok()) return error_;
  // Handed-out bytes are dropped once they are most of the buffer, not after every read: a
  // large frame arriving in many reads is then not moved again and again.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
  size_t at = consumed_;
  while (buffer_.size() - at >= 4) {
    uint32_t size = 0;
    for (int i = 0; i < 4; ++i) size = (size << 8) | static_cast<uint8_t>(buffer_[at + i]);
    if (size > max_payload_) {
      error_ = Status::Error("frame of " + std::to_string(size) + " bytes exceeds the limit of " +
                             std::to_string(max_payload_));
      buffer_.clear();
      consumed_ = 0;
      return error_;
    }
    if (buffer_.size() - at - 4 < size) break;
    out.emplace_back(buffer_, at + 4, size);
    at += 4 + size;
  }
  if (at == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  } else {
    consumed_ = at;
  }
  return Status::Ok();
}

}  // namespace synod
