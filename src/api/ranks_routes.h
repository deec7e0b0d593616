// HTTP routes of ranks and commands.
//
// The seed's API, for its clients unchanged: POST /assign-rank {"ip_port"} -> {"rank"},
// DELETE /unassign-rank {"ip_port"} -> {"success": true}, POST /send-command {"command",
// "ip_port"} -> {"<recipient address>": {"success": bool}}. The native one: GET /v1/ranks,
// POST /v1/commands {"command"} (sent by this node's member), GET /v1/commands?since=ID&limit=N
// (the commands this member received). Bad bodies get 400 with a JSON error.
#pragma once

#include <nlohmann/json.hpp>

#include "api/consistent_read.h"
#include "net/http_server.h"
#include "ranks/ranks_service.h"

namespace synod {

// `reads` wraps the routes that read replicated state (GET /v1/ranks).
void AddRanksRoutes(HttpRouter& router, RanksService& ranks, const ReadPolicy& reads);

nlohmann::json CommandRecordJson(const wire::CommandRecord& record);

}  // namespace synod
