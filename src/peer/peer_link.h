// PeerLink: one connection of the native peer protocol, carrying framed PeerMessages.
//
// Frames are decoded as hostile input: an oversized or unparsable frame closes the link with a
// reason; the node goes on. Every message is delivered with the UTC time at which its bytes were
// read, so that time probes can use it as a receive timestamp. A peer that leaves more than
// kMaxPeerBacklogBytes unread fails the link (on_closed runs in a later turn of the loop, never
// from inside Send). Loop thread only; the link keeps itself alive while its connection is open.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/event_loop.h"
#include "net/frame_codec.h"
#include "net/tcp.h"
#include "proto/peer.pb.h"

namespace synod {

inline constexpr uint32_t kMaxPeerFrameBytes = 16 * 1024 * 1024;
// Bytes a link may hold for a peer that does not read them; beyond, the link fails (and is made
// again later) rather than grow without bound.
inline constexpr size_t kMaxPeerBacklogBytes = 4 * size_t{kMaxPeerFrameBytes};

class PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  using MessageCallback = std::function<void(const wire::PeerMessage&, int64_t received_utc_nanos)>;
  using ClosedCallback = std::function<void(const std::string& why)>;

  PeerLink(EventLoop& loop, std::shared_ptr<TcpConnection> connection, const Clock& clock);

  void Start(MessageCallback on_message, ClosedCallback on_closed);
  // Queues the message; everything queued in one turn of the loop leaves in one write at the
  // end of it (see EventLoop::Defer), so that a peer sent several messages wakes up once, and
  // the kernel takes many file blocks in one system call.
  void Send(const wire::PeerMessage& message);
  // The same; a file block in it goes to the kernel from where it is, not copied.
  void Send(wire::PeerMessage&& message);
  // Writes at once, with what is queued: for messages that carry the time they were sent.
  void SendNow(const wire::PeerMessage& message);
  // Closes without calling on_closed.
  void Close();
  Ipv4 peer_ip() const { return connection_->peer_ip(); }
  // Whether the link ended because TLS failed (no key, another key, a forged record).
  bool refused_by_tls() const { return !connection_->failure_reason().empty(); }

 private:
  void Fail(const std::string& why);
  // False, and the link failing, if `more` bytes would take the backlog past its bound.
  bool Room(size_t more);
  // Adds to what leaves at the end of this turn of the loop.
  void Queue(std::string frame);
  void Flush();
  static std::string Frame(const wire::PeerMessage& message);
  // Appends the tag and length that precede `length` bytes of `field` in protobuf's encoding;
  // returns how many bytes that took.
  static size_t LengthDelimitedHeader(int field, size_t length, std::string& out);
  static constexpr size_t kOwnPieceBytes = 64 * 1024;

  EventLoop& loop_;
  std::shared_ptr<TcpConnection> connection_;
  std::vector<std::string> queued_;  // written at the end of the loop's turn
  size_t queued_bytes_ = 0;
  const Clock& clock_;
  FrameDecoder decoder_{kMaxPeerFrameBytes};
  MessageCallback on_message_;
  ClosedCallback on_closed_;
  bool overflowing_ = false;
};

}  // namespace synod
