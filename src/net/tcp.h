// TcpConnection and TcpListener: the one wrapper over libuv TCP streams that every protocol
// module (HTTP, SDSS timestamps, the native peer protocol) builds on.
//
// Contract:
// - Loop thread only. Callbacks run on the loop thread.
// - A TcpConnection keeps itself alive while its socket is open; holders keep a shared_ptr or a
//   weak_ptr. After Close() no callback of the connection runs again.
// - on_closed runs once when the peer ends the stream or an error occurs, with 0 for a clean end
//   of stream or a negative libuv error code (UV_ECONNRESET, UV_ETIMEDOUT, ...); the connection is
//   closed by then. It does not run for an explicit Close().
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/event_loop.h"
#include "core/status.h"
#include "net/ipv4.h"

namespace synod {

class TlsSession;

// The status on_closed hears when TLS failed (see TcpConnection::failure_reason()).
inline constexpr int kTlsFailed = -100'001;

// Makes `socket` fail (UV_ETIMEDOUT) once data it sent, or a keepalive probe when idle, stays
// unacknowledged for `stall`, instead of after TCP's retransmission back-off (many minutes, and
// seconds between tries, so that a healed partition goes unnoticed). Also sets TCP_NODELAY and
// linear retransmission timeouts for thin streams. Options the kernel refuses stay at its
// defaults: the connection works without them.
void LimitStall(uv_tcp_t* socket, std::chrono::milliseconds stall);

class TcpConnection : public std::enable_shared_from_this<TcpConnection> {
 public:
  using DataCallback = std::function<void(std::string_view bytes)>;
  using ClosedCallback = std::function<void(int status)>;
  // Called once: with the connection, or with nullptr and a negative libuv error code
  // (UV_ECONNREFUSED, UV_ETIMEDOUT for the connect timeout, ...).
  using ConnectCallback = std::function<void(std::shared_ptr<TcpConnection>, int status)>;

  // Starts connecting from `source` (any address when unset). Returns the pending connection:
  // Close() on it cancels the attempt, and then `done` is not called.
  static std::shared_ptr<TcpConnection> Connect(EventLoop& loop, Ipv4 ip, uint16_t port,
                                                std::chrono::milliseconds timeout,
                                                ConnectCallback done, Ipv4 source = Ipv4{});

  ~TcpConnection();

  // Makes the connection carry TLS: from then on on_data receives plaintext and Write() takes
  // plaintext; what is written before the handshake is done leaves once it is.
  // `on_established` (optional) runs when the handshake is done. A failed handshake or a refused
  // record closes the connection with kTlsFailed, and failure_reason() says why; an end of
  // stream during the handshake does too. Call before Start().
  // A handshake not done within `handshake_timeout` fails too (a client that connects and says
  // nothing must not hold the connection).
  void SecureWith(std::unique_ptr<TlsSession> session,
                  std::function<void()> on_established = nullptr,
                  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(5));
  // Starts delivering received bytes. Call once, right after accept or connect (or SecureWith).
  void Start(DataCallback on_data, ClosedCallback on_closed);
  void PauseReading();
  void ResumeReading();
  // Queues bytes; `done` (optional) runs when they are handed to the kernel or failed.
  void Write(std::string bytes, std::function<void(int status)> done = nullptr);
  // Queues several pieces, in order; without TLS they go to the kernel in one system call.
  void Write(std::vector<std::string> pieces);
  // Bytes queued by Write() and not yet handed to the kernel (with TLS: also the plaintext held
  // until the handshake is done).
  size_t queued_bytes() const;
  // See LimitStall().
  void LimitStall(std::chrono::milliseconds stall) { synod::LimitStall(socket_, stall); }
  // Sends FIN after queued writes; reading goes on.
  void ShutdownWrite();
  void Close();
  bool closed() const { return closed_; }
  // Why TLS failed, once on_closed heard kTlsFailed.
  const std::string& failure_reason() const { return failure_reason_; }

  Ipv4 peer_ip() const { return peer_ip_; }
  uint16_t peer_port() const { return peer_port_; }

 private:
  friend class TcpListener;
  explicit TcpConnection(EventLoop& loop);
  void Adopt();  // socket is connected: learn the peer, hold self
  void Fail(int status);
  void ReleaseCallbacks();
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void OnReceived(std::string_view bytes);
  void WriteRaw(std::string bytes, std::function<void(int status)> done);
  void FailTls(std::string why);
  // Fail(status) in a later turn of the loop: for errors met inside Write().
  void FailLater(int status);
  void StopHandshakeTimer();

  uv_tcp_t* socket_;
  std::shared_ptr<TcpConnection> self_;  // set while the socket is open
  DataCallback on_data_;
  ClosedCallback on_closed_;
  bool reading_ = false;
  bool closed_ = false;
  bool dispatching_ = false;  // inside on_data_
  Ipv4 peer_ip_;
  uint16_t peer_port_ = 0;
  std::unique_ptr<TlsSession> tls_;
  uv_timer_t* handshake_timer_ = nullptr;
  std::function<void()> on_established_;
  // Writes' callbacks waiting for the handshake (their bytes are held by the session).
  std::vector<std::function<void(int status)>> held_writes_done_;
  std::string failure_reason_;
};

class TcpListener {
 public:
  using AcceptCallback = std::function<void(std::shared_ptr<TcpConnection>)>;

  explicit TcpListener(EventLoop& loop) : loop_(loop) {}
  ~TcpListener() { Close(); }

  // Binds and listens; port 0 lets the kernel choose (see port()). `what` names the service in
  // errors ("HTTP", "peer", ...).
  Status Listen(Ipv4 ip, uint16_t port, const std::string& what, AcceptCallback on_accept);
  uint16_t port() const { return port_; }
  void Close();

 private:
  EventLoop& loop_;
  uv_tcp_t* socket_ = nullptr;
  uint16_t port_ = 0;
  AcceptCallback on_accept_;
};

}  // namespace synod
