#include "peer/peer_service.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "net/uv_util.h"

namespace synod {
namespace {

constexpr uint32_t kProtocolVersion = 1;
// Work due within this much of the earliest due time is done in the same wake-up.
constexpr auto kCoalesce = std::chrono::milliseconds(50);
constexpr auto kConnectTimeout = std::chrono::seconds(1);
// A link whose data goes unacknowledged this long is dropped and reopened (see LimitStall):
// after a partition heals, calls go through at once rather than after TCP's back-off. Longer
// than Raft's, as a link also carries file blocks to a busy receiver.
constexpr auto kLinkStall = std::chrono::seconds(2);
constexpr auto kRetryAfterError = std::chrono::seconds(2);
constexpr auto kRetryNotSynod = std::chrono::seconds(10);
constexpr int kBurstProbes = 6;
constexpr auto kBurstSpacing = std::chrono::milliseconds(100);
constexpr size_t kMaxIncomingLinks = 1024;
constexpr size_t kMaxIncomingLinksPerSource = 16;

// PeerLink's reasons for a frame it could not take.
bool IsMalformed(const std::string& why) {
  return why.starts_with("bad frame") || why.starts_with("undecodable");
}
constexpr size_t kMaxOutbox = 1024;

bool IsResponse(const wire::PeerMessage& message) {
  switch (message.body_case()) {
    case wire::PeerMessage::kProposeResponse:
    case wire::PeerMessage::kJoinResponse:
    case wire::PeerMessage::kLeaveResponse:
    case wire::PeerMessage::kClockReportsResponse:
    case wire::PeerMessage::kCommandSendResponse:
    case wire::PeerMessage::kCommandDeliveryAck:
    case wire::PeerMessage::kStateChunk:
    case wire::PeerMessage::kBlockResponse:
    case wire::PeerMessage::kReadIndexResponse:
      return true;
    default:
      return false;
  }
}

}  // namespace

PeerService::PeerService(EventLoop& loop, const Clock& clock, PeerOptions options)
    : loop_(loop),
      clock_(clock),
      options_(std::move(options)),
      listener_(loop),
      tick_timer_(loop) {}

PeerService::~PeerService() { Stop(); }

Status PeerService::Start() {
  return listener_.Listen(
      options_.bind_ip, options_.peer_port, "peer",
      [this](std::shared_ptr<TcpConnection> connection) { OnIncoming(std::move(connection)); });
}

void PeerService::Stop() {
  tick_timer_.Stop();
  listener_.Close();
  for (auto& [id, peer] : tracked_) Disconnect(peer);
  tracked_.clear();
  for (const auto& link : incoming_) link->Close();
  incoming_.clear();
  while (!calls_.empty()) FinishCall(calls_.begin()->first, Status::Error("shutting down"));
}

wire::PeerMessage PeerService::HelloMessage() const {
  wire::PeerMessage message;
  wire::Hello* hello = message.mutable_hello();
  hello->set_protocol_version(kProtocolVersion);
  hello->set_node_id(options_.identity.id);
  hello->set_name(options_.name);
  hello->set_api_port(options_.api_port);
  hello->set_peer_port(options_.peer_port);
  hello->set_raft_port(options_.raft_port);
  if (hello_provider_) hello_provider_(*hello);
  return message;
}

void PeerService::OnIncoming(std::shared_ptr<TcpConnection> connection) {
  // One address cannot take every slot (a member has a link or two; more is someone holding
  // connections open to lock members out).
  const size_t from_source =
      std::count_if(incoming_.begin(), incoming_.end(),
                    [&](const auto& link) { return link->peer_ip() == connection->peer_ip(); });
  if (incoming_.size() >= kMaxIncomingLinks || from_source >= kMaxIncomingLinksPerSource) {
    connection->Close();
    return;
  }
  connection->LimitStall(kLinkStall);
  if (options_.tls) connection->SecureWith(options_.tls->NewSession(/*client=*/false));
  auto link = std::make_shared<PeerLink>(loop_, std::move(connection), clock_);
  incoming_.insert(link);
  std::weak_ptr<PeerLink> weak = link;
  link->Start(
      [this, weak](const wire::PeerMessage& message, int64_t received) {
        auto link = weak.lock();
        if (!link) return;
        switch (message.body_case()) {
          case wire::PeerMessage::kHello:
            link->Send(HelloMessage());
            break;
          case wire::PeerMessage::kTimeRequest: {
            wire::PeerMessage reply;
            wire::TimeResponse* response = reply.mutable_time_response();
            response->set_sequence(message.time_request().sequence());
            response->set_t1_nanos(message.time_request().t1_nanos());
            response->set_t2_nanos(received);
            response->set_t3_nanos(clock_.WallUtcNanos());
            link->SendNow(reply);
            break;
          }
          default:
            if (!request_handler_ || IsResponse(message)) {
              ++stats_.ignored_messages;
              spdlog::debug("peer: ignoring message kind {} from {}",
                            static_cast<int>(message.body_case()), link->peer_ip().ToString());
              break;
            }
            request_handler_(message, [weak, id = message.request_id()](wire::PeerMessage reply) {
              auto link = weak.lock();
              if (!link || id == 0) return;
              reply.set_request_id(id);
              link->Send(std::move(reply));
            });
        }
      },
      [this, weak](const std::string& why) {
        if (auto link = weak.lock()) {
          if (IsMalformed(why)) ++stats_.malformed_links;
          if (link->refused_by_tls() && options_.refusals != nullptr) {
            options_.refusals->Note("peer", link->peer_ip(), why);
          } else if (why != "closed by peer") {
            spdlog::debug("peer: incoming link from {} closed: {}", link->peer_ip().ToString(),
                          why);
          }
          incoming_.erase(link);
        }
      });
}

void PeerService::Track(const std::string& short_id, Ipv4 ip) {
  const std::string key = short_id.empty() ? "@" + ip.ToString() : short_id;
  auto [it, inserted] = tracked_.try_emplace(key);
  Tracked& peer = it->second;
  if (!inserted && peer.ip == ip) return;
  Disconnect(peer);
  peer = Tracked{};
  peer.short_id = short_id;
  peer.ip = ip;
  peer.view.status = "connecting";
  peer.next_attempt = clock_.Monotonic();
  Connect(key, peer);
  Reschedule();
}

bool PeerService::Reach(Ipv4 ip) {
  if (FindByIp(ip) != nullptr) return false;
  Track("", ip);
  return true;
}

std::optional<wire::Hello> PeerService::HelloAt(Ipv4 ip) const {
  for (const auto& [key, peer] : tracked_) {
    if (peer.ip == ip && peer.link && peer.hello_done) return peer.view.hello;
  }
  return std::nullopt;
}

void PeerService::Untrack(const std::string& short_id) {
  auto it = tracked_.find(short_id);
  if (it == tracked_.end()) return;
  Disconnect(it->second);
  const Ipv4 ip = it->second.ip;
  tracked_.erase(it);
  FailCalls(short_id, std::nullopt, "neighbour removed");
  if (peer_listener_.on_lost) peer_listener_.on_lost(ip);
}

void PeerService::Disconnect(Tracked& peer) {
  if (peer.pending) peer.pending->Close();
  if (peer.link) peer.link->Close();
  peer.pending.reset();
  peer.link.reset();
  if (peer.bulk.pending) peer.bulk.pending->Close();
  if (peer.bulk.link) peer.bulk.link->Close();
  peer.bulk = BulkLane{};
}

std::optional<PeerView> PeerService::Lookup(const std::string& short_id) const {
  auto it = tracked_.find(short_id);
  if (it == tracked_.end()) return std::nullopt;
  return it->second.view;
}

PeerService::Tracked* PeerService::FindByIp(Ipv4 ip) {
  Tracked* found = nullptr;
  for (auto& [key, peer] : tracked_) {
    if (peer.ip != ip) continue;
    if (peer.view.is_synod) return &peer;
    if (found == nullptr) found = &peer;
  }
  return found;
}

void PeerService::Connect(const std::string& key, Tracked& peer) {
  peer.connecting = true;
  peer.generation = next_generation_++;
  const uint64_t generation = peer.generation;
  peer.pending = TcpConnection::Connect(
      loop_, peer.ip, options_.peer_port, kConnectTimeout,
      [this, key, generation](std::shared_ptr<TcpConnection> connection, int status) {
        auto it = tracked_.find(key);
        if (it == tracked_.end() || it->second.generation != generation) {
          if (connection) connection->Close();
          return;
        }
        Tracked& peer = it->second;
        peer.connecting = false;
        peer.pending.reset();
        if (!connection) {
          const bool refused = status == UV_ECONNREFUSED;
          if (!refused) {
            peer.view.status = "unreachable: " + UvError(status);
          } else if (peer.view.is_synod) {
            peer.view.status = "peer port refused: its agent is down";
          } else {
            peer.view.status = "not a Synod node (peer port refused)";
          }
          peer.next_attempt = clock_.Monotonic() + (refused ? kRetryNotSynod : kRetryAfterError);
          OnLinkLost(key, peer.view.status);
          Reschedule();
          return;
        }
        connection->LimitStall(kLinkStall);
        if (options_.tls) connection->SecureWith(options_.tls->NewSession(/*client=*/true));
        peer.link = std::make_shared<PeerLink>(loop_, std::move(connection), clock_);
        peer.link->Start(
            [this, key](const wire::PeerMessage& message, int64_t received) {
              OnOutgoingMessage(key, message, received);
            },
            [this, key, generation](const std::string& why) {
              auto it = tracked_.find(key);
              if (it == tracked_.end() || it->second.generation != generation) return;
              spdlog::debug("peer: link to {} closed: {}", key, why);
              Tracked& peer = it->second;
              if (IsMalformed(why)) ++stats_.malformed_links;
              if (peer.link->refused_by_tls() && options_.refusals != nullptr) {
                options_.refusals->Note("peer", peer.ip, why);
              }
              peer.link.reset();
              peer.hello_done = false;
              peer.view.is_synod = false;
              peer.view.status = "disconnected: " + why;
              peer.next_attempt = clock_.Monotonic() + kRetryAfterError;
              OnLinkLost(key, why);
              Reschedule();
            });
        peer.link->Send(HelloMessage());
      },
      options_.bind_ip);
}

void PeerService::OnLinkLost(const std::string& key, const std::string& why) {
  auto it = tracked_.find(key);
  if (it != tracked_.end()) it->second.outbox.clear();
  FailCalls(key, PeerLane::kControl, why);
}

void PeerService::FailCalls(const std::string& key, std::optional<PeerLane> lane,
                            const std::string& why) {
  std::vector<uint64_t> failed;
  for (const auto& [id, call] : calls_) {
    if (call.key == key && (!lane || call.lane == *lane)) failed.push_back(id);
  }
  for (uint64_t id : failed) FinishCall(id, Status::Error("connection lost: " + why));
}

void PeerService::SendBulk(const std::string& key, Tracked& peer, wire::PeerMessage request) {
  if (peer.bulk.link) {
    peer.bulk.link->Send(request);
    return;
  }
  if (peer.bulk.outbox.size() >= kMaxOutbox) {
    FinishCall(request.request_id(),
               Status::Error("too many requests waiting for " + peer.ip.ToString()));
    return;
  }
  peer.bulk.outbox.push_back(std::move(request));
  if (!peer.bulk.pending && peer.hello_done) ConnectBulk(key, peer);
}

void PeerService::ConnectBulk(const std::string& key, Tracked& peer) {
  peer.bulk.generation = next_generation_++;
  const uint64_t generation = peer.bulk.generation;
  peer.bulk.pending = TcpConnection::Connect(
      loop_, peer.ip, options_.peer_port, kConnectTimeout,
      [this, key, generation](std::shared_ptr<TcpConnection> connection, int status) {
        auto it = tracked_.find(key);
        if (it == tracked_.end() || it->second.bulk.generation != generation) {
          if (connection) connection->Close();
          return;
        }
        Tracked& peer = it->second;
        peer.bulk.pending.reset();
        if (!connection) {
          CloseBulk(key, peer, "bulk connection failed: " + UvError(status));
          return;
        }
        connection->LimitStall(kLinkStall);
        if (options_.tls) connection->SecureWith(options_.tls->NewSession(/*client=*/true));
        peer.bulk.link = std::make_shared<PeerLink>(loop_, std::move(connection), clock_);
        peer.bulk.link->Start(
            [this, key](const wire::PeerMessage& message, int64_t) {
              if (message.request_id() == 0 || !IsResponse(message)) return;
              auto call = calls_.find(message.request_id());
              if (call != calls_.end() && call->second.key == key &&
                  call->second.lane == PeerLane::kBulk) {
                FinishCall(message.request_id(), message);
              }
            },
            [this, key, generation](const std::string& why) {
              auto it = tracked_.find(key);
              if (it == tracked_.end() || it->second.bulk.generation != generation) return;
              if (IsMalformed(why)) ++stats_.malformed_links;
              if (it->second.bulk.link->refused_by_tls() && options_.refusals != nullptr) {
                options_.refusals->Note("peer", it->second.ip, why);
              }
              CloseBulk(key, it->second, why);
            });
        for (const auto& queued : peer.bulk.outbox) peer.bulk.link->Send(queued);
        peer.bulk.outbox.clear();
      },
      options_.bind_ip);
}

void PeerService::CloseBulk(const std::string& key, Tracked& peer, const std::string& why) {
  if (peer.bulk.pending) peer.bulk.pending->Close();
  if (peer.bulk.link) peer.bulk.link->Close();
  peer.bulk = BulkLane{};
  FailCalls(key, PeerLane::kBulk, why);
}

void PeerService::OnOutgoingMessage(const std::string& key, const wire::PeerMessage& message,
                                    int64_t received_utc_nanos) {
  auto it = tracked_.find(key);
  if (it == tracked_.end()) return;
  Tracked& peer = it->second;
  if (message.has_hello()) {
    const wire::Hello& hello = message.hello();
    // Our own Hello back (a connection redirected to ourselves) would make us our own peer.
    const bool ourselves = hello.node_id() == options_.identity.id;
    if (ourselves || (!peer.short_id.empty() && hello.node_id().substr(0, 8) != peer.short_id)) {
      peer.view.status = ourselves
                             ? "this node itself answers on the peer port"
                             : "another node answers on the peer port (" + hello.node_id() + ")";
      peer.link->Close();
      peer.link.reset();
      peer.next_attempt = clock_.Monotonic() + kRetryNotSynod;
      CloseBulk(key, peer, peer.view.status);
      OnLinkLost(key, peer.view.status);
      Reschedule();
      return;
    }
    const bool first_hello = !peer.hello_done;
    peer.hello_done = true;
    peer.view.is_synod = true;
    peer.view.status = "synod";
    peer.view.node_id = hello.node_id();
    peer.view.name = hello.name();
    peer.view.api_port = static_cast<uint16_t>(hello.api_port());
    peer.view.hello = hello;
    if (first_hello) {
      peer.burst_left = kBurstProbes;
      peer.next_probe = clock_.Monotonic();
    }
    for (const auto& queued : peer.outbox) peer.link->Send(queued);
    peer.outbox.clear();
    if (!peer.bulk.outbox.empty() && !peer.bulk.pending && !peer.bulk.link) ConnectBulk(key, peer);
    if (peer_listener_.on_hello) peer_listener_.on_hello(peer.ip, hello);
    Reschedule();
    return;
  }
  if (message.has_time_response() && peer.hello_done) {
    const wire::TimeResponse& response = message.time_response();
    if (response.sequence() == 0 || response.sequence() >= peer.next_sequence) return;  // not ours
    TimeSample sample{response.t1_nanos(), response.t2_nanos(), response.t3_nanos(),
                      received_utc_nanos};
    if (peer.filter.Add(sample, clock_.Monotonic())) {
      if (time_sample_listener_) time_sample_listener_(peer.ip, sample);
      const auto best = peer.filter.Best();
      peer.view.rtt_ms = NanosToMillis(best->sample.RoundTripNanos());
      peer.view.offset_ms = NanosToMillis(best->sample.OffsetNanos());
      peer.view.samples = peer.filter.size();
    }
    return;
  }
  if (message.request_id() != 0 && IsResponse(message)) {
    auto call = calls_.find(message.request_id());
    if (call != calls_.end() && call->second.key == key) FinishCall(message.request_id(), message);
  }
}

void PeerService::Call(Ipv4 ip, wire::PeerMessage request, std::chrono::milliseconds timeout,
                       CallCallback done, PeerLane lane) {
  Tracked* peer = FindByIp(ip);
  if (peer == nullptr) {
    Track("", ip);
    peer = FindByIp(ip);
  }
  const std::string key = peer->short_id.empty() ? "@" + ip.ToString() : peer->short_id;
  const uint64_t id = next_request_id_++;
  request.set_request_id(id);
  PendingCall& call = calls_[id];
  call.key = key;
  call.lane = lane;
  call.done = std::move(done);
  call.deadline = std::make_unique<Timer>(loop_);
  call.deadline->Start(timeout, std::chrono::milliseconds(0), [this, id, ip] {
    FinishCall(id, Status::Error("no answer from " + ip.ToString() + " in time"));
  });
  if (lane == PeerLane::kBulk) {
    SendBulk(key, *peer, std::move(request));
    if (!peer->link && !peer->connecting) Connect(key, *peer);  // the bulk lane waits for it
  } else if (peer->link && peer->hello_done) {
    peer->link->Send(request);
  } else if (peer->outbox.size() < kMaxOutbox) {
    peer->outbox.push_back(std::move(request));
    // A caller is waiting: reconnect now rather than after the backoff; a refusal fails the
    // call at once instead of at its deadline.
    if (!peer->link && !peer->connecting) Connect(key, *peer);
  } else {
    FinishCall(id, Status::Error("too many requests waiting for " + ip.ToString()));
  }
}

void PeerService::SetFastProbe(std::optional<Ipv4> ip, std::chrono::milliseconds interval) {
  if (ip == fast_probe_ip_ && interval == fast_probe_interval_) return;
  fast_probe_ip_ = ip;
  fast_probe_interval_ = interval;
  if (!ip) return;
  Tracked* peer = FindByIp(*ip);
  if (peer == nullptr) {
    Track("", *ip);
    return;
  }
  // A new master: measure it in a burst, now.
  peer->burst_left = kBurstProbes;
  peer->next_probe = clock_.Monotonic();
  Reschedule();
}

void PeerService::RefreshHellos() {
  const wire::PeerMessage hello = HelloMessage();
  for (auto& [key, peer] : tracked_) {
    if (peer.link && peer.hello_done) peer.link->Send(hello);
  }
}

void PeerService::Send(Ipv4 ip, const wire::PeerMessage& message) {
  Tracked* peer = FindByIp(ip);
  if (peer != nullptr && peer->link && peer->hello_done) peer->link->Send(message);
}

void PeerService::FinishCall(uint64_t request_id, Result<wire::PeerMessage> outcome) {
  auto it = calls_.find(request_id);
  if (it == calls_.end()) return;
  auto done = std::move(it->second.done);
  calls_.erase(it);  // destroys the deadline timer; safe even from inside its callback
  done(std::move(outcome));
}

void PeerService::OnTick() {
  const MonoTime now = clock_.Monotonic();
  const MonoTime horizon = now + kCoalesce;
  for (auto& [key, peer] : tracked_) {
    if (!peer.link) {
      if (!peer.connecting && peer.next_attempt <= horizon) Connect(key, peer);
      continue;
    }
    if (!peer.hello_done || peer.next_probe > horizon) continue;
    wire::PeerMessage message;
    message.mutable_time_request()->set_sequence(peer.next_sequence++);
    message.mutable_time_request()->set_t1_nanos(clock_.WallUtcNanos());
    peer.link->SendNow(message);
    if (peer.burst_left > 0) {
      --peer.burst_left;
      peer.next_probe = now + kBurstSpacing;
    } else if (fast_probe_ip_ && *fast_probe_ip_ == peer.ip) {
      // Every node starts probing a new master clock at the same moment.
      peer.next_probe = now + probe_jitter_.Spread(fast_probe_interval_);
    } else {
      peer.next_probe = now + probe_jitter_.Spread(options_.probe_interval);
    }
  }
  Reschedule();
}

void PeerService::Reschedule() {
  std::optional<MonoTime> earliest;
  for (const auto& [key, peer] : tracked_) {
    std::optional<MonoTime> due;
    if (!peer.link && !peer.connecting) due = peer.next_attempt;
    if (peer.link && peer.hello_done) due = peer.next_probe;
    if (due && (!earliest || *due < *earliest)) earliest = due;
  }
  if (!earliest) {
    tick_timer_.Stop();  // nothing to do until a neighbour appears
    return;
  }
  const auto delay = std::max(
      std::chrono::milliseconds(0),
      std::chrono::duration_cast<std::chrono::milliseconds>(*earliest - clock_.Monotonic()));
  tick_timer_.Start(delay, std::chrono::milliseconds(0), [this] { OnTick(); });
}

}  // namespace synod
