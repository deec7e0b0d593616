#include "peer/peer_service.h"

#include <spdlog/spdlog.h>

#include "net/uv_util.h"

namespace synod {
namespace {

constexpr uint32_t kProtocolVersion = 1;
// Work due within this much of the earliest due time is done in the same wake-up.
constexpr auto kCoalesce = std::chrono::milliseconds(50);
constexpr auto kConnectTimeout = std::chrono::seconds(2);
constexpr auto kRetryAfterError = std::chrono::seconds(2);
constexpr auto kRetryNotSynod = std::chrono::seconds(10);
constexpr int kBurstProbes = 6;
constexpr auto kBurstSpacing = std::chrono::milliseconds(100);
constexpr size_t kMaxIncomingLinks = 1024;

}  // namespace

PeerService::PeerService(EventLoop& loop, const Clock& clock, PeerOptions options)
    : loop_(loop),
      clock_(clock),
      options_(std::move(options)),
      listener_(loop),
      tick_timer_(loop) {}

PeerService::~PeerService() { Stop(); }

Status PeerService::Start() {
  Status status = listener_.Listen(
      options_.bind_ip, options_.peer_port, "peer",
      [this](std::shared_ptr<TcpConnection> connection) { OnIncoming(std::move(connection)); });
  return status;
}

void PeerService::Stop() {
  tick_timer_.Stop();
  listener_.Close();
  for (auto& [id, peer] : tracked_) Disconnect(peer);
  tracked_.clear();
  for (const auto& link : incoming_) link->Close();
  incoming_.clear();
}

wire::PeerMessage PeerService::HelloMessage() const {
  wire::PeerMessage message;
  wire::Hello* hello = message.mutable_hello();
  hello->set_protocol_version(kProtocolVersion);
  hello->set_node_id(options_.identity.id);
  hello->set_name(options_.name);
  hello->set_api_port(options_.api_port);
  hello->set_peer_port(options_.peer_port);
  return message;
}

void PeerService::OnIncoming(std::shared_ptr<TcpConnection> connection) {
  if (incoming_.size() >= kMaxIncomingLinks) {
    connection->Close();
    return;
  }
  auto link = std::make_shared<PeerLink>(std::move(connection), clock_);
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
            link->Send(reply);
            break;
          }
          default:
            spdlog::debug("peer: ignoring message kind {} from {}",
                          static_cast<int>(message.body_case()), link->peer_ip().ToString());
        }
      },
      [this, weak](const std::string& why) {
        if (auto link = weak.lock()) {
          if (why != "closed by peer") {
            spdlog::debug("peer: incoming link from {} closed: {}", link->peer_ip().ToString(),
                          why);
          }
          incoming_.erase(link);
        }
      });
}

void PeerService::Track(const std::string& short_id, Ipv4 ip) {
  auto [it, inserted] = tracked_.try_emplace(short_id);
  Tracked& peer = it->second;
  if (!inserted && peer.ip == ip) return;
  Disconnect(peer);
  peer = Tracked{};
  peer.short_id = short_id;
  peer.ip = ip;
  peer.view.status = "connecting";
  peer.next_attempt = clock_.Monotonic();
  Connect(peer);
  Reschedule();
}

void PeerService::Untrack(const std::string& short_id) {
  auto it = tracked_.find(short_id);
  if (it == tracked_.end()) return;
  Disconnect(it->second);
  tracked_.erase(it);
}

void PeerService::Disconnect(Tracked& peer) {
  if (peer.pending) peer.pending->Close();
  if (peer.link) peer.link->Close();
  peer.pending.reset();
  peer.link.reset();
}

std::optional<PeerView> PeerService::Lookup(const std::string& short_id) const {
  auto it = tracked_.find(short_id);
  if (it == tracked_.end()) return std::nullopt;
  return it->second.view;
}

void PeerService::Connect(Tracked& peer) {
  peer.connecting = true;
  peer.generation = next_generation_++;
  const std::string id = peer.short_id;
  const uint64_t generation = peer.generation;
  peer.pending = TcpConnection::Connect(
      loop_, peer.ip, options_.peer_port, kConnectTimeout,
      [this, id, generation](std::shared_ptr<TcpConnection> connection, int status) {
        auto it = tracked_.find(id);
        if (it == tracked_.end() || it->second.generation != generation) {
          if (connection) connection->Close();
          return;
        }
        Tracked& peer = it->second;
        peer.connecting = false;
        peer.pending.reset();
        if (!connection) {
          const bool refused = status == UV_ECONNREFUSED;
          peer.view.status =
              refused ? "not a Synod node (peer port refused)" : "unreachable: " + UvError(status);
          peer.next_attempt = clock_.Monotonic() + (refused ? kRetryNotSynod : kRetryAfterError);
          Reschedule();
          return;
        }
        peer.link = std::make_shared<PeerLink>(std::move(connection), clock_);
        peer.link->Start([this, id](const wire::PeerMessage& message,
                                    int64_t received) { OnOutgoingMessage(id, message, received); },
                         [this, id, generation](const std::string& why) {
                           auto it = tracked_.find(id);
                           if (it == tracked_.end() || it->second.generation != generation) return;
                           spdlog::debug("peer: link to {} closed: {}", id, why);
                           it->second.link.reset();
                           it->second.hello_done = false;
                           it->second.view.is_synod = false;
                           it->second.view.status = "disconnected: " + why;
                           it->second.next_attempt = clock_.Monotonic() + kRetryAfterError;
                           Reschedule();
                         });
        peer.link->Send(HelloMessage());
      },
      options_.bind_ip);
}

void PeerService::OnOutgoingMessage(const std::string& short_id, const wire::PeerMessage& message,
                                    int64_t received_utc_nanos) {
  auto it = tracked_.find(short_id);
  if (it == tracked_.end()) return;
  Tracked& peer = it->second;
  if (message.has_hello()) {
    const wire::Hello& hello = message.hello();
    if (hello.node_id().substr(0, 8) != short_id) {
      peer.view.status = "another node answers on the peer port (" + hello.node_id() + ")";
      peer.link->Close();
      peer.link.reset();
      peer.next_attempt = clock_.Monotonic() + kRetryNotSynod;
      Reschedule();
      return;
    }
    peer.hello_done = true;
    peer.view.is_synod = true;
    peer.view.status = "synod";
    peer.view.node_id = hello.node_id();
    peer.view.name = hello.name();
    peer.view.api_port = static_cast<uint16_t>(hello.api_port());
    peer.burst_left = kBurstProbes;
    peer.next_probe = clock_.Monotonic();
    Reschedule();
    return;
  }
  if (message.has_time_response() && peer.hello_done) {
    const wire::TimeResponse& response = message.time_response();
    if (response.sequence() == 0 || response.sequence() >= peer.next_sequence) return;  // not ours
    TimeSample sample{response.t1_nanos(), response.t2_nanos(), response.t3_nanos(),
                      received_utc_nanos};
    if (peer.filter.Add(sample, clock_.Monotonic())) {
      const auto best = peer.filter.Best();
      peer.view.rtt_ms = NanosToMillis(best->sample.RoundTripNanos());
      peer.view.offset_ms = NanosToMillis(best->sample.OffsetNanos());
      peer.view.samples = peer.filter.size();
    }
  }
}

void PeerService::OnTick() {
  const MonoTime now = clock_.Monotonic();
  const MonoTime horizon = now + kCoalesce;
  for (auto& [id, peer] : tracked_) {
    if (!peer.link) {
      if (!peer.connecting && peer.next_attempt <= horizon) Connect(peer);
      continue;
    }
    if (!peer.hello_done || peer.next_probe > horizon) continue;
    wire::PeerMessage message;
    message.mutable_time_request()->set_sequence(peer.next_sequence++);
    message.mutable_time_request()->set_t1_nanos(clock_.WallUtcNanos());
    peer.link->Send(message);
    if (peer.burst_left > 0) {
      --peer.burst_left;
      peer.next_probe = now + kBurstSpacing;
    } else {
      peer.next_probe = now + options_.probe_interval;
    }
  }
  Reschedule();
}

void PeerService::Reschedule() {
  std::optional<MonoTime> earliest;
  for (const auto& [id, peer] : tracked_) {
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
