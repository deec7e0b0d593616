#include "api/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace synod {
namespace {

using prometheus::Labels;

class Writer {
 public:
  void Gauge(const std::string& name, const std::string& help, double value,
             const Labels& labels = {}) {
    prometheus::BuildGauge().Name(name).Help(help).Register(registry_).Add(labels).Set(value);
  }
  // One family, one sample per label set.
  void Gauges(const std::string& name, const std::string& help,
              const std::vector<std::pair<Labels, double>>& samples) {
    auto& family = prometheus::BuildGauge().Name(name).Help(help).Register(registry_);
    for (const auto& [labels, value] : samples) family.Add(labels).Set(value);
  }
  void Counter(const std::string& name, const std::string& help, double value) {
    Counters(name, help, {{{}, value}});
  }
  void Counters(const std::string& name, const std::string& help,
                const std::vector<std::pair<Labels, double>>& samples) {
    auto& family = prometheus::BuildCounter().Name(name).Help(help).Register(registry_);
    for (const auto& [labels, value] : samples) family.Add(labels).Increment(value);
  }
  // From counts already kept: `cumulative[i]` observations at or below `bounds[i]`.
  template <size_t N>
  void Histogram(const std::string& name, const std::string& help,
                 const std::array<double, N>& bounds, const std::array<uint64_t, N>& cumulative,
                 uint64_t count, double sum) {
    auto& family = prometheus::BuildHistogram().Name(name).Help(help).Register(registry_);
    std::vector<double> increments(N + 1);
    uint64_t below = 0;
    for (size_t i = 0; i < N; ++i) {
      increments[i] = double(cumulative[i] - below);
      below = cumulative[i];
    }
    increments[N] = double(count - below);
    family.Add({}, prometheus::Histogram::BucketBoundaries(bounds.begin(), bounds.end()))
        .ObserveMultiple(increments, sum);
  }
  std::string Text() const {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry_.Collect());
    return out.str();
  }

 private:
  prometheus::Registry registry_;
};

double Number(const nlohmann::json& value) { return value.is_number() ? value.get<double>() : 0; }

}  // namespace

std::string RenderMetrics(const MetricsSources& sources) {
  Writer w;
  w.Gauge("synod_uptime_seconds", "Seconds since the agent started", sources.uptime_seconds);

  const DiscoveryStats& d = sources.discovery.stats();
  w.Counters("synod_discovery_beacons_total", "SDSS beacons received, by verdict",
             {{{{"verdict", "accepted"}}, double(d.beacons_accepted)},
              {{{"verdict", "malformed"}}, double(d.beacons_malformed)},
              {{{"verdict", "foreign_subnet"}}, double(d.beacons_foreign)},
              {{{"verdict", "own"}}, double(d.beacons_own)}});
  w.Counters("synod_discovery_probes_total", "SDSS timestamp probes, by outcome",
             {{{{"outcome", "ok"}}, double(d.probes_ok)},
              {{{"outcome", "refused"}}, double(d.probes_refused)},
              {{{"outcome", "reset"}}, double(d.probes_reset)},
              {{{"outcome", "timeout"}}, double(d.probes_timed_out)},
              {{{"outcome", "bad_payload"}}, double(d.probes_bad_payload)},
              {{{"outcome", "other"}}, double(d.probes_other_error)}});
  w.Gauge("synod_discovery_neighbors", "Neighbours in the SDSS table",
          double(sources.discovery.neighbors().size()));

  const ClusterStatus status = sources.consensus.GetStatus();
  w.Gauge("synod_raft_term", "Current Raft term", double(status.term));
  w.Gauge("synod_raft_commit_index", "Raft commit index", double(status.commit_index));
  w.Gauge("synod_raft_applied_index", "Last log index applied here", double(status.applied_index));
  w.Gauge("synod_raft_is_leader", "1 on the Raft leader", sources.consensus.IsLeader() ? 1 : 0);
  const ConsensusStats consensus = sources.consensus.stats();
  w.Counter("synod_raft_leader_changes_total", "Times a new leader became known here",
            double(consensus.leader_changes));
  w.Counter("synod_raft_step_downs_total", "Times this node stopped leading",
            double(consensus.step_downs));
  w.Counters("synod_raft_connections_total", "Raft connections to other servers, by event",
             {{{{"event", "connected"}}, double(consensus.connections.connected)},
              {{{"event", "lost"}}, double(consensus.connections.lost)},
              {{{"event", "failed_attempt"}}, double(consensus.connections.failed_attempts)}});
  w.Gauge("synod_cluster_tls", "1 when cluster traffic is TLS (--cluster-key-file or --tls-cert)",
          sources.cluster_tls ? 1 : 0);
  std::vector<std::pair<Labels, double>> tls_refused;
  for (const char* port : {"peer", "raft"}) {
    double count = 0;
    if (sources.tls_refusals != nullptr) {
      auto it = sources.tls_refusals->counts().find(port);
      if (it != sources.tls_refusals->counts().end()) count = double(it->second);
    }
    tls_refused.push_back({{{"port", port}}, count});
  }
  w.Counters("synod_tls_handshakes_failed_total",
             "Cluster connections whose TLS handshake failed or was refused (no key, another key, "
             "a bad certificate, a forged record), by port",
             tls_refused);
  if (sources.peer != nullptr) {
    w.Counters("synod_peer_input_refused_total",
               "Peer protocol input dropped: messages of a kind nobody handles (ignored), and "
               "links closed for an oversized or undecodable frame (malformed)",
               {{{{"what", "ignored"}}, double(sources.peer->ignored_messages)},
                {{{"what", "malformed"}}, double(sources.peer->malformed_links)}});
  }
  if (sources.http != nullptr) {
    w.Counters("synod_http_connections_shed_total",
               "API connections closed at the connection limit: the longest idle one to make "
               "room (evicted), or the new one when every connection was busy (refused)",
               {{{{"action", "evicted"}}, double(sources.http->evicted_connections())},
                {{{"action", "refused"}}, double(sources.http->refused_connections())}});
  }
  w.Counter("synod_joins_refused_total",
            "Join requests this node refused as leader: malformed, too many joiners at once, or "
            "no node with the joiner's id at its address",
            double(consensus.joins_refused));
  w.Counter("synod_reads_refused_total",
            "Linearizable reads refused: this node could not confirm its copy was current",
            double(consensus.reads_refused));
  w.Counters("synod_snapshots_total", "Snapshots of the replicated state written here",
             {{{}, double(status.snapshots.taken)}});
  w.Gauge("synod_snapshot_capture_seconds", "The last snapshot's capture, on the event loop",
          status.snapshots.capture_ms / 1e3);
  w.Gauge("synod_snapshot_write_seconds", "The last snapshot's serialization, in the background",
          status.snapshots.write_ms / 1e3);
  w.Gauge("synod_snapshot_bytes", "The last snapshot's size", double(status.snapshots.bytes));
  w.Gauge("synod_kv_keys", "Keys in the replicated key/value module", double(sources.kv.size()));
  w.Gauge("synod_cluster_member", "1 when this node is a member of a cluster",
          status.member ? 1 : 0);
  w.Gauge("synod_cluster_quorum", "1 while the cluster has a quorum of live voters",
          status.quorum ? 1 : 0);
  w.Gauges("synod_cluster_voters", "Voters of the cluster",
           {{{{"state", "all"}}, double(status.voters)},
            {{{"state", "alive"}}, double(status.voters_alive)}});
  std::map<std::string, double> by_state = {{"alive", 0}, {"suspect", 0}, {"dead", 0}, {"left", 0}};
  for (const auto* member : sources.consensus.members().MembersInJoinOrder()) {
    switch (member->state()) {
      case wire::ALIVE:
        by_state["alive"] += 1;
        break;
      case wire::SUSPECT:
        by_state["suspect"] += 1;
        break;
      case wire::DEAD:
        by_state["dead"] += 1;
        break;
      case wire::LEFT:
        by_state["left"] += 1;
        break;
      default:
        break;
    }
  }
  std::vector<std::pair<Labels, double>> members;
  for (const auto& [state, count] : by_state) members.push_back({{{"state", state}}, count});
  w.Gauges("synod_cluster_members", "Members in the replicated member list, by state", members);

  const nlohmann::json clock = sources.clock.StatusJson();
  w.Gauge("synod_clock_synced", "1 when this node knows its offset to the master clock",
          clock.value("synced", false) ? 1 : 0);
  w.Gauge("synod_clock_is_master", "1 on the master clock",
          clock.value("is_master", false) ? 1 : 0);
  w.Gauge("synod_clock_offset_seconds", "Master clock minus local clock",
          Number(clock["offset_ms"]) / 1e3);
  w.Gauge("synod_clock_error_seconds", "Bound on the error of the offset",
          Number(clock["error_ms"]) / 1e3);
  w.Gauge("synod_clock_drift_ppm", "Master clock's rate relative to ours",
          Number(clock["drift_ppm"]));

  const RankState& ranks = sources.ranks.rank_state();
  w.Gauge("synod_ranks_holders", "Rank holders (members and external clients)",
          double(ranks.holders().size()));
  w.Gauge("synod_ranks_last_command_id", "Id of the last command committed",
          double(ranks.last_command_id()));
  w.Gauge("synod_ranks_pending_deliveries", "Deliveries committed as pending",
          double(ranks.pending_count()));
  w.Gauge("synod_ranks_received_through", "Highest command id this member received",
          double(sources.ranks.received_through()));

  const TimerState& timers = sources.timers.state();
  w.Gauges("synod_timers", "Timers in the replicated state, by stored status",
           {{{{"status", "waiting"}}, double(timers.count(wire::TIMER_WAITING))},
            {{{"status", "done"}}, double(timers.count(wire::TIMER_DONE))},
            {{{"status", "failed"}}, double(timers.count(wire::TIMER_FAILED))},
            {{{"status", "cancelled"}}, double(timers.count(wire::TIMER_CANCELLED))},
            {{{"status", "skipped"}}, double(timers.count(wire::TIMER_SKIPPED))}});
  const TimerFireStats& fires = sources.timers.stats();
  w.Counters("synod_timer_attempts_total", "Webhooks this node sent or skipped, by outcome",
             {{{{"outcome", "succeeded"}}, double(fires.succeeded)},
              {{{"outcome", "failed"}}, double(fires.failed)},
              {{{"outcome", "skipped"}}, double(fires.skipped)}});
  w.Histogram("synod_timer_lateness_seconds",
              "First attempts fired by this node: sent minus due, seconds",
              TimerFireStats::kLatenessBounds, fires.lateness_buckets, fires.lateness_count,
              fires.lateness_sum);

  w.Gauge("synod_sync_index_paths", "Live paths in the replicated file index",
          double(sources.files.live()));
  w.Counter("synod_sync_conflicts_total", "Conflict copies made by the entries this node applied",
            double(sources.files.conflicts()));
  if (sources.sync != nullptr) {
    const SyncStats& sync = sources.sync->stats();
    w.Gauge("synod_sync_in_sync", "1 when this node's folder matches the index",
            sources.sync->InSync() ? 1 : 0);
    w.Counter("synod_sync_announced_total", "Local changes this node committed to the index",
              double(sync.announced));
    w.Counter("synod_sync_fetched_files_total", "Files this node wrote from the index",
              double(sync.fetched_files));
    w.Counters("synod_sync_block_bytes_total", "Block bytes of fetched files, by source",
               {{{{"source", "peer"}}, double(sync.fetched_bytes)},
                {{{"source", "local"}}, double(sync.reused_bytes)}});
    w.Counter("synod_sync_served_bytes_total", "Block bytes this node sent to others",
              double(sync.bytes_served));
    w.Counter("synod_sync_rejected_blocks_total", "Blocks received that did not match their hash",
              double(sync.rejected_blocks));
    w.Counter("synod_sync_missed_by_watcher_total",
              "Changes found by the periodic rescan that the watcher had not reported",
              double(sync.missed_by_watcher));
    w.Histogram("synod_sync_propagation_seconds",
                "Other nodes' changes: from their commit to the file in place here, seconds",
                SyncStats::kLatencyBounds, sync.latency_buckets, sync.latency_count,
                sync.latency_sum);
  }
  // API access (--api-token-file): what needs a token, and the requests refused for want of one.
  const AccessGate* access = sources.access;
  w.Gauges("synod_api_token_required", "1 when API requests of this kind need a bearer token",
           {{{{"access", "write"}}, access != nullptr ? 1.0 : 0.0},
            {{{"access", "read"}},
             access != nullptr && access->policy().reads_require_token() ? 1.0 : 0.0}});
  std::vector<std::pair<Labels, double>> refused;
  for (size_t i = 0; i < AccessGate::kReasons.size(); ++i) {
    refused.push_back({{{"reason", std::string(AccessGate::kReasons[i])}},
                       access != nullptr ? double(access->refusals()[i]) : 0});
  }
  w.Counters("synod_api_unauthorized_total",
             "API requests refused (401 or 403) for a missing, malformed, unknown or read-only "
             "token, by reason",
             refused);
  return w.Text();
}

}  // namespace synod
