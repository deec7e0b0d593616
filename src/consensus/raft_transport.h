// RaftTransport: the connections that carry libraft's messages, with failure detection that is
// bounded in time.
//
// Why not libraft's own TCP transport alone: it never gives up on a connection. A connect to an
// unreachable peer waits out the kernel's SYN retries (about two minutes), and a connection
// whose peer vanished (a partition) stays open while TCP backs its retransmissions off to tens
// of seconds; libraft only reconnects when a write fails. After a partition healed, nothing
// moved until the next retransmission: 23.7 s after a 30 s cut.
//
// Here, outgoing connections are made by this class: each attempt has a deadline, and every
// connection (outgoing, and incoming ones accepted by libraft's transport) carries
// TCP_USER_TIMEOUT and keepalive, so that a connection whose data stays unacknowledged for
// `stall_timeout` fails, libraft drops it and reconnects. The handshake is libraft's own
// (version 1: protocol, server id, address), so nodes with either transport interoperate.
//
// With TLS (RaftTransportOptions::tls), the transport listens and connects itself, and hands
// libraft a RaftTunnel's local stream for each connection: Raft's traffic never travels in clear
// beside the protected peer protocol. Nodes with and without TLS do not interoperate.
//
// Contract:
// - Loop thread only. Init() before handing get() to raft_uv_init(); Release() after
//   raft_uv_close(), when libraft has closed the transport.
// - Connection changes are logged once per outage (lost, unreachable, back), never per attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "core/event_loop.h"
#include "core/status.h"
#include "net/tls.h"

struct raft_uv_transport;

namespace synod {

struct RaftTransportOptions {
  std::chrono::milliseconds connect_timeout{500};
  // Unacknowledged data (or an unanswered keepalive) for this long ends a connection.
  std::chrono::milliseconds stall_timeout{1000};
  // Set: every connection is TLS with these credentials; handshakes refused are noted in
  // `refusals` (which outlives the transport) as port "raft".
  std::shared_ptr<const TlsConfig> tls{};
  TlsRefusals* refusals = nullptr;
};

struct RaftConnectionStats {
  uint64_t connected = 0;        // connections established (first ones and reconnections)
  uint64_t lost = 0;             // established connections that failed and were reopened
  uint64_t failed_attempts = 0;  // connect attempts that failed or timed out
};

class RaftTransport {
 public:
  RaftTransport(EventLoop& loop, RaftTransportOptions options);
  ~RaftTransport();
  RaftTransport(const RaftTransport&) = delete;
  RaftTransport& operator=(const RaftTransport&) = delete;

  Status Init();
  raft_uv_transport* get();
  void Release();
  RaftConnectionStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synod
