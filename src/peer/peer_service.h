// PeerService: the native peer protocol endpoint of a node, and its clock probes.
//
// Serves Hello and TimeRequest on <bind>:<peer port> for every Synod node that connects. For
// each neighbour discovery reports (Track), it connects to the same peer port at the neighbour's
// address, checks with Hello that the node there is the one discovered, and then measures the
// clock offset and round trip with four-timestamp probes: a quick burst first, then one per
// probe interval, keeping the minimum-delay sample of a sliding window (8 samples).
// Other modules exchange their own messages through it: Call() sends a request to the Synod
// node at an address and waits for its response (or a timeout), Send() is one-way, and the
// request handler answers what arrives from others. Hello carries what the hello provider
// adds (cluster membership), and the peer listener hears every Hello and every lost peer. A
// neighbour that refuses the connection is a plain SDSS peer; it is asked again from time to time.
// Loop thread only.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/event_loop.h"
#include "core/jitter.h"
#include "core/node_identity.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "peer/peer_link.h"
#include "peer/peer_sender.h"
#include "timesync/time_sample.h"

namespace synod {

struct PeerOptions {
  NodeIdentity identity;
  std::string name;
  Ipv4 bind_ip;
  uint16_t peer_port = 7402;  // ours, and the one neighbours are assumed to use
  uint16_t api_port = 7400;
  uint16_t raft_port = 7401;
  // After the first burst. Every node probes every neighbour, so this is N^2 traffic: keep it slow.
  // 10 s re-measures as often as SDSS does (every 10 of a neighbour's 1 s beacons); the master
  // clock is probed faster (SetFastProbe).
  std::chrono::milliseconds probe_interval{10'000};
  // Set: every link is TLS with these credentials, and handshakes refused are noted in
  // `refusals` (which outlives the service).
  std::shared_ptr<const TlsConfig> tls{};
  TlsRefusals* refusals = nullptr;
};

// What is known of a tracked neighbour over the native protocol.
struct PeerView {
  bool is_synod = false;  // answered Hello with the expected id
  std::string status;     // "synod", "connecting", "not a Synod node", ...
  std::string node_id;
  std::string name;
  uint16_t api_port = 0;
  wire::Hello hello;  // the last Hello it sent
  std::optional<double> rtt_ms;
  std::optional<double> offset_ms;  // how far its clock is ahead of ours
  size_t samples = 0;
};

// Hostile or broken input met so far.
struct PeerStats {
  uint64_t ignored_messages = 0;  // a kind nobody handles here, or a response nobody asked for
  uint64_t malformed_links = 0;   // links closed for an oversized, bad or undecodable frame
};

class PeerService final : public PeerSender, public PeerReach {
 public:
  PeerService(EventLoop& loop, const Clock& clock, PeerOptions options);
  ~PeerService() override;

  Status Start();
  void Stop();

  // Follows the node discovered as `short_id` at `ip`. An empty short id accepts whichever
  // Synod node answers there (for --join addresses).
  void Track(const std::string& short_id, Ipv4 ip);
  void Untrack(const std::string& short_id);
  // PeerReach. HelloAt() is the Hello of this node's own connection to `ip` (a Hello a peer
  // sends unasked on a later connection replaces it).
  bool Reach(Ipv4 ip) override;
  void ForgetAddress(Ipv4 ip) override { Untrack("@" + ip.ToString()); }
  std::optional<wire::Hello> HelloAt(Ipv4 ip) const override;
  std::optional<PeerView> Lookup(const std::string& short_id) const;

  using Reply = std::function<void(wire::PeerMessage response)>;
  using RequestHandler = std::function<void(const wire::PeerMessage& request, Reply reply)>;
  struct PeerListener {
    std::function<void(Ipv4 ip, const wire::Hello& hello)> on_hello;
    std::function<void(Ipv4 ip)> on_lost;
  };

  // Handles every request kind other than Hello and time probes.
  void SetRequestHandler(RequestHandler handler) { request_handler_ = std::move(handler); }
  void SetHelloProvider(std::function<void(wire::Hello&)> provider) {
    hello_provider_ = std::move(provider);
  }
  void SetPeerListener(PeerListener listener) { peer_listener_ = std::move(listener); }
  // Sends a request to the Synod node at `ip` (connecting first if need be); `done` runs once,
  // with the response or an error (timeout, connection lost, not a Synod node). A bulk call
  // waits for the node to be known as Synod on the control lane, then opens the bulk lane.
  void Call(Ipv4 ip, wire::PeerMessage request, std::chrono::milliseconds timeout,
            CallCallback done, PeerLane lane) override;
  void Call(Ipv4 ip, wire::PeerMessage request, std::chrono::milliseconds timeout,
            CallCallback done) {
    Call(ip, std::move(request), timeout, std::move(done), PeerLane::kControl);
  }
  // Hears every accepted four-timestamp sample, with the address of the peer it measured.
  void SetTimeSampleListener(std::function<void(Ipv4 ip, const TimeSample&)> listener) {
    time_sample_listener_ = std::move(listener);
  }
  // Probes the peer at `ip` (the master clock) every `interval` instead of the slower default;
  // nothing to undo the previous choice. Starts following it if it was not tracked.
  void SetFastProbe(std::optional<Ipv4> ip, std::chrono::milliseconds interval);

  // Asks every connected Synod peer for a fresh Hello (answers reach the peer listener).
  void RefreshHellos();
  // One-way; dropped if there is no link to `ip` yet.
  void Send(Ipv4 ip, const wire::PeerMessage& message) override;
  const PeerStats& stats() const { return stats_; }

 private:
  // The second connection to a peer, opened on the first bulk call; only answers travel back.
  struct BulkLane {
    std::shared_ptr<TcpConnection> pending;  // connect in progress
    std::shared_ptr<PeerLink> link;
    uint64_t generation = 0;
    std::vector<wire::PeerMessage> outbox;  // requests waiting for the connection
  };
  struct Tracked {
    std::string short_id;
    Ipv4 ip;
    std::shared_ptr<TcpConnection> pending;  // connect in progress
    std::shared_ptr<PeerLink> link;
    bool connecting = false;
    bool hello_done = false;
    MonoTime next_attempt{};
    MonoTime next_probe{};
    int burst_left = 0;
    uint64_t next_sequence = 1;
    uint64_t generation = 0;  // tells a stale connect completion from the current one
    MinDelayFilter filter;
    PeerView view;
    std::vector<wire::PeerMessage> outbox;  // requests waiting for the Hello exchange
    BulkLane bulk;
  };
  struct PendingCall {
    std::string key;  // tracked peer it went to
    PeerLane lane = PeerLane::kControl;
    CallCallback done;
    std::unique_ptr<Timer> deadline;
  };

  void OnTick();
  // Sets the timer for the earliest connect or probe that is due; none while nothing is.
  void Reschedule();
  void Connect(const std::string& key, Tracked& peer);
  void Disconnect(Tracked& peer);
  void OnOutgoingMessage(const std::string& key, const wire::PeerMessage& message,
                         int64_t received_utc_nanos);
  void OnIncoming(std::shared_ptr<TcpConnection> connection);
  void OnLinkLost(const std::string& key, const std::string& why);
  // Fails the calls waiting on `key`'s lane (every lane: nullopt).
  void FailCalls(const std::string& key, std::optional<PeerLane> lane, const std::string& why);
  void SendBulk(const std::string& key, Tracked& peer, wire::PeerMessage request);
  void ConnectBulk(const std::string& key, Tracked& peer);
  void CloseBulk(const std::string& key, Tracked& peer, const std::string& why);
  void FinishCall(uint64_t request_id, Result<wire::PeerMessage> outcome);
  Tracked* FindByIp(Ipv4 ip);
  wire::PeerMessage HelloMessage() const;

  EventLoop& loop_;
  const Clock& clock_;
  PeerOptions options_;
  TcpListener listener_;
  Timer tick_timer_;
  std::map<std::string, Tracked> tracked_;
  std::set<std::shared_ptr<PeerLink>> incoming_;
  uint64_t next_generation_ = 1;
  uint64_t next_request_id_ = 1;
  std::map<uint64_t, PendingCall> calls_;
  RequestHandler request_handler_;
  PeerStats stats_;
  std::function<void(wire::Hello&)> hello_provider_;
  PeerListener peer_listener_;
  std::function<void(Ipv4, const TimeSample&)> time_sample_listener_;
  std::optional<Ipv4> fast_probe_ip_;
  std::chrono::milliseconds fast_probe_interval_{1000};
  Jitter probe_jitter_{0.1};
};

}  // namespace synod
