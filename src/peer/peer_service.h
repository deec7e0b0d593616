// PeerService: the native peer protocol endpoint of a node, and its clock probes.
//
// Serves Hello and TimeRequest on <bind>:<peer port> for every Synod node that connects. For
// each neighbour discovery reports (Track), it connects to the same peer port at the neighbour's
// address, checks with Hello that the node there is the one discovered, and then measures the
// clock offset and round trip with four-timestamp probes: a quick burst first, then one per
// probe interval, keeping the minimum-delay sample of a sliding window (8 samples). A neighbour
// that refuses the connection is a plain SDSS peer; it is asked again from time to time. Loop
// thread only.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/clock.h"
#include "core/event_loop.h"
#include "core/node_identity.h"
#include "net/tcp.h"
#include "peer/peer_link.h"
#include "timesync/time_sample.h"

namespace synod {

struct PeerOptions {
  NodeIdentity identity;
  std::string name;
  Ipv4 bind_ip;
  uint16_t peer_port = 7402;  // ours, and the one neighbours are assumed to use
  uint16_t api_port = 7400;
  // After the first burst. Every node probes every neighbour, so this is N^2 traffic: keep it slow.
  std::chrono::milliseconds probe_interval{4000};
};

// What is known of a tracked neighbour over the native protocol.
struct PeerView {
  bool is_synod = false;  // answered Hello with the expected id
  std::string status;     // "synod", "connecting", "not a Synod node", ...
  std::string node_id;
  std::string name;
  uint16_t api_port = 0;
  std::optional<double> rtt_ms;
  std::optional<double> offset_ms;  // how far its clock is ahead of ours
  size_t samples = 0;
};

class PeerService {
 public:
  PeerService(EventLoop& loop, const Clock& clock, PeerOptions options);
  ~PeerService();

  Status Start();
  void Stop();

  void Track(const std::string& short_id, Ipv4 ip);
  void Untrack(const std::string& short_id);
  std::optional<PeerView> Lookup(const std::string& short_id) const;

 private:
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
  };

  void OnTick();
  // Sets the timer for the earliest connect or probe that is due; none while nothing is.
  void Reschedule();
  void Connect(Tracked& peer);
  void Disconnect(Tracked& peer);
  void OnOutgoingMessage(const std::string& short_id, const wire::PeerMessage& message,
                         int64_t received_utc_nanos);
  void OnIncoming(std::shared_ptr<TcpConnection> connection);
  wire::PeerMessage HelloMessage() const;

  EventLoop& loop_;
  const Clock& clock_;
  PeerOptions options_;
  TcpListener listener_;
  Timer tick_timer_;
  std::map<std::string, Tracked> tracked_;
  std::set<std::shared_ptr<PeerLink>> incoming_;
  uint64_t next_generation_ = 1;
};

}  // namespace synod
