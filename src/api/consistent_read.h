// ConsistentRead: the one way every HTTP endpoint that serves replicated state (KV, ranks,
// timers, the file index) reads it.
//
// - By default a read is linearizable: it waits for ConsensusService::ConfirmRead (this node's
//   copy holds every write acknowledged before the request) and is then served from the local
//   copy. A node that cannot confirm (no leader, cut off, behind) answers 503 with the reason,
//   never a value that may be stale; clients retry, or ask another node.
// - With ?stale (as in Consul) it is served at once from this node's copy, whatever its state.
// Both carry X-Synod-Applied-Index (the log index the copy reflects); a stale read also carries
// X-Synod-Leader-Contact-Ms (how long since this node last knew a leader: 0 while it knows one;
// absent if it never did), to say how old it may be.
#pragma once

#include <functional>

#include "consensus/consensus_service.h"
#include "net/http_server.h"

namespace synod {

// Wraps a GET handler that reads replicated state. `consensus` must outlive the handler.
HttpHandler ConsistentRead(ConsensusService& consensus, HttpHandler read);

// How route tables that do not know consensus get the wrapper above.
using ReadPolicy = std::function<HttpHandler(HttpHandler)>;

}  // namespace synod
