#include "peer/peer_link.h"

#include <vector>

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
        std::vector<std::string> frames;
        if (Status status = self->decoder_.Feed(bytes, frames); !status.ok()) {
          self->Fail("bad frame: " + status.message());
          return;
        }
        for (const std::string& frame : frames) {
          wire::PeerMessage message;
          if (!message.ParseFromString(frame)) {
            self->Fail("undecodable peer message of " + std::to_string(frame.size()) + " bytes");
            return;
          }
          if (self->on_message_) self->on_message_(message, received);
          if (self->connection_->closed()) return;
        }
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
  const size_t backlog = connection_->queued_bytes() + queued_.size();
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
  if (queued_.empty()) {
    loop_.Defer([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->Flush();
    });
  }
  std::string frame = Frame(message);
  if (!Room(frame.size())) return;
  if (frame.size() >= kDirectWriteBytes) {
    // A large message (a file block) is written as it is, after what is queued, rather than
    // copied onto the queue.
    Flush();
    if (!connection_->closed()) connection_->Write(std::move(frame));
    return;
  }
  if (queued_.empty()) {
    queued_ = std::move(frame);
  } else {
    queued_ += frame;
  }
}

void PeerLink::SendNow(const wire::PeerMessage& message) {
  Flush();
  std::string frame = Frame(message);
  if (Room(frame.size())) connection_->Write(std::move(frame));
}

std::string PeerLink::Frame(const wire::PeerMessage& message) {
  const size_t size = message.ByteSizeLong();
  return EncodeFrameInPlace(size, [&](char* payload) {
    message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(payload));
  });
}

void PeerLink::Flush() {
  if (queued_.empty()) return;
  std::string bytes;
  bytes.swap(queued_);
  if (!connection_->closed()) connection_->Write(std::move(bytes));
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
