// RaftTunnel: one of libraft's connections carried over TLS.
//
// libraft reads and writes plain libuv streams. A tunnel gives it one end of a local socket pair
// (a uv_pipe_t allocated with raft_malloc, as libraft frees the streams it is handed) and relays
// the other end to a TLS connection, both ways, with back-pressure: when one side stops reading,
// the tunnel stops reading the other once 4 MiB wait, so it never buffers without bound.
//
// The connecting side writes libraft's handshake (protocol, server id, address) through the TLS
// session and is ready once TLS is established; the accepting side is ready once it has read that
// handshake, whose fields it checks as hostile input. Both handshakes must be done within the
// deadline given. Until ready, a failure reports why (TLS refused, a bad handshake, the
// connection closed, the deadline); after, either side ending ends both.
//
// Loop thread only. A tunnel keeps itself alive until both of its sockets are closed; Abort()
// ends it at once, without callbacks.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/event_loop.h"
#include "net/tcp.h"
#include "net/tls.h"

namespace synod {

class RaftTunnel : public std::enable_shared_from_this<RaftTunnel> {
 public:
  struct Callbacks {
    // The stream to hand to libraft (now libraft's to close), with the peer's server id and
    // address as its handshake said (the connecting side gets back what it sent).
    std::function<void(uv_stream_t* stream, uint64_t peer_id, const std::string& peer_address)>
        on_ready;
    // Before on_ready only: why the tunnel could not be set up; `tls_refused` when the handshake
    // with the peer failed (no key, another key, a bad certificate).
    std::function<void(const std::string& why, bool tls_refused)> on_failed;
  };

  // The connecting side: `handshake` is libraft's, already encoded.
  static std::shared_ptr<RaftTunnel> Connect(EventLoop& loop,
                                             std::shared_ptr<TcpConnection> connection,
                                             const TlsConfig& tls, std::string handshake,
                                             std::chrono::milliseconds handshake_timeout,
                                             Callbacks callbacks);
  // The accepting side.
  static std::shared_ptr<RaftTunnel> Accept(EventLoop& loop,
                                            std::shared_ptr<TcpConnection> connection,
                                            const TlsConfig& tls, Callbacks callbacks);

  ~RaftTunnel();
  RaftTunnel(const RaftTunnel&) = delete;
  RaftTunnel& operator=(const RaftTunnel&) = delete;

  void Abort();
  bool ready() const { return ready_; }
  Ipv4 peer_ip() const { return peer_ip_; }

 private:
  RaftTunnel(EventLoop& loop, std::shared_ptr<TcpConnection> connection, Callbacks callbacks);
  void Begin(const TlsConfig& tls, bool client, std::chrono::milliseconds handshake_timeout);
  void OnPlain(std::string_view bytes);
  bool ParseHandshake();
  void BecomeReady(uint64_t peer_id, const std::string& peer_address);
  void ToRaft(std::string_view bytes);
  void FromRaft(std::string_view bytes);
  void Fail(const std::string& why, bool tls_refused);
  void CloseAll();
  static void OnPipeRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

  EventLoop& loop_;
  std::shared_ptr<TcpConnection> connection_;
  Callbacks callbacks_;
  std::shared_ptr<RaftTunnel> self_;  // while a socket is open
  Ipv4 peer_ip_;
  bool client_ = false;
  bool ready_ = false;
  bool ended_ = false;
  std::string handshake_;      // the accepting side: received so far; the connecting side: sent
  uv_pipe_t* ours_ = nullptr;  // our end of the socket pair, open after BecomeReady
  bool pipe_reading_ = false;
  Timer drain_poll_;  // waits for the TLS side's queue to shrink
  Timer deadline_;    // until ready: TLS and libraft's handshake both within it
};

}  // namespace synod
