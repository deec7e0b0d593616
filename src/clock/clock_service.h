// ClockService: the cluster clock on one node.
//
// Every node measures its offset to the master clock (four-timestamp probes over the peer
// protocol, once a second) and serves cluster time = local time + estimated offset, never
// backwards. Every member reports its clock to the leader with its heartbeats. The leader keeps
// the master chosen by policy among live members, the current master counting as live until it
// has been silent for the master timeout; each choice is committed to the log, so every node
// follows the same one.
// The system clock is never changed. Loop thread only.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "clock/master_policy.h"
#include "clock/offset_estimator.h"
#include "consensus/consensus_service.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "peer/peer_service.h"

namespace synod {

struct ClockOptions {
  std::string self_id;
  MasterPolicy policy = MasterPolicy::kLowestIp;
  std::chrono::milliseconds master_timeout{60'000};
  std::chrono::milliseconds probe_interval{1000};
};

class ClockService {
 public:
  ClockService(EventLoop& loop, const Clock& clock, PeerService& peers, ConsensusService& consensus,
               ClockOptions options);

  void Start();
  void Stop();

  // GET /v1/clock
  nlohmann::json StatusJson();
  // GET /v1/clock/members: answered by the leader; `done` gets the JSON or an error.
  void MembersJson(std::function<void(Result<nlohmann::json>)> done);

 private:
  void Tick();
  void FollowMaster();
  void ChooseMasterIfNeeded();
  wire::ClockReport OwnReport();
  wire::ClockReportsResponse LeaderReports() const;
  std::optional<Ipv4> MasterIp() const;

  EventLoop& loop_;
  const Clock& clock_;
  PeerService& peers_;
  ConsensusService& consensus_;
  ClockOptions options_;
  Timer tick_timer_;
  OffsetEstimator estimator_;
  MonotonicServe serve_;
  std::string following_;  // the master the estimator measures
  std::optional<MonoTime> last_sample_;
  struct Report {
    wire::ClockReport report;
    MonoTime received;
  };
  std::map<std::string, Report> reports_;  // leader only
  MonoTime next_choice_{};
  size_t members_seen_ = 0;
  MonoTime membership_changed_at_{};
};

}  // namespace synod
