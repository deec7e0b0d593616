// JSON views of the neighbour table, shared by the HTTP API and its tests.
#pragma once

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "discovery/neighbor_table.h"
#include "peer/peer_service.h"

namespace synod {

// One object per neighbour: id, ip, tcp_port, sdss_delay_ms (null until measured),
// broadcast_count, last_seen (UTC epoch seconds), last_seen_age_ms, last_error, and for Synod
// peers synod=true, node_id, name, api_port, rtt_ms, offset_ms.
nlohmann::json NeighborsJson(const NeighborTable& table, const PeerService& peers,
                             const Clock& clock);

nlohmann::json DiscoveryStatsJson(const DiscoveryStats& stats);

}  // namespace synod
