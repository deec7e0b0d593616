// NeighborTable: the SDSS neighbour table and its refresh rules, without any I/O.
//
// Rules (from the SDSS seed, made precise):
// - A beacon from an unknown node adds it and starts a probe (a TCP timestamp exchange).
// - A known node is re-probed every `refresh_every` of its beacons, never on every beacon.
// - A refresh is also due when `refresh_every` beacon intervals pass with neither a beacon nor
//   a probe of it (a dead node sends no beacons).
// - A node that is unreachable when a refresh is due is removed (a later beacon makes it new
//   again). Only the first probe of a new node may fail without removing it: it stays,
//   unmeasured, until its first refresh, so that a node that beacons but never answers is
//   probed once per `refresh_every` beacons, not on every beacon.
// - Beacons that do not parse, come from outside our subnet or are our own are counted and
//   dropped.
// Time comes from the Clock and probes go through the ProbeTransport, so tests drive both.
// Loop thread only. Probe completions may arrive synchronously (fakes do that).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "net/ipv4.h"

namespace synod {

enum class ProbeFailure { kRefused, kReset, kTimedOut, kBadPayload, kOther };
const char* ProbeFailureName(ProbeFailure failure);

struct ProbeOutcome {
  bool ok = false;
  double peer_utc_seconds = 0;     // when ok: the timestamp the peer sent
  int64_t received_utc_nanos = 0;  // when ok: our UTC clock when it arrived
  ProbeFailure failure = ProbeFailure::kOther;
  std::string detail;  // when failed: what happened, for logs
};

class ProbeTransport {
 public:
  virtual ~ProbeTransport() = default;
  // Fetches the timestamp served at ip:port. `done` runs exactly once, on the loop thread.
  virtual void Probe(Ipv4 ip, uint16_t port, std::function<void(ProbeOutcome)> done) = 0;
};

struct NeighborTableOptions {
  std::string self_id;  // our NODE_UUID: our own beacons are ignored
  Subnet subnet;        // beacons from elsewhere are ignored
  Nanos beacon_interval = std::chrono::seconds(1);
  uint32_t refresh_every = 10;
};

struct Neighbor {
  std::string id;
  Ipv4 ip;
  uint16_t tcp_port = 0;
  std::optional<double> delay_ms;  // receiver time minus sender timestamp, last measurement
  uint64_t broadcast_count = 0;    // beacons received since it was added
  MonoTime last_seen{};
  int64_t last_seen_utc_nanos = 0;
  MonoTime last_probe_done{};  // when the last probe finished (either way)
  uint32_t beacons_since_probe = 0;
  bool probe_in_flight = false;
  uint64_t probe_generation = 0;
  std::string last_error;
};

struct DiscoveryStats {
  uint64_t beacons_accepted = 0;
  uint64_t beacons_malformed = 0;
  uint64_t beacons_foreign = 0;
  uint64_t beacons_own = 0;
  uint64_t probes_started = 0;
  uint64_t probes_ok = 0;
  uint64_t probes_refused = 0;
  uint64_t probes_reset = 0;
  uint64_t probes_timed_out = 0;
  uint64_t probes_bad_payload = 0;
  uint64_t probes_other_error = 0;
  uint64_t neighbors_removed = 0;
};

class NeighborTable {
 public:
  enum class Verdict { kAccepted, kMalformed, kForeignSubnet, kOwn };
  struct Listener {
    std::function<void(const Neighbor&)> on_added;
    std::function<void(const Neighbor&)> on_measured;
    std::function<void(const Neighbor&, const std::string& why)> on_removed;
  };

  NeighborTable(const Clock& clock, ProbeTransport& transport, NeighborTableOptions options);
  ~NeighborTable();

  void SetListener(Listener listener) { listener_ = std::move(listener); }

  // One received datagram and the address it came from.
  Verdict OnDatagram(std::string_view payload, Ipv4 source);
  // Silence is counted in intervals of this length (this node's own beacon interval).
  void SetBeaconInterval(Nanos interval) { options_.beacon_interval = interval; }
  // Starts the refreshes that silence made due. Call about once per beacon interval.
  void Tick();

  const std::map<std::string, Neighbor>& neighbors() const { return neighbors_; }
  const DiscoveryStats& stats() const { return stats_; }
  const std::string& last_malformed_reason() const { return last_malformed_reason_; }

 private:
  enum class ProbeKind { kFirst, kRefresh };
  void StartProbe(Neighbor& neighbor, ProbeKind kind);
  void OnProbeDone(const std::string& id, uint64_t generation, ProbeKind kind, Ipv4 ip,
                   uint16_t port, const ProbeOutcome& outcome);
  void CountFailure(ProbeFailure failure);

  const Clock& clock_;
  ProbeTransport& transport_;
  NeighborTableOptions options_;
  Listener listener_;
  std::map<std::string, Neighbor> neighbors_;
  DiscoveryStats stats_;
  std::string last_malformed_reason_;
  uint64_t next_generation_ = 1;
  // Probe callbacks hold a weak reference: a completion after destruction is dropped.
  std::shared_ptr<NeighborTable*> alive_;
};

}  // namespace synod
