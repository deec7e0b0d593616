// The replicated key/value surface over HTTP:
//   GET    /v1/kv/{key}        -> {"key", "value"}, 404 if absent; linearizable, or this node's
//                              copy with ?stale (api/consistent_read.h)
//   PUT    /v1/kv/{key}        body = value -> {"key", "index"} once committed
//   DELETE /v1/kv/{key}        -> {"key", "index"}, 404 if absent
//   POST   /v1/kv              {"entries": {"key": "value", ...}} (up to kMaxBatchKeys) ->
//                              {"written": n, "index": last index}, all committed
// PUT and DELETE accept an Idempotency-Key header (1-128 bytes): a retry with the same key returns
// the first answer and is applied once, even across leader changes (a batch's keys get ids of
// their own, so each key lands once however often the node retries it). Each answer carries the
// request id it was proposed with, in the Idempotency-Key response header. Errors: {"error",
// "code"} with the status HttpStatusFor() gives (503 when not committed or the outcome is unknown).
#pragma once

#include "consensus/consensus_service.h"
#include "kv/kv_state.h"
#include "net/http_server.h"

namespace synod {

inline constexpr size_t kMaxBatchKeys = 10000;

// `kv` must be registered with `consensus`; both must outlive the router.
void AddKvRoutes(HttpRouter& router, ConsensusService& consensus, const KvState& kv);

}  // namespace synod
