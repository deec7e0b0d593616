// ClockService: the cluster clock on one node.
//
// Every node measures its offset to the master clock (four-timestamp probes over the peer
// protocol, once a second; every other peer more slowly, so a new master's offset is known) and
// serves cluster time = local time + estimated offset, never backwards. Every member reports its
// clock to the leader with its heartbeats. The leader keeps the master chosen by policy among live
// members, the current master counting as live until it has been silent for the master timeout;
// each choice is committed to the log, so every node follows the same one. The system clock is
// never changed. Loop thread only.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "clock/master_policy.h"
#include "clock/master_state.h"
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
  // Members the cluster is expected to form with (--bootstrap-expect); once that many have
  // joined, the first master is chosen without waiting for membership to settle.
  size_t expected_members = 0;
  EventSink events;  // told when the master this node follows changes
};

class ClockService {
 public:
  ClockService(EventLoop& loop, const Clock& clock, PeerService& peers, ConsensusService& consensus,
               ClockOptions options);

  void Start();
  void Stop();

  // The replicated master choice.
  const MasterClockState& master() const { return master_; }

  // Cluster time now (UTC ns on the master's clock, as this node estimates it), or nothing while
  // this node follows no master or has no estimate of its clock yet. For scheduling and
  // timestamps: unlike the time /v1/clock serves, it follows the master's clock back if that
  // clock steps back (or the master changes), rather than standing still until it catches up.
  std::optional<int64_t> ClusterNowNanos();

  // GET /v1/clock
  nlohmann::json StatusJson();
  // GET /v1/clock/members: answered by the leader; `done` gets the JSON or an error.
  void MembersJson(std::function<void(Result<nlohmann::json>)> done);

 private:
  // Samples of one peer's clock. Every peer is measured from the moment it is discovered, so
  // the offset to a new master is known as soon as it is chosen.
  struct PeerClock {
    OffsetEstimator estimator;
    MonoTime last_sample{};
  };

  void Tick();
  void FollowMaster();
  const PeerClock* MasterClock() const;
  void ChooseMasterIfNeeded();
  wire::ClockReport OwnReport();
  wire::ClockReportsResponse LeaderReports() const;
  std::optional<Ipv4> MasterIp() const;

  const Clock& clock_;
  PeerService& peers_;
  ConsensusService& consensus_;
  ClockOptions options_;
  MasterClockState master_;
  Timer tick_timer_;
  std::map<std::string, PeerClock> peer_clocks_;  // by IP address
  MonotonicServe serve_;
  std::string following_;  // the master whose clock we serve
  Timer follow_timer_;     // follows a newly committed master without waiting for the tick
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
