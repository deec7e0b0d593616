// GET /metrics: one node's figures in the Prometheus text format (version 0.0.4).
//
// Gathered when scraped, from what the modules already keep (discovery counters, the Raft
// engine's indexes, the replicated member list, the clock estimate, the ranks ledger and inbox, the
// timers and this node's firings),
// so no module carries metrics code of its own. Loop thread only.
#pragma once

#include <string>

#include "api/access_gate.h"
#include "clock/clock_service.h"
#include "consensus/consensus_service.h"
#include "discovery/neighbor_table.h"
#include "filesync/file_index.h"
#include "filesync/sync_service.h"
#include "kv/kv_state.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "peer/peer_service.h"
#include "ranks/ranks_service.h"
#include "timers/timer_service.h"

namespace synod {

struct MetricsSources {
  const NeighborTable& discovery;
  const ConsensusService& consensus;
  ClockService& clock;
  const RanksService& ranks;
  const KvState& kv;
  const TimerService& timers;
  const FileIndex& files;
  const SyncService* sync = nullptr;  // null: this node syncs no folder
  double uptime_seconds = 0;
  const AccessGate* access = nullptr;  // null: no --api-token-file, every request allowed
  bool cluster_tls = false;            // cluster traffic is TLS (a cluster key or certificates)
  const TlsRefusals* tls_refusals = nullptr;
  const HttpServer* http = nullptr;  // the API's server: its connection limits at work
  const PeerStats* peer = nullptr;
};

std::string RenderMetrics(const MetricsSources& sources);

}  // namespace synod
