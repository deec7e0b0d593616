#include "discovery/neighbor_table.h"

#include "discovery/beacon.h"

namespace synod {

const char* ProbeFailureName(ProbeFailure failure) {
  switch (failure) {
    case ProbeFailure::kRefused:
      return "connection refused";
    case ProbeFailure::kReset:
      return "connection reset";
    case ProbeFailure::kTimedOut:
      return "timed out";
    case ProbeFailure::kBadPayload:
      return "bad timestamp";
    case ProbeFailure::kOther:
      return "error";
  }
  return "error";
}

NeighborTable::NeighborTable(const Clock& clock, ProbeTransport& transport,
                             NeighborTableOptions options)
    : clock_(clock),
      transport_(transport),
      options_(std::move(options)),
      alive_(std::make_shared<NeighborTable*>(this)) {}

NeighborTable::~NeighborTable() = default;

NeighborTable::Verdict NeighborTable::OnDatagram(std::string_view payload, Ipv4 source) {
  if (!options_.subnet.Contains(source)) {
    ++stats_.beacons_foreign;
    return Verdict::kForeignSubnet;
  }
  Result<Beacon> beacon = ParseBeacon(payload);
  if (!beacon.ok()) {
    ++stats_.beacons_malformed;
    last_malformed_reason_ = beacon.error() + " from " + source.ToString();
    return Verdict::kMalformed;
  }
  const Beacon& b = beacon.value();
  if (b.node_id == options_.self_id) {
    ++stats_.beacons_own;
    return Verdict::kOwn;
  }
  ++stats_.beacons_accepted;
  auto [it, inserted] = neighbors_.try_emplace(b.node_id);
  Neighbor& neighbor = it->second;
  const bool moved = !inserted && (neighbor.ip != source || neighbor.tcp_port != b.tcp_port);
  neighbor.id = b.node_id;
  neighbor.ip = source;
  neighbor.tcp_port = b.tcp_port;
  neighbor.last_seen = clock_.Monotonic();
  neighbor.last_seen_utc_nanos = clock_.WallUtcNanos();
  ++neighbor.broadcast_count;
  ++neighbor.beacons_since_probe;
  if (inserted) {
    if (listener_.on_added) listener_.on_added(neighbor);
    StartProbe(neighbor, ProbeKind::kFirst);
  } else if (!neighbor.probe_in_flight && moved) {
    StartProbe(neighbor, ProbeKind::kFirst);  // a new endpoint is measured like a new node
  } else if (!neighbor.probe_in_flight && neighbor.beacons_since_probe >= options_.refresh_every) {
    StartProbe(neighbor, ProbeKind::kRefresh);
  }
  return Verdict::kAccepted;
}

void NeighborTable::Tick() {
  const MonoTime now = clock_.Monotonic();
  const Nanos silence_limit = options_.beacon_interval * options_.refresh_every;
  std::vector<std::string> due;
  for (const auto& [id, neighbor] : neighbors_) {
    if (neighbor.probe_in_flight) continue;
    const MonoTime last_heard = std::max(neighbor.last_seen, neighbor.last_probe_done);
    if (now - last_heard >= silence_limit) due.push_back(id);
  }
  for (const std::string& id : due) {
    auto it = neighbors_.find(id);
    if (it != neighbors_.end() && !it->second.probe_in_flight) {
      StartProbe(it->second, ProbeKind::kRefresh);
    }
  }
}

void NeighborTable::StartProbe(Neighbor& neighbor, ProbeKind kind) {
  neighbor.probe_in_flight = true;
  neighbor.beacons_since_probe = 0;
  neighbor.probe_generation = next_generation_++;
  ++stats_.probes_started;
  std::weak_ptr<NeighborTable*> alive = alive_;
  const std::string id = neighbor.id;
  const uint64_t generation = neighbor.probe_generation;
  const Ipv4 ip = neighbor.ip;
  const uint16_t port = neighbor.tcp_port;
  // `neighbor` must not be used after this call: a synchronous completion may remove it.
  transport_.Probe(ip, port, [alive, id, generation, kind, ip, port](ProbeOutcome outcome) {
    if (auto table = alive.lock()) (*table)->OnProbeDone(id, generation, kind, ip, port, outcome);
  });
}

void NeighborTable::CountFailure(ProbeFailure failure) {
  switch (failure) {
    case ProbeFailure::kRefused:
      ++stats_.probes_refused;
      break;
    case ProbeFailure::kReset:
      ++stats_.probes_reset;
      break;
    case ProbeFailure::kTimedOut:
      ++stats_.probes_timed_out;
      break;
    case ProbeFailure::kBadPayload:
      ++stats_.probes_bad_payload;
      break;
    case ProbeFailure::kOther:
      ++stats_.probes_other_error;
      break;
  }
}

void NeighborTable::OnProbeDone(const std::string& id, uint64_t generation, ProbeKind kind, Ipv4 ip,
                                uint16_t port, const ProbeOutcome& outcome) {
  auto it = neighbors_.find(id);
  if (it == neighbors_.end() || it->second.probe_generation != generation) return;  // stale
  Neighbor& neighbor = it->second;
  neighbor.probe_in_flight = false;
  if (neighbor.ip != ip || neighbor.tcp_port != port) {
    // It announced a new endpoint while we were probing the old one: measure the new one.
    StartProbe(neighbor, ProbeKind::kFirst);
    return;
  }
  neighbor.last_probe_done = clock_.Monotonic();
  if (outcome.ok) {
    ++stats_.probes_ok;
    neighbor.delay_ms =
        (NanosToSeconds(outcome.received_utc_nanos) - outcome.peer_utc_seconds) * 1000.0;
    neighbor.last_error.clear();
    if (listener_.on_measured) listener_.on_measured(neighbor);
    return;
  }
  CountFailure(outcome.failure);
  neighbor.last_error = ProbeFailureName(outcome.failure);
  if (!outcome.detail.empty() && outcome.detail != neighbor.last_error) {
    neighbor.last_error += ": " + outcome.detail;
  }
  if (kind == ProbeKind::kRefresh) {
    ++stats_.neighbors_removed;
    Neighbor removed = std::move(neighbor);
    neighbors_.erase(it);
    if (listener_.on_removed) listener_.on_removed(removed, removed.last_error);
  }
}

}  // namespace synod
