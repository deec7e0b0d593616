// HTTP routes of the replicated state: GET /v1/cluster and the /v1/kv/{key} debugging surface.
#pragma once

#include <nlohmann/json.hpp>

#include "consensus/consensus_service.h"
#include "net/http_server.h"

namespace synod {

void AddClusterRoutes(HttpRouter& router, ConsensusService& consensus);

nlohmann::json MemberJson(const wire::MemberRecord& member);
nlohmann::json ClusterJson(const ConsensusService& consensus);

}  // namespace synod
