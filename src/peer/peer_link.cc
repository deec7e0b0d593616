#include "peer/peer_link.h"

#include <cstring>
#include <vector>

#include <google/protobuf/io/coded_stream.h>

#include "net/uv_util.h"

namespace synod {

PeerLink::PeerLink(EventLoop& loop, std::shared_ptr<TcpConnection> connection, const Clock& clock)
    : loop_(loop), connection_(std::move(connection)), clock_(clock) {}

void PeerLink::Start(MessageCallback on_message, ClosedCallback on_closed) {
  on_message_ = std::move(on_message);
  on_closed_ = std::move(on_closed);
  std::weak_ptr<PeerLink> weak = weak_from_this();
  connection_->Start(
      [weak](std::string_view bytes) {
        auto self = weak.lock();
        if (!self) return;
        const int64_t received = self->clock_.WallUtcNanos();
        const Status status = self->decoder_.Feed(bytes, [&self, received](std::string_view frame) {
          wire::PeerMessage message;
          if (!message.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
            self->Fail("undecodable peer message of " + std::to_string(frame.size()) + " bytes");
            return false;
          }
          if (self->on_message_) self->on_message_(message, received);
          return !self->connection_->closed();
        });
        if (!status.ok()) self->Fail("bad frame: " + status.message());
      },
      [weak](int status) {
        if (auto self = weak.lock()) {
          self->Fail(status == kTlsFailed ? self->connection_->failure_reason()
                     : status == 0        ? "closed by peer"
                                          : UvError(status));
        }
      });
}

bool PeerLink::Room(size_t more) {
  if (overflowing_) return false;
  const size_t backlog = connection_->queued_bytes() + queued_bytes_;
  if (backlog + more <= kMaxPeerBacklogBytes) return true;
  overflowing_ = true;
  loop_.Defer([weak = weak_from_this(), backlog] {
    if (auto self = weak.lock()) {
      self->Fail("the peer reads too slowly: " + std::to_string(backlog) +
                 " bytes were waiting to be sent");
    }
  });
  return false;
}

void PeerLink::Send(const wire::PeerMessage& message) {
  if (connection_->closed()) return;
  std::string frame = Frame(message);
  if (!Room(frame.size())) return;
  Queue(std::move(frame));
}

void PeerLink::Send(wire::PeerMessage&& message) {
  if (!message.has_block_response() || message.block_response().data().size() < kOwnPieceBytes) {
    Send(static_cast<const wire::PeerMessage&>(message));
    return;
  }
  if (connection_->closed()) return;
  // A file block is not copied into the frame: the message goes without it, then the block in
  // a second block_response holding only its data, which a protobuf parser merges into the
  // first (embedded messages met twice are merged): the same message on the wire.
  std::string data = std::move(*message.mutable_block_response()->mutable_data());
  message.mutable_block_response()->clear_data();
  std::string wrapper;
  const size_t inner =
      LengthDelimitedHeader(wire::BlockResponse::kDataFieldNumber, data.size(), wrapper) +
      data.size();
  std::string outer;
  LengthDelimitedHeader(wire::PeerMessage::kBlockResponseFieldNumber, inner, outer);
  outer += wrapper;
  const size_t rest = message.ByteSizeLong();
  const size_t size = rest + outer.size() + data.size();
  if (!Room(size + 4)) return;
  std::string head = EncodeFrameInPlace(rest + outer.size(), [&](char* payload) {
    payload = reinterpret_cast<char*>(
        message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(payload)));
    std::memcpy(payload, outer.data(), outer.size());
  });
  // The frame's length counts the data that follows it.
  for (int i = 0; i < 4; ++i) head[i] = static_cast<char>((size >> (24 - 8 * i)) & 0xff);
  Queue(std::move(head));
  Queue(std::move(data));
}

size_t PeerLink::LengthDelimitedHeader(int field, size_t length, std::string& out) {
  using google::protobuf::io::CodedOutputStream;
  uint8_t bytes[2 * 10];
  uint8_t* end = CodedOutputStream::WriteVarint32ToArray(
      static_cast<uint32_t>(field) << 3 | 2 /* length-delimited */, bytes);
  end = CodedOutputStream::WriteVarint64ToArray(length, end);
  out.append(reinterpret_cast<char*>(bytes), static_cast<size_t>(end - bytes));
  return static_cast<size_t>(end - bytes);
}

void PeerLink::SendNow(const wire::PeerMessage& message) {
  std::string frame = Frame(message);
  if (!Room(frame.size())) return;
  Queue(std::move(frame));
  Flush();
}

void PeerLink::Queue(std::string frame) {
  if (queued_.empty()) {
    loop_.Defer([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->Flush();
    });
  }
  queued_bytes_ += frame.size();
  // Small messages are joined into one piece; a large one (a file block) is a piece of its own
  // rather than copied.
  if (!queued_.empty() && queued_.back().size() < kOwnPieceBytes && frame.size() < kOwnPieceBytes) {
    queued_.back() += frame;
  } else {
    queued_.push_back(std::move(frame));
  }
}

std::string PeerLink::Frame(const wire::PeerMessage& message) {
  const size_t size = message.ByteSizeLong();
  return EncodeFrameInPlace(size, [&](char* payload) {
    message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(payload));
  });
}

void PeerLink::Flush() {
  if (queued_.empty()) return;
  std::vector<std::string> pieces;
  pieces.swap(queued_);
  queued_bytes_ = 0;
  if (!connection_->closed()) connection_->Write(std::move(pieces));
}

void PeerLink::Fail(const std::string& why) {
  if (connection_->closed() && !on_closed_) return;
  auto callback = std::move(on_closed_);
  on_closed_ = nullptr;
  Close();
  if (callback) callback(why);
}

void PeerLink::Close() {
  // The callbacks are released with the link, not here: Close() may be called from inside
  // one of them. The connection's closed flag stops every further dispatch.
  connection_->Close();
}

}  // namespace synod
