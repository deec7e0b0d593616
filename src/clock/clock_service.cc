#include "clock/clock_service.h"

#include <spdlog/spdlog.h>

namespace synod {

ClockService::ClockService(EventLoop& loop, const Clock& clock, PeerService& peers,
                           ConsensusService& consensus, ClockOptions options)
    : clock_(clock),
      peers_(peers),
      consensus_(consensus),
      options_(std::move(options)),
      master_(consensus.members()),
      tick_timer_(loop),
      follow_timer_(loop) {
  consensus.RegisterModule(master_);
}

void ClockService::Start() {
  peers_.SetTimeSampleListener([this](Ipv4 ip, const TimeSample& sample) {
    PeerClock& peer = peer_clocks_[ip.ToString()];
    const uint64_t steps = peer.estimator.steps();
    if (peer.estimator.Add(sample)) peer.last_sample = clock_.Monotonic();
    if (peer.estimator.steps() != steps) {
      spdlog::warn(
          "clock: the offset to {} jumped to {:.3f} ms (its clock or ours stepped); "
          "measuring it afresh",
          ip.ToString(), static_cast<double>(sample.OffsetNanos()) / 1e6);
    }
  });
  consensus_.AddStateListener([this] {
    // After the apply, not inside it.
    follow_timer_.Start(std::chrono::milliseconds(0), std::chrono::milliseconds(0),
                        [this] { FollowMaster(); });
  });
  consensus_.AddHeartbeatDecorator(
      [this](wire::Heartbeat& heartbeat) { *heartbeat.mutable_clock() = OwnReport(); });
  consensus_.AddHeartbeatListener([this](const wire::Heartbeat& heartbeat) {
    if (heartbeat.has_clock()) {
      reports_[heartbeat.node_id()] = Report{heartbeat.clock(), clock_.Monotonic()};
    }
  });
  consensus_.HandleRequests(wire::PeerMessage::kClockReportsRequest,
                            [this](const wire::PeerMessage&, PeerService::Reply reply) {
                              if (!consensus_.IsLeader()) return;
                              wire::PeerMessage response;
                              *response.mutable_clock_reports_response() = LeaderReports();
                              reply(response);
                            });
  tick_timer_.Start(std::chrono::milliseconds(200), std::chrono::milliseconds(200),
                    [this] { Tick(); });
}

void ClockService::Stop() {
  tick_timer_.Stop();
  follow_timer_.Stop();
}

std::optional<Ipv4> ClockService::MasterIp() const {
  const auto* master = consensus_.members().FindMember(master_.master_id());
  if (master == nullptr) return std::nullopt;
  Result<Ipv4> ip = Ipv4::Parse(master->ip());
  if (!ip.ok()) return std::nullopt;
  return ip.value();
}

const ClockService::PeerClock* ClockService::MasterClock() const {
  const auto ip = MasterIp();
  if (!ip) return nullptr;
  auto it = peer_clocks_.find(ip->ToString());
  return it == peer_clocks_.end() ? nullptr : &it->second;
}

void ClockService::Tick() {
  FollowMaster();
  const MonoTime now = clock_.Monotonic();
  std::erase_if(peer_clocks_, [now](const auto& entry) {
    return now - entry.second.last_sample > std::chrono::minutes(10);
  });
  if (consensus_.IsLeader()) {
    ChooseMasterIfNeeded();
  } else {
    reports_.clear();  // only the leader's view is served
  }
}

void ClockService::FollowMaster() {
  const std::string& master = master_.master_id();
  if (master == following_) return;
  spdlog::info("clock: following master {}", master.empty() ? "(none)" : master);
  following_ = master;
  if (options_.events) {
    const auto* record = consensus_.members().FindMember(master);
    options_.events("master.changed", clock_.WallUtcNanos(),
                    {{"master", record ? MemberSummaryJson(*record) : nlohmann::json(nullptr)}});
  }
  peers_.SetFastProbe(master == options_.self_id ? std::nullopt : MasterIp(),
                      options_.probe_interval);
  consensus_.HeartbeatSoon();  // the leader hears which master we follow without delay
}

void ClockService::ChooseMasterIfNeeded() {
  const MonoTime now = clock_.Monotonic();
  if (now < next_choice_) return;
  const MembersState& state = consensus_.members();
  const std::string& current = master_.master_id();
  const auto* record = state.FindMember(current);
  // The first choice waits until members have stopped arriving for a moment (a cluster that is
  // forming would otherwise get a master that the next joiner, lower in address, replaces).
  if (const size_t members = state.MembersInJoinOrder().size(); members != members_seen_) {
    members_seen_ = members;
    membership_changed_at_ = now;
  }
  if (current.empty() && members_seen_ < options_.expected_members &&
      now - membership_changed_at_ < std::chrono::milliseconds(500)) {
    return;
  }
  // The current master stays a candidate until it has been silent for the master timeout
  // (a member is declared dead much sooner); the others count while alive.
  bool current_stays = false;
  std::string why_not = "no master yet";
  if (record != nullptr) {
    const auto silence = consensus_.SilenceOf(current);
    if (record->state() == wire::LEFT) {
      why_not = "the master left the cluster";
    } else if (silence && *silence >= options_.master_timeout) {
      why_not = "the master has been silent for " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*silence).count()) +
                " s";
    } else {
      current_stays = true;
    }
  }
  std::vector<MasterCandidate> candidates;
  for (const auto* member : state.MembersInJoinOrder()) {
    if (member->state() == wire::ALIVE || (current_stays && member->id() == current)) {
      candidates.push_back({member->id(), member->ip()});
    }
  }
  auto chosen = ChooseMaster(options_.policy, candidates);
  if (!chosen || *chosen == current) return;
  const std::string reason = current_stays ? "a member with a lower address joined" : why_not;
  next_choice_ = now + std::chrono::seconds(1);  // one proposal in flight at a time
  const auto* member = state.FindMember(*chosen);
  spdlog::info("clock: choosing master {} ({}): {}", member->name(), member->ip(), reason);
  consensus_.Propose(MasterClockState::Choose(*chosen, reason), [](Result<Committed> result) {
    if (!result.ok()) spdlog::warn("clock: cannot commit the master choice: {}", result.error());
  });
}

wire::ClockReportsResponse ClockService::LeaderReports() const {
  wire::ClockReportsResponse response;
  for (const auto& [id, entry] : reports_) {
    *response.add_reports() = entry.report;
    response.add_report_age_nanos((clock_.Monotonic() - entry.received).count());
  }
  return response;
}

wire::ClockReport ClockService::OwnReport() {
  wire::ClockReport report;
  const int64_t local = clock_.WallUtcNanos();
  report.set_node_id(options_.self_id);
  report.set_local_time_nanos(local);
  report.set_master_id(following_);
  if (!following_.empty() && following_ == options_.self_id) {
    report.set_synced(true);
  } else if (const PeerClock* master = MasterClock();
             auto estimate = master ? master->estimator.Estimate(local) : std::nullopt) {
    report.set_synced(true);
    report.set_offset_nanos(estimate->offset_nanos);
    report.set_error_nanos(estimate->error_nanos);
    report.set_drift_ppm(estimate->drift_ppm);
  }
  return report;
}

std::optional<int64_t> ClockService::ClusterNowNanos() {
  const wire::ClockReport report = OwnReport();
  if (!report.synced()) return std::nullopt;
  return report.local_time_nanos() + report.offset_nanos();
}

nlohmann::json ClockService::StatusJson() {
  const int64_t local = clock_.WallUtcNanos();
  const wire::ClockReport report = OwnReport();
  nlohmann::json master = nullptr;
  if (const auto* record = consensus_.members().FindMember(following_)) {
    master = MemberSummaryJson(*record);
  }
  nlohmann::json status = {
      {"local_time", NanosToSeconds(local)},
      {"master", master},
      {"synced", report.synced()},
      {"is_master", !following_.empty() && following_ == options_.self_id},
  };
  if (report.synced()) {
    const int64_t cluster = serve_.Serve(local + report.offset_nanos());
    status["cluster_time"] = NanosToSeconds(cluster);
    status["offset_ms"] = NanosToMillis(report.offset_nanos());
    status["error_ms"] = NanosToMillis(report.error_nanos());
    status["drift_ppm"] = report.drift_ppm();
    const PeerClock* master = MasterClock();
    status["last_sync_age_ms"] = master ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                              clock_.Monotonic() - master->last_sample)
                                              .count()
                                        : 0;
  } else {
    status["cluster_time"] = nullptr;
    status["offset_ms"] = nullptr;
    status["error_ms"] = nullptr;
    status["drift_ppm"] = nullptr;
    status["last_sync_age_ms"] = nullptr;
  }
  return status;
}

void ClockService::MembersJson(std::function<void(Result<nlohmann::json>)> done) {
  auto render = [this](const wire::ClockReportsResponse& response) {
    nlohmann::json members = nlohmann::json::array();
    for (int i = 0; i < response.reports_size(); ++i) {
      const wire::ClockReport& report = response.reports(i);
      const auto* record = consensus_.members().FindMember(report.node_id());
      const double age_s =
          i < response.report_age_nanos_size() ? NanosToSeconds(response.report_age_nanos(i)) : 0.0;
      members.push_back({
          {"id", report.node_id()},
          {"name", record ? record->name() : ""},
          {"ip", record ? record->ip() : ""},
          // Its clock now: the reported reading carried forward by the report's age.
          {"time", NanosToSeconds(report.local_time_nanos()) + age_s},
          {"report_age_s", age_s},
          {"master_id", report.master_id().empty() ? nlohmann::json(nullptr)
                                                   : nlohmann::json(report.master_id())},
          {"synced", report.synced()},
          {"offset_ms", report.synced() ? nlohmann::json(NanosToMillis(report.offset_nanos()))
                                        : nlohmann::json(nullptr)},
          {"error_ms", report.synced() ? nlohmann::json(NanosToMillis(report.error_nanos()))
                                       : nlohmann::json(nullptr)},
      });
    }
    return members;
  };
  if (consensus_.IsLeader()) {
    done(render(LeaderReports()));
    return;
  }
  auto leader = consensus_.LeaderAddress();
  if (!leader) {
    done(Status::Error("no leader: the cluster has no quorum right now"));
    return;
  }
  wire::PeerMessage request;
  request.mutable_clock_reports_request();
  peers_.Call(*leader, request, std::chrono::seconds(3),
              [render, done](Result<wire::PeerMessage> response) {
                if (!response.ok()) return done(response.status());
                done(render(response.value().clock_reports_response()));
              });
}

}  // namespace synod
