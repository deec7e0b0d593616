#include "net/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "net/tls.h"
#include "net/uv_util.h"

namespace synod {

void LimitStall(uv_tcp_t* socket, std::chrono::milliseconds stall) {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(socket), &fd) != 0) return;
  const unsigned user_timeout = static_cast<unsigned>(stall.count());
  const int on = 1;
  const int idle_seconds = 1;
  const int interval_seconds = 1;
  const int probes = 3;
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_seconds, sizeof idle_seconds);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_seconds, sizeof interval_seconds);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
  // A heartbeat lost is sent again after one retransmission timeout each time, not after
  // exponentially longer ones, so that loss does not turn into elections.
  setsockopt(fd, IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, &on, sizeof on);
  uv_tcp_nodelay(socket, 1);
}

TcpConnection::TcpConnection(EventLoop& loop) : socket_(new uv_tcp_t) {
  uv_tcp_init(loop.raw(), socket_);
  socket_->data = this;
}

TcpConnection::~TcpConnection() {
  StopHandshakeTimer();
  if (!closed_) {
    socket_->data = nullptr;
    CloseAndDelete(socket_);
  }
}

void TcpConnection::Adopt() {
  self_ = shared_from_this();
  uv_tcp_nodelay(socket_, 1);
  sockaddr_in peer{};
  int length = sizeof peer;
  if (uv_tcp_getpeername(socket_, reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
    peer_ip_ = Ipv4::FromSockaddr(peer);
    peer_port_ = ntohs(peer.sin_port);
  }
}

namespace {
struct ConnectAttempt {
  uv_connect_t request{};
  std::shared_ptr<TcpConnection> connection;
  std::unique_ptr<Timer> deadline;
  TcpConnection::ConnectCallback done;
  bool finished = false;
};
}  // namespace

std::shared_ptr<TcpConnection> TcpConnection::Connect(EventLoop& loop, Ipv4 ip, uint16_t port,
                                                      std::chrono::milliseconds timeout,
                                                      ConnectCallback done, Ipv4 source) {
  auto* attempt = new ConnectAttempt;
  attempt->connection.reset(new TcpConnection(loop));
  attempt->done = std::move(done);
  attempt->request.data = attempt;
  std::shared_ptr<TcpConnection> pending = attempt->connection;
  int rc = 0;
  if (source.host_order != 0) {
    sockaddr_in from = source.ToSockaddr(0);
    rc = uv_tcp_bind(pending->socket_, reinterpret_cast<sockaddr*>(&from), 0);
  }
  sockaddr_in target = ip.ToSockaddr(port);
  if (rc == 0) {
    rc = uv_tcp_connect(&attempt->request, pending->socket_, reinterpret_cast<sockaddr*>(&target),
                        [](uv_connect_t* request, int status) {
                          auto* attempt = static_cast<ConnectAttempt*>(request->data);
                          attempt->deadline.reset();
                          auto connection = attempt->connection;
                          // Finished means timed out; closed means the caller cancelled.
                          if (!attempt->finished && !connection->closed_) {
                            attempt->finished = true;
                            if (status == 0) {
                              connection->Adopt();
                            } else {
                              connection->Close();
                              connection = nullptr;
                            }
                            attempt->done(connection, status);
                          }
                          delete attempt;  // libuv is done with the request
                        });
  }
  if (rc != 0) {
    auto callback = std::move(attempt->done);
    delete attempt;
    pending->Close();
    callback(nullptr, rc);
    return pending;
  }
  attempt->deadline = std::make_unique<Timer>(loop);
  attempt->deadline->Start(timeout, std::chrono::milliseconds(0), [attempt] {
    // Closing the socket makes libuv finish the request (UV_ECANCELED); report a timeout.
    attempt->finished = true;
    auto connection = attempt->connection;
    auto callback = std::move(attempt->done);
    attempt->deadline.reset();  // safe inside its own callback: the handle closes asynchronously
    if (connection->closed_) return;  // cancelled by the caller
    connection->Close();
    callback(nullptr, UV_ETIMEDOUT);
  });
  return pending;
}

void TcpConnection::SecureWith(std::unique_ptr<TlsSession> session,
                               std::function<void()> on_established,
                               std::chrono::milliseconds handshake_timeout) {
  tls_ = std::move(session);
  on_established_ = std::move(on_established);
  handshake_timer_ = new uv_timer_t;
  uv_timer_init(socket_->loop, handshake_timer_);
  handshake_timer_->data = this;
  uv_timer_start(
      handshake_timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<TcpConnection*>(timer->data);
        auto keep = self->shared_from_this();
        self->StopHandshakeTimer();
        if (!self->closed_) self->FailTls("no TLS handshake within the time allowed");
      },
      static_cast<uint64_t>(handshake_timeout.count()), 0);
  std::string hello;
  if (Status begun = tls_->Begin(hello); !begun.ok()) {
    failure_reason_ = begun.message();
    return;  // Start() reports it
  }
  if (!hello.empty()) WriteRaw(std::move(hello), nullptr);
}

void TcpConnection::Start(DataCallback on_data, ClosedCallback on_closed) {
  on_data_ = std::move(on_data);
  on_closed_ = std::move(on_closed);
  if (!failure_reason_.empty()) {
    auto keep = shared_from_this();
    FailTls(failure_reason_);
    return;
  }
  ResumeReading();
}

void TcpConnection::FailTls(std::string why) {
  failure_reason_ = std::move(why);
  Fail(kTlsFailed);
}

void TcpConnection::OnReceived(std::string_view bytes) {
  if (!tls_) {
    if (on_data_) on_data_(bytes);
    return;
  }
  const bool was_established = tls_->established();
  std::string plain, reply;
  Status received = tls_->Receive(bytes, plain, reply);
  if (!reply.empty()) WriteRaw(std::move(reply), nullptr);
  if (!received.ok()) return FailTls(received.message());
  if (!was_established && tls_->established()) {
    StopHandshakeTimer();
    // The held plaintext left with `reply`: the writes that gave it are done.
    auto done = std::move(held_writes_done_);
    held_writes_done_.clear();
    for (auto& callback : done) callback(0);
    // Moved out first: the callback may close the connection, which clears the member.
    auto established = std::move(on_established_);
    on_established_ = nullptr;
    if (established && !closed_) established();
  }
  if (!plain.empty() && on_data_ && !closed_) on_data_(plain);
}

void TcpConnection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<TcpConnection*>(stream->data);
  if (self != nullptr && nread > 0) {
    auto keep = self->shared_from_this();  // the callback may close and release us
    self->dispatching_ = true;
    self->OnReceived(std::string_view(buf->base, static_cast<size_t>(nread)));
    self->dispatching_ = false;
    if (self->closed_) self->ReleaseCallbacks();
  } else if (self != nullptr && nread < 0) {
    if (self->tls_ && !self->tls_->established()) {
      return self->FailTls(nread == UV_EOF
                               ? "the peer closed the connection during the TLS handshake (it has "
                                 "another cluster key, or none)"
                               : "the connection failed during the TLS handshake: " +
                                     UvError(static_cast<int>(nread)));
    }
    self->Fail(nread == UV_EOF ? 0 : static_cast<int>(nread));
  }
}

void TcpConnection::PauseReading() {
  if (closed_ || !reading_) return;
  reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(socket_));
}

void TcpConnection::ResumeReading() {
  if (closed_ || reading_) return;
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(socket_), LendReadBuffer, OnRead);
}

size_t TcpConnection::queued_bytes() const {
  if (closed_) return 0;
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(socket_)) +
         (tls_ ? tls_->held_bytes() : 0);
}

void TcpConnection::Write(std::string bytes, std::function<void(int)> done) {
  if (closed_) {
    if (done) done(UV_ECANCELED);
    return;
  }
  if (tls_) {
    std::string wire;
    if (Status sent = tls_->Send(bytes, wire); !sent.ok()) {
      if (done) done(UV_ECANCELED);
      failure_reason_ = sent.message();
      FailLater(kTlsFailed);
      return;
    }
    if (!tls_->established()) {
      // Held in the session until the handshake is done: so is its callback.
      if (done) held_writes_done_.push_back(std::move(done));
      return;
    }
    // Empty after the handshake when `bytes` was: still written, so that `done` says when
    // everything before it is out (what HttpServer waits for before closing a stream).
    bytes = std::move(wire);
  }
  WriteRaw(std::move(bytes), std::move(done));
}

void TcpConnection::Write(std::vector<std::string> pieces) {
  if (closed_) return;
  if (tls_) {
    for (std::string& piece : pieces) Write(std::move(piece));
    return;
  }
  WriteToStream(reinterpret_cast<uv_stream_t*>(socket_), std::move(pieces), true, nullptr);
}

void TcpConnection::WriteRaw(std::string bytes, std::function<void(int)> done) {
  // A caller that waits for the write is answered from its callback, so it is queued whole.
  const bool try_first = !done;
  const int rc =
      WriteToStream(reinterpret_cast<uv_stream_t*>(socket_), std::move(bytes), try_first, done);
  if (rc != 0 && done) done(rc);
}

void TcpConnection::ShutdownWrite() {
  if (closed_) return;
  auto* request = new uv_shutdown_t;
  if (uv_shutdown(request, reinterpret_cast<uv_stream_t*>(socket_),
                  [](uv_shutdown_t* req, int) { delete req; }) != 0) {
    delete request;
  }
}

void TcpConnection::Fail(int status) {
  auto callback = std::move(on_closed_);
  auto keep = shared_from_this();
  Close();
  if (callback) callback(status);
}

void TcpConnection::StopHandshakeTimer() {
  if (handshake_timer_ == nullptr) return;
  handshake_timer_->data = nullptr;
  CloseAndDelete(handshake_timer_);
  handshake_timer_ = nullptr;
}

void TcpConnection::FailLater(int status) {
  if (closed_) return;
  PauseReading();
  struct Deferred {
    uv_timer_t timer{};
    std::weak_ptr<TcpConnection> connection;
    int status;
  };
  auto* deferred = new Deferred{{}, weak_from_this(), status};
  uv_timer_init(socket_->loop, &deferred->timer);
  deferred->timer.data = deferred;
  uv_timer_start(
      &deferred->timer,
      [](uv_timer_t* timer) {
        auto* deferred = static_cast<Deferred*>(timer->data);
        if (auto connection = deferred->connection.lock(); connection && !connection->closed_) {
          connection->Fail(deferred->status);
        }
        uv_close(reinterpret_cast<uv_handle_t*>(timer),
                 [](uv_handle_t* handle) { delete static_cast<Deferred*>(handle->data); });
      },
      0, 0);
}

void TcpConnection::ReleaseCallbacks() {
  on_data_ = nullptr;
  on_closed_ = nullptr;
}

void TcpConnection::Close() {
  if (closed_) return;
  closed_ = true;
  reading_ = false;
  // A callback that closes its own connection must not destroy itself while it runs.
  if (!dispatching_) ReleaseCallbacks();
  socket_->data = nullptr;
  CloseAndDelete(socket_);
  StopHandshakeTimer();
  auto held = std::move(held_writes_done_);
  held_writes_done_.clear();
  on_established_ = nullptr;
  auto keep = std::move(self_);  // may be the last reference: released at the end
  for (auto& done : held) done(UV_ECANCELED);
}

Status TcpListener::Listen(Ipv4 ip, uint16_t port, const std::string& what,
                           AcceptCallback on_accept) {
  on_accept_ = std::move(on_accept);
  socket_ = new uv_tcp_t;
  uv_tcp_init(loop_.raw(), socket_);
  socket_->data = this;
  sockaddr_in addr = ip.ToSockaddr(port);
  int rc = uv_tcp_bind(socket_, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(
        reinterpret_cast<uv_stream_t*>(socket_), 512, [](uv_stream_t* server, int status) {
          auto* self = static_cast<TcpListener*>(server->data);
          if (status < 0 || self == nullptr) return;
          std::shared_ptr<TcpConnection> connection(new TcpConnection(self->loop_));
          if (uv_accept(server, reinterpret_cast<uv_stream_t*>(connection->socket_)) != 0) return;
          connection->Adopt();
          self->on_accept_(connection);
        });
  }
  if (rc != 0) {
    Close();
    const std::string where = ip.ToString() + ":" + std::to_string(port);
    if (rc == UV_EADDRINUSE) return Status::Error(what + " port " + where + " is already in use");
    return Status::Error("cannot listen for " + what + " on " + where + ": " + UvError(rc));
  }
  sockaddr_in bound{};
  int length = sizeof bound;
  uv_tcp_getsockname(socket_, reinterpret_cast<sockaddr*>(&bound), &length);
  port_ = ntohs(bound.sin_port);
  return Status::Ok();
}

void TcpListener::Close() {
  if (socket_ == nullptr) return;
  socket_->data = nullptr;
  CloseAndDelete(socket_);
  socket_ = nullptr;
}

}  // namespace synod
