#include "consensus/raft_transport.h"

extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include <netinet/in.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <spdlog/spdlog.h>

#include "consensus/raft_tunnel.h"
#include "core/clock.h"
#include "net/ipv4.h"
#include "net/tcp.h"

namespace synod {
namespace {

// libraft's TCP handshake, version 1 (its uv_tcp_connect.c): the protocol version, our server id
// and the size of the address field, as little-endian 64-bit words, then our address,
// NUL-terminated and zero-padded to a multiple of 8 bytes.
constexpr uint64_t kHandshakeProtocol = 1;
constexpr std::chrono::seconds kQuietOutage{1};
// Incoming TLS connections not yet through their handshakes, at most.
constexpr size_t kMaxHandshaking = 256;
constexpr size_t kMaxHandshakingPerSource = 8;

void PutLittleEndian64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::string EncodeHandshake(uint64_t id, const std::string& address) {
  const size_t field = (address.size() + 1 + 7) / 8 * 8;
  std::string out;
  PutLittleEndian64(out, kHandshakeProtocol);
  PutLittleEndian64(out, id);
  PutLittleEndian64(out, field);
  out += address;
  out.resize(out.size() + field - address.size(), '\0');
  return out;
}

}  // namespace

struct RaftTransport::Impl {
  // One outgoing connection attempt. It owns two handles (the socket until it is handed to
  // libraft, and the deadline) and is freed when the last of them is closed.
  struct Attempt {
    Impl* owner = nullptr;
    raft_uv_connect* request = nullptr;
    raft_id peer = 0;
    std::string address;
    uv_tcp_t* tcp = nullptr;  // raft_malloc'd: libraft frees the stream it is given
    uv_connect_t connect{};
    uv_write_t write{};
    uv_timer_t deadline{};
    std::string handshake;
    int open_handles = 0;
    int status = 0;
    bool finished = false;
  };

  // What the log has said about a peer, so that it says each change once.
  struct PeerRecord {
    bool connected_before = false;
    bool reported = false;  // the outage is in the log
    MonoTime down_since{};  // unset while connected
  };

  EventLoop& loop;
  RaftTransportOptions options;
  raft_uv_transport outer{};
  raft_uv_transport inner{};
  bool inner_ready = false;
  raft_id id = 0;
  std::string address;
  raft_uv_accept_cb accept_cb = nullptr;
  raft_uv_transport_close_cb close_cb = nullptr;
  bool inner_closed = false;
  std::unordered_set<Attempt*> pending;
  size_t attempts_alive = 0;
  std::unordered_map<raft_id, PeerRecord> peers;
  RaftConnectionStats stats;

  // With TLS: an outgoing connection until its tunnel is ready.
  struct SecureAttempt {
    raft_uv_connect* request = nullptr;
    raft_id peer = 0;
    std::string address;
    std::shared_ptr<TcpConnection> connecting;
    std::shared_ptr<RaftTunnel> tunnel;
    bool finished = false;
  };
  std::unique_ptr<TcpListener> listener;
  std::unordered_set<std::shared_ptr<SecureAttempt>> secure_pending;
  std::vector<std::weak_ptr<RaftTunnel>> tunnels;  // to end them when the transport closes

  Impl(EventLoop& l, RaftTransportOptions o) : loop(l), options(o) {
    outer.impl = this;
    outer.init = &Impl::OnInit;
    outer.listen = &Impl::OnListen;
    outer.connect = &Impl::OnConnect;
    outer.close = &Impl::OnClose;
  }

  static Impl* Of(raft_uv_transport* transport) { return static_cast<Impl*>(transport->impl); }

  static int OnInit(raft_uv_transport* transport, raft_id id, const char* address) {
    Impl* self = Of(transport);
    self->id = id;
    self->address = address;
    const int rv = self->inner.init(&self->inner, id, address);
    if (rv != 0)
      std::snprintf(transport->errmsg, sizeof transport->errmsg, "%s", self->inner.errmsg);
    return rv;
  }

  static int OnListen(raft_uv_transport* transport, raft_uv_accept_cb cb) {
    Impl* self = Of(transport);
    self->accept_cb = cb;
    if (self->options.tls) return self->ListenSecure();
    self->inner.data = self;
    const int rv = self->inner.listen(&self->inner, [](raft_uv_transport* inner, raft_id peer,
                                                       const char* from, uv_stream_t* stream) {
      Impl* self = static_cast<Impl*>(inner->data);
      LimitStall(reinterpret_cast<uv_tcp_t*>(stream), self->options.stall_timeout);
      self->accept_cb(&self->outer, peer, from, stream);
    });
    if (rv != 0)
      std::snprintf(transport->errmsg, sizeof transport->errmsg, "%s", self->inner.errmsg);
    return rv;
  }

  static int OnConnect(raft_uv_transport* transport, raft_uv_connect* request, raft_id peer,
                       const char* peer_address, raft_uv_connect_cb cb) {
    Impl* self = Of(transport);
    auto target = ParseHostPort(peer_address, 0);
    if (!target.ok() || target.value().port == 0) return RAFT_NOCONNECTION;
    request->cb = cb;
    self->NoteAttempt(peer, peer_address);
    if (self->options.tls) {
      self->ConnectSecure(request, peer, peer_address, target.value().ip, target.value().port);
      return 0;
    }

    auto* attempt = new Attempt;
    ++self->attempts_alive;
    attempt->owner = self;
    attempt->request = request;
    attempt->peer = peer;
    attempt->address = peer_address;
    attempt->tcp = static_cast<uv_tcp_t*>(raft_malloc(sizeof(uv_tcp_t)));
    if (attempt->tcp == nullptr) {
      delete attempt;
      --self->attempts_alive;
      return RAFT_NOMEM;
    }
    uv_tcp_init_ex(self->loop.raw(), attempt->tcp, AF_INET);
    attempt->tcp->data = attempt;
    uv_timer_init(self->loop.raw(), &attempt->deadline);
    attempt->deadline.data = attempt;
    attempt->open_handles = 2;
    self->pending.insert(attempt);
    // Before connect(): the user timeout bounds the SYN retries too.
    LimitStall(attempt->tcp, self->options.stall_timeout);
    // From our own address, as every other connection of the node: on a host with several
    // addresses the peer (and its firewall) sees the one the node is known by.
    int rc = 0;
    if (auto self_address = ParseHostPort(self->address, 0); self_address.ok()) {
      const sockaddr_in from = self_address.value().ip.ToSockaddr(0);
      rc = uv_tcp_bind(attempt->tcp, reinterpret_cast<const sockaddr*>(&from), 0);
    }
    const sockaddr_in to = target.value().ip.ToSockaddr(target.value().port);
    attempt->connect.data = attempt;
    if (rc == 0) {
      rc = uv_tcp_connect(&attempt->connect, attempt->tcp, reinterpret_cast<const sockaddr*>(&to),
                          &Impl::OnConnected);
    }
    if (rc != 0) {
      Fail(attempt, RAFT_NOCONNECTION);
      return 0;  // the callback reports it, like any other failed attempt
    }
    uv_timer_start(
        &attempt->deadline,
        [](uv_timer_t* timer) { Fail(static_cast<Attempt*>(timer->data), RAFT_NOCONNECTION); },
        static_cast<uint64_t>(self->options.connect_timeout.count()), 0);
    return 0;
  }

  static void OnConnected(uv_connect_t* connect, int status) {
    auto* attempt = static_cast<Attempt*>(connect->data);
    if (attempt->finished) return;  // timed out or cancelled: the close reports it
    if (status != 0) return Fail(attempt, RAFT_NOCONNECTION);
    attempt->handshake = EncodeHandshake(attempt->owner->id, attempt->owner->address);
    uv_buf_t buffer =
        uv_buf_init(attempt->handshake.data(), static_cast<unsigned>(attempt->handshake.size()));
    attempt->write.data = attempt;
    if (uv_write(&attempt->write, reinterpret_cast<uv_stream_t*>(attempt->tcp), &buffer, 1,
                 &Impl::OnHandshakeWritten) != 0) {
      Fail(attempt, RAFT_NOCONNECTION);
    }
  }

  static void OnHandshakeWritten(uv_write_t* write, int status) {
    auto* attempt = static_cast<Attempt*>(write->data);
    if (attempt->finished) return;
    if (status != 0) return Fail(attempt, RAFT_NOCONNECTION);
    attempt->finished = true;
    Impl* self = attempt->owner;
    self->pending.erase(attempt);
    self->NoteConnected(attempt->peer, attempt->address);
    auto* stream = reinterpret_cast<uv_stream_t*>(attempt->tcp);
    attempt->tcp = nullptr;  // libraft's now
    --attempt->open_handles;
    raft_uv_connect* request = attempt->request;
    CloseDeadline(attempt);
    request->cb(request, stream, 0);
  }

  // Ends an attempt that did not connect; its request hears `status` once the socket is closed.
  static void Fail(Attempt* attempt, int status) {
    if (attempt->finished) return;
    attempt->finished = true;
    attempt->status = status;
    Impl* self = attempt->owner;
    self->pending.erase(attempt);
    if (status != RAFT_CANCELED) self->NoteFailure(attempt->peer, attempt->address);
    CloseDeadline(attempt);
    uv_close(reinterpret_cast<uv_handle_t*>(attempt->tcp), [](uv_handle_t* handle) {
      auto* attempt = static_cast<Attempt*>(handle->data);
      raft_free(handle);
      attempt->tcp = nullptr;
      attempt->request->cb(attempt->request, nullptr, attempt->status);
      Release(attempt);
    });
  }

  static void CloseDeadline(Attempt* attempt) {
    uv_timer_stop(&attempt->deadline);
    uv_close(reinterpret_cast<uv_handle_t*>(&attempt->deadline),
             [](uv_handle_t* handle) { Release(static_cast<Attempt*>(handle->data)); });
  }

  // One of the attempt's handles is closed; the last one frees it.
  static void Release(Attempt* attempt) {
    if (--attempt->open_handles > 0) return;
    Impl* self = attempt->owner;
    delete attempt;
    --self->attempts_alive;
    self->MaybeFinishClose();
  }

  static void OnClose(raft_uv_transport* transport, raft_uv_transport_close_cb cb) {
    Impl* self = Of(transport);
    self->close_cb = cb;
    self->CloseSecure();
    // Fail() erases from `pending`: iterate over a copy.
    const std::unordered_set<Attempt*> attempts = self->pending;
    for (Attempt* attempt : attempts) Fail(attempt, RAFT_CANCELED);
    self->inner.close(&self->inner, [](raft_uv_transport* inner) {
      Impl* self = static_cast<Impl*>(inner->data);
      self->inner_closed = true;
      self->MaybeFinishClose();
    });
  }

  int ListenSecure() {
    auto bound = ParseHostPort(address, 0);
    if (!bound.ok()) {
      std::snprintf(outer.errmsg, sizeof outer.errmsg, "bad raft address %s", address.c_str());
      return RAFT_INVALID;
    }
    listener = std::make_unique<TcpListener>(loop);
    Status listening = listener->Listen(
        bound.value().ip, bound.value().port, "raft",
        [this](std::shared_ptr<TcpConnection> connection) { AcceptSecure(std::move(connection)); });
    if (!listening.ok()) {
      std::snprintf(outer.errmsg, sizeof outer.errmsg, "%s", listening.message().c_str());
      return RAFT_IOERR;
    }
    return 0;
  }

  void ForgetEndedTunnels() {
    std::erase_if(tunnels,
                  [](const std::weak_ptr<RaftTunnel>& tunnel) { return tunnel.expired(); });
  }

  void AcceptSecure(std::shared_ptr<TcpConnection> connection) {
    ForgetEndedTunnels();
    if (close_cb != nullptr) return connection->Close();
    // Connections that never finish their handshake must not lock members out: past the limit
    // (in all, or from one address), the oldest one still in its handshake makes room.
    std::shared_ptr<RaftTunnel> oldest, oldest_from_source;
    size_t handshaking = 0, from_source = 0;
    for (const auto& weak : tunnels) {
      auto tunnel = weak.lock();
      if (!tunnel || tunnel->ready()) continue;
      ++handshaking;
      if (!oldest) oldest = tunnel;
      if (tunnel->peer_ip() == connection->peer_ip()) {
        ++from_source;
        if (!oldest_from_source) oldest_from_source = tunnel;
      }
    }
    if (from_source >= kMaxHandshakingPerSource) {
      oldest_from_source->Abort();
    } else if (handshaking >= kMaxHandshaking) {
      oldest->Abort();
    }
    connection->LimitStall(options.stall_timeout);
    const Ipv4 from = connection->peer_ip();
    RaftTunnel::Callbacks callbacks;
    callbacks.on_ready = [this](uv_stream_t* stream, uint64_t peer, const std::string& where) {
      // Our own connection sent back to us (a redirect): libraft must never hear itself.
      if (close_cb != nullptr || peer == id) {
        uv_close(reinterpret_cast<uv_handle_t*>(stream),
                 [](uv_handle_t* handle) { raft_free(handle); });
        return;
      }
      accept_cb(&outer, peer, where.c_str(), stream);
    };
    callbacks.on_failed = [this, from](const std::string& why, bool tls_refused) {
      if (tls_refused && options.refusals != nullptr) {
        options.refusals->Note("raft", from, why);
      } else {
        spdlog::debug("raft: incoming connection from {} failed: {}", from.ToString(), why);
      }
    };
    tunnels.push_back(
        RaftTunnel::Accept(loop, std::move(connection), *options.tls, std::move(callbacks)));
  }

  void ConnectSecure(raft_uv_connect* request, raft_id peer, const std::string& where, Ipv4 ip,
                     uint16_t port) {
    ForgetEndedTunnels();
    auto attempt = std::make_shared<SecureAttempt>();
    attempt->request = request;
    attempt->peer = peer;
    attempt->address = where;
    secure_pending.insert(attempt);
    ++attempts_alive;
    Ipv4 source;
    if (auto self_address = ParseHostPort(address, 0); self_address.ok()) {
      source = self_address.value().ip;
    }
    attempt->connecting = TcpConnection::Connect(
        loop, ip, port, options.connect_timeout,
        [this, attempt, ip](std::shared_ptr<TcpConnection> connection, int) {
          attempt->connecting.reset();
          if (attempt->finished) return;
          if (!connection) return FinishSecure(attempt, nullptr);
          connection->LimitStall(options.stall_timeout);
          RaftTunnel::Callbacks callbacks;
          callbacks.on_ready = [this, attempt](uv_stream_t* stream, uint64_t, const std::string&) {
            FinishSecure(attempt, stream);
          };
          callbacks.on_failed = [this, attempt, ip](const std::string& why, bool tls_refused) {
            if (tls_refused && options.refusals != nullptr) {
              options.refusals->Note("raft", ip, why);
            }
            FinishSecure(attempt, nullptr);
          };
          // A TLS handshake costs more than a connect: a few round trips and some CPU.
          const auto handshake_timeout = std::max<std::chrono::milliseconds>(
              4 * options.connect_timeout, std::chrono::seconds(2));
          attempt->tunnel = RaftTunnel::Connect(loop, std::move(connection), *options.tls,
                                                EncodeHandshake(id, address), handshake_timeout,
                                                std::move(callbacks));
          tunnels.push_back(attempt->tunnel);
        },
        source);
  }

  // Reports an outgoing attempt's end to libraft: a stream, or none for a failure. Always from a
  // later turn of the loop than OnConnect, as the plain transport does.
  void FinishSecure(const std::shared_ptr<SecureAttempt>& attempt, uv_stream_t* stream,
                    int status = RAFT_NOCONNECTION) {
    if (attempt->finished) return;
    attempt->finished = true;
    secure_pending.erase(attempt);
    if (stream != nullptr) {
      NoteConnected(attempt->peer, attempt->address);
    } else if (status != RAFT_CANCELED) {
      NoteFailure(attempt->peer, attempt->address);
    }
    attempt->tunnel.reset();
    loop.Defer([this, attempt, stream, status] {
      attempt->request->cb(attempt->request, stream, stream != nullptr ? 0 : status);
      --attempts_alive;
      MaybeFinishClose();
    });
  }

  void CloseSecure() {
    if (listener) listener->Close();
    const auto attempts = secure_pending;
    for (const auto& attempt : attempts) {
      if (attempt->connecting) attempt->connecting->Close();
      if (attempt->tunnel) attempt->tunnel->Abort();
      FinishSecure(attempt, nullptr, RAFT_CANCELED);
    }
    for (const auto& weak : tunnels) {
      if (auto tunnel = weak.lock()) tunnel->Abort();
    }
    tunnels.clear();
  }

  // libraft may free the transport once its close callback ran: only after every attempt is gone.
  void MaybeFinishClose() {
    if (close_cb == nullptr || !inner_closed || attempts_alive > 0) return;
    auto cb = close_cb;
    close_cb = nullptr;
    cb(&outer);
  }

  void NoteAttempt(raft_id peer, const char* where) {
    PeerRecord& record = peers[peer];
    if (record.connected_before && record.down_since == MonoTime{}) {
      // libraft reconnects only after a write on the connection failed.
      ++stats.lost;
      record.down_since = std::chrono::steady_clock::now();
      record.reported = true;
      spdlog::warn("raft: connection to {} lost (stalled or closed); reconnecting", where);
    }
  }

  void NoteConnected(raft_id peer, const std::string& where) {
    PeerRecord& record = peers[peer];
    ++stats.connected;
    if (record.reported) {
      spdlog::info("raft: connected to {} again after {} ms", where,
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - record.down_since)
                       .count());
    }
    record = PeerRecord{};
    record.connected_before = true;
  }

  // A peer that is starting refuses for a moment: said only once it lasts.
  void NoteFailure(raft_id peer, const std::string& where) {
    PeerRecord& record = peers[peer];
    ++stats.failed_attempts;
    const MonoTime now = std::chrono::steady_clock::now();
    if (record.down_since == MonoTime{}) record.down_since = now;
    if (!record.reported && now - record.down_since >= kQuietOutage) {
      record.reported = true;
      spdlog::warn(
          "raft: cannot reach {} for {} ms; still trying", where,
          std::chrono::duration_cast<std::chrono::milliseconds>(now - record.down_since).count());
    }
  }
};

RaftTransport::RaftTransport(EventLoop& loop, RaftTransportOptions options)
    : impl_(std::make_unique<Impl>(loop, options)) {}

RaftTransport::~RaftTransport() { Release(); }

Status RaftTransport::Init() {
  if (int rv = raft_uv_tcp_init(&impl_->inner, impl_->loop.raw()); rv != 0) {
    return Status::Error(std::string("cannot set up the raft transport: ") + raft_strerror(rv));
  }
  impl_->inner_ready = true;
  impl_->inner.data = impl_.get();
  return Status::Ok();
}

raft_uv_transport* RaftTransport::get() { return &impl_->outer; }

void RaftTransport::Release() {
  impl_->listener.reset();
  if (!impl_->inner_ready) return;
  raft_uv_tcp_close(&impl_->inner);
  impl_->inner_ready = false;
}

RaftConnectionStats RaftTransport::stats() const { return impl_->stats; }

}  // namespace synod
