#include "api/neighbors_json.h"

namespace synod {

nlohmann::json NeighborsJson(const NeighborTable& table, const PeerService& peers,
                             const Clock& clock) {
  nlohmann::json list = nlohmann::json::array();
  const MonoTime now = clock.Monotonic();
  for (const auto& [id, neighbor] : table.neighbors()) {
    nlohmann::json entry = {
        {"id", id},
        {"ip", neighbor.ip.ToString()},
        {"tcp_port", neighbor.tcp_port},
        {"sdss_delay_ms", nullptr},
        {"broadcast_count", neighbor.broadcast_count},
        {"last_seen", NanosToSeconds(neighbor.last_seen_utc_nanos)},
        {"last_seen_age_ms",
         std::chrono::duration_cast<std::chrono::milliseconds>(now - neighbor.last_seen).count()},
        {"last_error", neighbor.last_error},
        {"synod", false},
        {"rtt_ms", nullptr},
        {"offset_ms", nullptr},
    };
    if (neighbor.delay_ms) entry["sdss_delay_ms"] = *neighbor.delay_ms;
    if (auto peer = peers.Lookup(id)) {
      entry["peer_status"] = peer->status;
      if (peer->is_synod) {
        entry["synod"] = true;
        entry["node_id"] = peer->node_id;
        entry["name"] = peer->name;
        entry["api_port"] = peer->api_port;
        entry["time_samples"] = peer->samples;
        if (peer->rtt_ms) entry["rtt_ms"] = *peer->rtt_ms;
        if (peer->offset_ms) entry["offset_ms"] = *peer->offset_ms;
      }
    }
    list.push_back(std::move(entry));
  }
  return list;
}

nlohmann::json DiscoveryStatsJson(const DiscoveryStats& stats) {
  return {
      {"beacons_accepted", stats.beacons_accepted},
      {"beacons_malformed", stats.beacons_malformed},
      {"beacons_foreign_subnet", stats.beacons_foreign},
      {"beacons_own", stats.beacons_own},
      {"probes_started", stats.probes_started},
      {"probes_ok", stats.probes_ok},
      {"probes_refused", stats.probes_refused},
      {"probes_reset", stats.probes_reset},
      {"probes_timed_out", stats.probes_timed_out},
      {"probes_bad_payload", stats.probes_bad_payload},
      {"probes_other_error", stats.probes_other_error},
      {"neighbors_removed", stats.neighbors_removed},
  };
}

}  // namespace synod
