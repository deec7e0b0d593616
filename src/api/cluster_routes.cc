#include "api/cluster_routes.h"

#include "core/clock.h"

namespace synod {
namespace {

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

nlohmann::json MemberJson(const wire::MemberRecord& member) {
  return {
      {"id", member.id()},
      {"name", member.name()},
      {"ip", member.ip()},
      {"api_port", member.api_port()},
      {"role", Lower(wire::Role_Name(member.role()))},
      {"state", Lower(wire::MemberState_Name(member.state()))},
      {"joined_at", NanosToSeconds(member.joined_at_nanos())},
      {"last_heartbeat", NanosToSeconds(member.last_heartbeat_nanos())},
      {"join_order", member.join_order()},
  };
}

nlohmann::json ClusterJson(const ConsensusService& consensus) {
  const ClusterStatus status = consensus.GetStatus();
  nlohmann::json members = nlohmann::json::array();
  for (const auto* member : consensus.members().MembersInJoinOrder()) {
    members.push_back(MemberJson(*member));
  }
  nlohmann::json leader = nullptr;
  if (status.leader) leader = MemberSummaryJson(*status.leader);
  return {
      {"cluster_id", status.cluster_id},
      {"phase", status.phase},
      {"member", status.member},
      {"leader", leader},
      {"term", status.term},
      {"commit_index", status.commit_index},
      {"applied_index", status.applied_index},
      {"voters", status.voters},
      {"voters_alive", status.voters_alive},
      {"standbys", status.standbys},
      {"spares", status.spares},
      {"quorum", status.quorum},
      {"snapshots",
       {{"taken", status.snapshots.taken},
        {"last_capture_ms", status.snapshots.capture_ms},
        {"last_write_ms", status.snapshots.write_ms},
        {"last_bytes", status.snapshots.bytes}}},
      {"members", members},
  };
}

void AddClusterRoutes(HttpRouter& router, ConsensusService& consensus) {
  router.Handle("GET", "/v1/cluster", [&consensus](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::Json(200, ClusterJson(consensus)));
  });
}

}  // namespace synod
