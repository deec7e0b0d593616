#include "consensus/raft_tunnel.h"

extern "C" {
#include <raft.h>
}

#include <sys/socket.h>
#include <unistd.h>

#include <cctype>

#include "net/uv_util.h"

namespace synod {
namespace {

constexpr size_t kHighWater = 4 * 1024 * 1024;
constexpr size_t kLowWater = 1024 * 1024;
constexpr std::chrono::milliseconds kDrainPoll{5};
// libraft's handshake: three little-endian 64-bit words (protocol 1, server id, the size of the
// address field), then the address, NUL-terminated and zero-padded to a multiple of 8 bytes.
constexpr size_t kHandshakeHeader = 24;
constexpr uint64_t kMaxAddressField = 512;

uint64_t LittleEndian64(const std::string& bytes, size_t at) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

}  // namespace

RaftTunnel::RaftTunnel(EventLoop& loop, std::shared_ptr<TcpConnection> connection,
                       Callbacks callbacks)
    : loop_(loop),
      connection_(std::move(connection)),
      callbacks_(std::move(callbacks)),
      peer_ip_(connection_->peer_ip()),
      drain_poll_(loop),
      deadline_(loop) {}

RaftTunnel::~RaftTunnel() { CloseAll(); }

std::shared_ptr<RaftTunnel> RaftTunnel::Connect(EventLoop& loop,
                                                std::shared_ptr<TcpConnection> connection,
                                                const TlsConfig& tls, std::string handshake,
                                                std::chrono::milliseconds handshake_timeout,
                                                Callbacks callbacks) {
  std::shared_ptr<RaftTunnel> tunnel(
      new RaftTunnel(loop, std::move(connection), std::move(callbacks)));
  tunnel->handshake_ = std::move(handshake);
  tunnel->Begin(tls, /*client=*/true, handshake_timeout);
  return tunnel;
}

std::shared_ptr<RaftTunnel> RaftTunnel::Accept(EventLoop& loop,
                                               std::shared_ptr<TcpConnection> connection,
                                               const TlsConfig& tls, Callbacks callbacks) {
  std::shared_ptr<RaftTunnel> tunnel(
      new RaftTunnel(loop, std::move(connection), std::move(callbacks)));
  tunnel->Begin(tls, /*client=*/false, std::chrono::seconds(5));
  return tunnel;
}

void RaftTunnel::Begin(const TlsConfig& tls, bool client, std::chrono::milliseconds timeout) {
  client_ = client;
  self_ = shared_from_this();
  std::weak_ptr<RaftTunnel> weak = weak_from_this();
  // An authenticated peer that never sends libraft's handshake must not hold a slot either.
  deadline_.Start(timeout, std::chrono::milliseconds(0), [weak] {
    if (auto self = weak.lock(); self && !self->ready_) {
      self->Fail("no raft handshake within the time allowed", false);
    }
  });
  connection_->SecureWith(
      tls.NewSession(client),
      [weak] {
        auto self = weak.lock();
        if (self && self->client_) self->BecomeReady(0, "");
      },
      timeout);
  connection_->Start(
      [weak](std::string_view bytes) {
        if (auto self = weak.lock()) self->OnPlain(bytes);
      },
      [weak](int status) {
        auto self = weak.lock();
        if (!self) return;
        if (status == kTlsFailed) {
          self->Fail(self->connection_->failure_reason(), /*tls_refused=*/true);
        } else {
          self->Fail(status == 0 ? "closed by the peer" : UvError(status), false);
        }
      });
  // Held by the session until TLS is established; libraft's server reads it first.
  if (client_) connection_->Write(handshake_);
}

void RaftTunnel::OnPlain(std::string_view bytes) {
  if (ready_) return ToRaft(bytes);
  if (client_) return Fail("the peer spoke before the TLS handshake was done", false);
  handshake_.append(bytes);
  ParseHandshake();
}

bool RaftTunnel::ParseHandshake() {
  if (handshake_.size() < kHandshakeHeader) return false;
  const uint64_t protocol = LittleEndian64(handshake_, 0);
  const uint64_t id = LittleEndian64(handshake_, 8);
  const uint64_t field = LittleEndian64(handshake_, 16);
  if (protocol != 1) {
    Fail("unknown raft handshake protocol " + std::to_string(protocol), false);
    return false;
  }
  if (id == 0 || field == 0 || field > kMaxAddressField || field % 8 != 0) {
    Fail("bad raft handshake (server id " + std::to_string(id) + ", address field of " +
             std::to_string(field) + " bytes)",
         false);
    return false;
  }
  if (handshake_.size() < kHandshakeHeader + field) return false;
  const std::string field_bytes = handshake_.substr(kHandshakeHeader, field);
  const size_t end = field_bytes.find('\0');
  std::string address = field_bytes.substr(0, end);
  bool printable = end != std::string::npos && !address.empty();
  for (char c : address) printable = printable && std::isgraph(static_cast<unsigned char>(c));
  if (!printable) {
    Fail("bad raft handshake: the address is not text", false);
    return false;
  }
  std::string rest = handshake_.substr(kHandshakeHeader + field);
  handshake_.clear();
  BecomeReady(id, address);
  if (!rest.empty() && ready_) ToRaft(rest);
  return true;
}

void RaftTunnel::BecomeReady(uint64_t peer_id, const std::string& peer_address) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Fail("cannot make a socket pair: " + UvError(uv_translate_sys_error(errno)), false);
  }
  auto* raft_end = static_cast<uv_pipe_t*>(raft_malloc(sizeof(uv_pipe_t)));
  ours_ = new uv_pipe_t;
  if (raft_end == nullptr) {
    close(fds[0]);
    close(fds[1]);
    delete ours_;
    ours_ = nullptr;
    return Fail("out of memory", false);
  }
  uv_pipe_init(loop_.raw(), raft_end, 0);
  uv_pipe_init(loop_.raw(), ours_, 0);
  ours_->data = this;
  const bool raft_end_open = uv_pipe_open(raft_end, fds[1]) == 0;
  const bool ours_open = raft_end_open && uv_pipe_open(ours_, fds[0]) == 0;
  if (!ours_open) {
    // A descriptor a handle did not take is closed here; the handles close theirs.
    if (!raft_end_open) close(fds[1]);
    close(fds[0]);
    uv_close(reinterpret_cast<uv_handle_t*>(raft_end),
             [](uv_handle_t* handle) { raft_free(handle); });
    return Fail("cannot open a socket pair", false);
  }
  ready_ = true;
  deadline_.Stop();
  pipe_reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(ours_), LendReadBuffer, &RaftTunnel::OnPipeRead);
  auto on_ready = std::move(callbacks_.on_ready);
  callbacks_ = {};
  on_ready(reinterpret_cast<uv_stream_t*>(raft_end), peer_id, peer_address);
}

void RaftTunnel::ToRaft(std::string_view bytes) {
  if (ours_ == nullptr) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(ours_);
  const int rc = CopyToStream(stream, bytes, [tunnel = weak_from_this()](int status) {
    auto self = tunnel.lock();
    if (!self || self->ours_ == nullptr) return;
    if (status != 0) return self->CloseAll();
    if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(self->ours_)) < kLowWater) {
      self->connection_->ResumeReading();
    }
  });
  if (rc != 0) return CloseAll();
  // libraft is not keeping up: stop taking from the network until it does.
  if (uv_stream_get_write_queue_size(stream) > kHighWater) connection_->PauseReading();
}

void RaftTunnel::FromRaft(std::string_view bytes) {
  connection_->Write(std::string(bytes));
  if (connection_->queued_bytes() <= kHighWater || !pipe_reading_) return;
  // The peer is not keeping up: stop taking from libraft (its sends wait) until it does.
  pipe_reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(ours_));
  std::weak_ptr<RaftTunnel> weak = weak_from_this();
  drain_poll_.Start(kDrainPoll, kDrainPoll, [weak] {
    auto self = weak.lock();
    if (!self || self->ours_ == nullptr || self->connection_->queued_bytes() > kLowWater) return;
    self->drain_poll_.Stop();
    self->pipe_reading_ = true;
    uv_read_start(reinterpret_cast<uv_stream_t*>(self->ours_), LendReadBuffer,
                  &RaftTunnel::OnPipeRead);
  });
}

void RaftTunnel::OnPipeRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<RaftTunnel*>(stream->data);
  if (self == nullptr) return;
  if (nread > 0) {
    auto keep = self->shared_from_this();
    self->FromRaft(std::string_view(buf->base, static_cast<size_t>(nread)));
  } else if (nread < 0) {
    auto keep = self->shared_from_this();
    self->CloseAll();  // libraft closed its end
  }
}

void RaftTunnel::Fail(const std::string& why, bool tls_refused) {
  auto keep = shared_from_this();
  auto on_failed = ready_ ? nullptr : std::move(callbacks_.on_failed);
  callbacks_ = {};
  CloseAll();
  if (on_failed) on_failed(why, tls_refused);
}

void RaftTunnel::Abort() {
  callbacks_ = {};
  CloseAll();
}

void RaftTunnel::CloseAll() {
  if (ended_) return;
  ended_ = true;
  drain_poll_.Stop();
  deadline_.Stop();
  connection_->Close();
  if (ours_ != nullptr) {
    ours_->data = nullptr;
    CloseAndDelete(ours_);
    ours_ = nullptr;
  }
  self_.reset();  // may destroy *this: nothing after
}

}  // namespace synod
