#include "discovery/sdss_service.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "discovery/beacon.h"
#include "discovery/timestamp_codec.h"
#include "net/uv_util.h"

namespace synod {
namespace {

constexpr size_t kMaxTimestampBytes = 64;
constexpr size_t kMaxServedClients = 1024;
constexpr auto kServeDeadline = std::chrono::seconds(2);
// A server that waits for the client's timestamp before sending its own (the seed's diagram
// shows both directions) gets ours after this long without data.
constexpr auto kNudgeAfter = std::chrono::milliseconds(300);

ProbeFailure FailureFor(int uv_status) {
  switch (uv_status) {
    case UV_ECONNREFUSED:
      return ProbeFailure::kRefused;
    case UV_ECONNRESET:
    case UV_EPIPE:
      return ProbeFailure::kReset;
    case UV_ETIMEDOUT:
      return ProbeFailure::kTimedOut;
    default:
      return ProbeFailure::kOther;
  }
}

}  // namespace

// One probe in progress: connect, read the peer's timestamp until it closes.
struct ProbeState : std::enable_shared_from_this<ProbeState> {
  const Clock* clock;
  std::function<void(ProbeOutcome)> done;
  std::shared_ptr<TcpConnection> connection;
  std::unique_ptr<Timer> deadline;
  std::unique_ptr<Timer> nudge;
  std::string received;
  int64_t first_byte_utc_nanos = 0;
  bool finished = false;

  void Finish(ProbeOutcome outcome) {
    if (finished) return;
    finished = true;
    deadline.reset();
    nudge.reset();
    if (connection) connection->Close();
    auto callback = std::move(done);
    callback(std::move(outcome));
  }

  void Fail(ProbeFailure failure, std::string detail) {
    ProbeOutcome outcome;
    outcome.failure = failure;
    outcome.detail = std::move(detail);
    Finish(std::move(outcome));
  }

  void Decode() {
    Result<double> timestamp = DecodeTimestamp(received);
    if (!timestamp.ok()) {
      Fail(ProbeFailure::kBadPayload, timestamp.error());
      return;
    }
    ProbeOutcome outcome;
    outcome.ok = true;
    outcome.peer_utc_seconds = timestamp.value();
    outcome.received_utc_nanos = first_byte_utc_nanos;
    Finish(std::move(outcome));
  }
};

SdssService::SdssService(EventLoop& loop, const Clock& clock, SdssOptions options)
    : loop_(loop),
      clock_(clock),
      options_(std::move(options)),
      table_(clock, *this,
             NeighborTableOptions{options_.self_id, options_.subnet,
                                  std::chrono::duration_cast<Nanos>(options_.beacon_interval), 10}),
      timestamp_server_(loop),
      beacon_timer_(loop) {}

SdssService::~SdssService() { Stop(); }

Status SdssService::Start() {
  Status status = timestamp_server_.Listen(
      options_.bind_ip, 0, "SDSS timestamp",
      [this](std::shared_ptr<TcpConnection> client) { ServeTimestamp(std::move(client)); });
  if (!status.ok()) return status;
  if (status = OpenReceiver(); !status.ok()) return status;
  if (status = OpenSender(); !status.ok()) return status;
  beacon_ = FormatBeacon(Beacon{options_.self_id, timestamp_server_.port()});
  StartBeacons(std::chrono::milliseconds(0));
  return Status::Ok();
}

void SdssService::SetBeaconInterval(std::chrono::milliseconds interval) {
  if (interval == options_.beacon_interval) return;
  options_.beacon_interval = interval;
  table_.SetBeaconInterval(std::chrono::duration_cast<Nanos>(interval));
  StartBeacons(interval);
}

void SdssService::StartBeacons(std::chrono::milliseconds first) {
  // One wake-up per interval does everything periodic: silence is counted in intervals anyway.
  beacon_timer_.Start(first, options_.beacon_interval, [this] {
    SendBeacon();
    table_.Tick();
    SweepServedClients();
  });
  spdlog::info("discovery: beaconing '{}' to {}:{} every {} ms", beacon_,
               options_.broadcast_ip.ToString(), options_.broadcast_port,
               options_.beacon_interval.count());
}

void SdssService::Stop() {
  beacon_timer_.Stop();
  for (auto& weak : probes_) {
    if (auto probe = weak.lock()) probe->Fail(ProbeFailure::kOther, "discovery stopped");
  }
  probes_.clear();
  timestamp_server_.Close();
  for (auto& [client, since] : served_) client->Close();
  served_.clear();
  if (receiver_ != nullptr) {
    uv_udp_recv_stop(receiver_);
    CloseAndDelete(receiver_);
    receiver_ = nullptr;
  }
  if (sender_ != nullptr) {
    CloseAndDelete(sender_);
    sender_ = nullptr;
  }
}

Status SdssService::OpenReceiver() {
  const std::string where = "UDP port " + std::to_string(options_.broadcast_port);
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return Status::Error(std::string("cannot create a UDP socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  sockaddr_in any = Ipv4{}.ToSockaddr(options_.broadcast_port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
    Status error =
        Status::Error("cannot bind " + where + " for discovery: " + std::strerror(errno));
    ::close(fd);
    return error;
  }
  receiver_ = new uv_udp_t;
  uv_udp_init(loop_.raw(), receiver_);
  receiver_->data = this;
  if (int rc = uv_udp_open(receiver_, fd); rc != 0) {
    ::close(fd);
    return Status::Error("cannot use " + where + ": " + UvError(rc));
  }
  uv_udp_recv_start(
      receiver_, LendReadBuffer,
      [](uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
         unsigned flags) {
        auto* self = static_cast<SdssService*>(handle->data);
        if (self != nullptr && nread >= 0 && from != nullptr && from->sa_family == AF_INET) {
          const Ipv4 source = Ipv4::FromSockaddr(*reinterpret_cast<const sockaddr_in*>(from));
          // A truncated datagram is oversized by definition: hand the parser more than its limit.
          std::string_view payload(buf->base, static_cast<size_t>(nread));
          if (flags & UV_UDP_PARTIAL) payload = std::string_view(buf->base, kMaxBeaconBytes + 1);
          if (self->table_.OnDatagram(payload, source) == NeighborTable::Verdict::kMalformed) {
            spdlog::debug("discovery: dropped beacon: {}", self->table_.last_malformed_reason());
          }
        }
      });
  return Status::Ok();
}

Status SdssService::OpenSender() {
  sender_ = new uv_udp_t;
  uv_udp_init(loop_.raw(), sender_);
  sockaddr_in own = options_.bind_ip.ToSockaddr(0);
  int rc = uv_udp_bind(sender_, reinterpret_cast<sockaddr*>(&own), 0);
  if (rc == 0) rc = uv_udp_set_broadcast(sender_, 1);
  if (rc != 0) {
    return Status::Error("cannot open the beacon sender on " + options_.bind_ip.ToString() + ": " +
                         UvError(rc));
  }
  return Status::Ok();
}

void SdssService::SendBeacon() {
  sockaddr_in target = options_.broadcast_ip.ToSockaddr(options_.broadcast_port);
  uv_buf_t buf = uv_buf_init(beacon_.data(), static_cast<unsigned>(beacon_.size()));
  int rc = uv_udp_try_send(sender_, &buf, 1, reinterpret_cast<sockaddr*>(&target));
  if (rc < 0 && rc != UV_EAGAIN && send_errors_++ % 60 == 0) {
    spdlog::warn("discovery: cannot send beacon to {}:{}: {}", options_.broadcast_ip.ToString(),
                 options_.broadcast_port, UvError(rc));
  }
}

void SdssService::ServeTimestamp(std::shared_ptr<TcpConnection> client) {
  if (served_.size() >= kMaxServedClients) {
    client->Close();
    return;
  }
  client->Write(EncodeTimestamp(NanosToSeconds(clock_.WallUtcNanos())));
  client->ShutdownWrite();
  // Read (and ignore) what the client sends until it closes, so that closing never resets a
  // connection that still has unread data.
  std::weak_ptr<TcpConnection> weak = client;
  client->Start([](std::string_view) {},
                [this, weak](int) {
                  if (auto c = weak.lock()) served_.erase(c);
                });
  served_.emplace(std::move(client), clock_.Monotonic());
}

void SdssService::SweepServedClients() {
  const MonoTime now = clock_.Monotonic();
  for (auto it = served_.begin(); it != served_.end();) {
    if (now - it->second >= kServeDeadline) {
      it->first->Close();
      it = served_.erase(it);
    } else {
      ++it;
    }
  }
}

void SdssService::Probe(Ipv4 ip, uint16_t port, std::function<void(ProbeOutcome)> done) {
  auto probe = std::make_shared<ProbeState>();
  probe->clock = &clock_;
  probe->done = std::move(done);
  probe->deadline = std::make_unique<Timer>(loop_);
  probe->deadline->Start(options_.probe_timeout, std::chrono::milliseconds(0), [probe] {
    probe->Fail(ProbeFailure::kTimedOut, "no complete timestamp within the probe timeout");
  });
  std::erase_if(probes_, [](const std::weak_ptr<ProbeState>& p) { return p.expired(); });
  probes_.push_back(probe);
  EventLoop* loop = &loop_;
  auto pending = TcpConnection::Connect(
      loop_, ip, port, options_.probe_timeout,
      [loop, probe](std::shared_ptr<TcpConnection> connection, int status) {
        if (probe->finished) {
          if (connection) connection->Close();
          return;
        }
        if (!connection) {
          probe->Fail(FailureFor(status), UvError(status));
          return;
        }
        probe->connection = connection;
        probe->nudge = std::make_unique<Timer>(*loop);
        probe->nudge->Start(kNudgeAfter, std::chrono::milliseconds(0), [probe] {
          if (probe->received.empty() && probe->connection) {
            probe->connection->Write(EncodeTimestamp(NanosToSeconds(probe->clock->WallUtcNanos())));
          }
        });
        std::weak_ptr<ProbeState> weak = probe;
        connection->Start(
            [weak](std::string_view bytes) {
              auto probe = weak.lock();
              if (!probe || probe->finished) return;
              if (probe->received.empty())
                probe->first_byte_utc_nanos = probe->clock->WallUtcNanos();
              probe->received.append(bytes);
              if (probe->received.size() > kMaxTimestampBytes) {
                probe->Fail(ProbeFailure::kBadPayload, "peer sent more than 64 bytes");
              }
            },
            [weak](int status) {
              auto probe = weak.lock();
              if (!probe || probe->finished) return;
              if (status == 0) {
                probe->Decode();
              } else if (DecodeTimestamp(probe->received).ok()) {
                probe->Decode();  // a reset after a whole timestamp still measured the delay
              } else {
                probe->Fail(FailureFor(status), UvError(status));
              }
            });
      },
      options_.bind_ip);
  if (!probe->finished) probe->connection = std::move(pending);  // so that Finish() cancels it
}

}  // namespace synod
