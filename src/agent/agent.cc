#include "agent/agent.h"

#include <sys/stat.h>
#include <uv.h>

#include <cstdlib>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "api/access_gate.h"
#include "api/cluster_routes.h"
#include "api/event_routes.h"
#include "api/kv_routes.h"
#include "api/metrics.h"
#include "api/neighbors_json.h"
#include "api/overview.h"
#include "api/ranks_routes.h"
#include "api/sync_routes.h"
#include "api/timer_routes.h"
#include "api/web_routes.h"
#include "clock/clock_service.h"
#include "consensus/consensus_service.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "core/node_identity.h"
#include "discovery/sdss_service.h"
#include "events/event_log.h"
#include "filesync/sync_service.h"
#include "filesync/tombstone_purger.h"
#include "kv/kv_state.h"
#include "net/async_http_client.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "net/uv_util.h"
#include "peer/peer_service.h"
#include "ranks/ranks_service.h"
#include "timers/timer_service.h"

namespace synod {

struct Agent::Impl {
  AgentConfig config;
  SystemClock clock;
  // The cluster clock's time once this node has it, this machine's until then: what Raft
  // entries are stamped with and timers are fired by, so that a node whose own clock is off
  // neither fires early nor makes others fire late.
  SourcedClock cluster_time{clock};
  EventLoop loop;
  NodeIdentity identity;
  LocalInterface interface;
  Ipv4 broadcast_ip;
  MonoTime started_at;
  HttpRouter router;
  std::unique_ptr<EventLog> events;
  std::unique_ptr<EventStreams> event_streams;  // outlives the HTTP server's streams
  std::unique_ptr<Overview> overview;
  std::unique_ptr<AccessGate> access;  // null: no --api-token-file
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<SdssService> discovery;
  std::unique_ptr<PeerService> peers;
  KvState kv;       // registered with, and so outlive, the consensus service
  FileIndex files;  // on every node, whether it syncs a folder or not
  std::unique_ptr<ConsensusService> consensus;
  std::unique_ptr<ClockService> cluster_clock;
  std::unique_ptr<RanksService> ranks;
  std::unique_ptr<AsyncHttpClient> webhooks;  // the timers', which it outlives
  std::unique_ptr<TimerService> timers;
  std::unique_ptr<SyncService> sync;
  std::unique_ptr<TombstonePurger> purger;
  std::unique_ptr<Timer> exit_deadline;
  Timer steady_beacons_check{loop};
  uv_signal_t* sigint = nullptr;
  uv_signal_t* sigterm = nullptr;
  uv_signal_t* sighup = nullptr;  // reloads --api-token-file
  bool stopping = false;
  std::shared_ptr<const TlsConfig> tls;  // null: cluster traffic in clear text
  TlsRefusals tls_refusals;

  explicit Impl(AgentConfig c) : config(std::move(c)) {}

  Status LoadTls();
  // --api-token-file, checked and logged; with --api-read-requires-token applied.
  Result<AccessPolicy> ReadTokenFile() const;
  // On SIGHUP: the new tokens replace the old ones at once; a file that no longer reads keeps
  // the old ones (and says why), so a typo never locks everyone out or opens the API.
  void ReloadTokenFile();
  void AddRoutes();
  void WatchSignals();
  // Closes everything; `why` is logged unless null.
  void Shutdown(const char* why);
};

Result<AccessPolicy> Agent::Impl::ReadTokenFile() const {
  Result<AccessPolicy> policy = AccessPolicy::FromFile(config.api_token_file);
  if (!policy.ok()) return policy;
  policy.value().set_reads_require_token(config.api_read_requires_token);
  struct stat st;
  if (::stat(config.api_token_file.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO))) {
    spdlog::warn("--api-token-file {}: others than its owner may read it (chmod 600 it)",
                 config.api_token_file);
  }
  spdlog::info("api: {} token(s) from {}; writes need a write token, reads {}",
               policy.value().token_count(), config.api_token_file,
               config.api_read_requires_token ? "a read or write token" : "none");
  return policy;
}

void Agent::Impl::ReloadTokenFile() {
  if (!access) {
    spdlog::info("SIGHUP: nothing to reload (no --api-token-file)");
    return;
  }
  Result<AccessPolicy> policy = ReadTokenFile();
  if (!policy.ok()) {
    spdlog::error("SIGHUP: keeping the tokens in use: --api-token-file: {}", policy.error());
    return;
  }
  if (policy.value().reads_require_token()) overview->SetPeerToken(policy.value().peer_token());
  access->Replace(std::move(policy.value()));
  event_streams->CloseUnless([this](const std::string* authorization) {
    return access->policy().Decide("GET", "/v1/events", authorization).allowed();
  });
}

Status Agent::Impl::LoadTls() {
  const bool certificates =
      !config.tls_cert_file.empty() || !config.tls_key_file.empty() || !config.tls_ca_file.empty();
  if (!config.cluster_key_file.empty() && certificates) {
    return Status::Invalid("--cluster-key-file and --tls-cert/--tls-key/--tls-ca: choose one");
  }
  if (!config.cluster_key_file.empty()) {
    Result<std::shared_ptr<const TlsConfig>> key =
        TlsConfig::FromClusterKeyFile(config.cluster_key_file);
    if (!key.ok()) return Status::Invalid("--cluster-key-file: " + key.status().message());
    tls = key.value();
  } else if (certificates) {
    if (config.tls_cert_file.empty() || config.tls_key_file.empty() || config.tls_ca_file.empty()) {
      return Status::Invalid("--tls-cert, --tls-key and --tls-ca go together");
    }
    Result<std::shared_ptr<const TlsConfig>> pki =
        TlsConfig::FromCertificates(config.tls_cert_file, config.tls_key_file, config.tls_ca_file);
    if (!pki.ok()) return Status::Invalid(pki.status().message());
    tls = pki.value();
  }
  return Status::Ok();
}

Agent::Agent(AgentConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Agent::~Agent() {
  if (impl_->http) impl_->Shutdown("agent destroyed");
}

namespace {

// protobuf reports some hostile input itself (a string field that is not UTF-8) on stderr, once
// per message: a peer could fill the log. The parse fails and is counted where it is read.
void ProtobufLogToDebug(google::protobuf::LogLevel level, const char* file, int line,
                        const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf {}:{}: {}", file, line, message);
  } else {
    spdlog::debug("protobuf {}:{}: {}", file, line, message);
  }
}

}  // namespace

Status Agent::Start() {
  Impl& s = *impl_;
  google::protobuf::SetLogHandler(ProtobufLogToDebug);
  s.started_at = s.clock.Monotonic();
  Result<LocalInterface> interface = LocalInterfaceFor(s.config.bind);
  if (!interface.ok()) return Status::Error("--bind: " + interface.error());
  s.interface = interface.value();
  s.broadcast_ip = s.config.broadcast_addr.value_or(s.interface.subnet.DirectedBroadcast());
  if (!s.config.api_token_file.empty()) {
    Result<AccessPolicy> policy = s.ReadTokenFile();
    if (!policy.ok()) return Status::Error("--api-token-file: " + policy.error());
    s.access = std::make_unique<AccessGate>(std::move(policy.value()), s.clock);
  }

  if (Status secured = s.LoadTls(); !secured.ok()) return secured;

  Result<NodeIdentity> identity = LoadOrCreateIdentity(s.config.data_dir);
  if (!identity.ok()) return Status::Error("--data-dir: " + identity.error());
  s.identity = identity.value();
  if (s.config.name.empty()) s.config.name = s.identity.ShortId();
  // Event ids start at the boot time in microseconds: they go on increasing across restarts.
  s.events = std::make_unique<EventLog>(
      static_cast<uint64_t>(std::max<int64_t>(s.clock.WallUtcNanos() / 1000, 1)), s.config.name);
  const EventSink publish = [&log = *s.events](const std::string& type, int64_t unix_nanos,
                                               nlohmann::json fields) {
    log.Publish(type, unix_nanos, std::move(fields));
  };

  PeerOptions peer_options{s.identity,         s.config.name,     s.config.bind,
                           s.config.peer_port, s.config.api_port, s.config.raft_port};
  peer_options.tls = s.tls;
  peer_options.refusals = &s.tls_refusals;
  s.peers = std::make_unique<PeerService>(s.loop, s.clock, std::move(peer_options));
  ConsensusOptions consensus;
  consensus.identity = s.identity;
  consensus.name = s.config.name;
  consensus.ip = s.config.bind;
  consensus.api_port = s.config.api_port;
  consensus.peer_port = s.config.peer_port;
  consensus.raft_port = s.config.raft_port;
  consensus.data_dir = s.config.data_dir;
  consensus.bootstrap = s.config.bootstrap;
  consensus.bootstrap_expect = s.config.bootstrap_expect;
  consensus.join = s.config.join;
  consensus.max_voters = s.config.voters;
  consensus.max_standbys = s.config.standbys;
  consensus.feed_window = s.config.feed_window;
  consensus.snapshot_threshold = s.config.snapshot_threshold;
  consensus.election_timeout_ms = static_cast<unsigned>(s.config.election_timeout.count());
  consensus.heartbeat_timeout_ms = static_cast<unsigned>(s.config.heartbeat_timeout.count());
  consensus.events = publish;
  consensus.tls = s.tls;
  consensus.tls_refusals = &s.tls_refusals;
  const auto first_interval = s.config.formation_beacon_interval.value_or(s.config.beacon_interval);
  consensus.formation_settle = std::max(std::chrono::milliseconds(300), 2 * first_interval);
  s.consensus = std::make_unique<ConsensusService>(s.loop, s.cluster_time, *s.peers, consensus);
  s.consensus->RegisterModule(s.kv);
  s.consensus->RegisterModule(s.files);
  Result<MasterPolicy> policy = ParseMasterPolicy(s.config.master_policy);
  if (!policy.ok()) return Status::Error("--master-policy: " + policy.error());
  s.cluster_clock = std::make_unique<ClockService>(
      s.loop, s.clock, *s.peers, *s.consensus,
      ClockOptions{s.identity.id, policy.value(), s.config.master_timeout,
                   std::chrono::milliseconds(1000), s.config.bootstrap_expect, publish});
  s.cluster_time.SetSource([&clock = *s.cluster_clock] { return clock.ClusterNowNanos(); });
  RanksOptions ranks;
  ranks.self_id = s.identity.id;
  ranks.data_dir = s.config.data_dir;
  ranks.on_command = s.config.on_command;
  ranks.on_command_timeout = s.config.on_command_timeout;
  ranks.courier.external_failures = s.config.external_failures;
  ranks.demo_commands = s.config.demo_commands;
  ranks.events = publish;
  s.ranks = std::make_unique<RanksService>(s.loop, s.clock, *s.peers, *s.consensus, ranks);
  TimerOptions timers;
  timers.self_id = s.identity.id;
  timers.retention = s.config.timer_retention;
  timers.events = publish;
  if (!s.config.webhook_secret_file.empty()) {
    Result<WebhookSigner> signer = WebhookSigner::FromFile(s.config.webhook_secret_file);
    if (!signer.ok()) return Status::Error("--webhook-secret-file: " + signer.status().message());
    timers.signer = std::move(signer.value());
  }
  s.webhooks = std::make_unique<AsyncHttpClient>(s.loop);
  s.timers = std::make_unique<TimerService>(s.loop, s.cluster_time, *s.consensus, *s.webhooks,
                                            std::move(timers));
  s.purger = std::make_unique<TombstonePurger>(s.loop, s.cluster_time, *s.consensus, s.files,
                                               s.config.sync_tombstone_retention);
  if (!s.config.sync_dir.empty()) {
    SyncOptions sync;
    sync.dir = s.config.sync_dir;
    sync.data_dir = s.config.data_dir;
    sync.self_id = s.identity.id;
    sync.self_name = s.config.name;
    sync.events = publish;
    s.sync = std::make_unique<SyncService>(s.loop, s.clock, *s.consensus, *s.peers, s.files,
                                           std::move(sync));
  } else {
    // Members that sync a folder ask every member for blocks: say at once there are none here.
    s.consensus->HandleRequests(
        wire::PeerMessage::kBlockRequest, [](const wire::PeerMessage&, PeerService::Reply reply) {
          wire::PeerMessage response;
          response.mutable_block_response()->set_error("not found: this node syncs no folder");
          reply(std::move(response));
        });
  }
  SdssOptions sdss{s.identity.ShortId(),
                   s.config.bind,
                   s.interface.subnet,
                   s.broadcast_ip,
                   s.config.broadcast_port,
                   first_interval,
                   std::chrono::milliseconds(2000)};
  s.discovery = std::make_unique<SdssService>(s.loop, s.clock, sdss);
  s.discovery->table().SetListener(NeighborTable::Listener{
      .on_added =
          [&s](const Neighbor& n) {
            spdlog::info("discovery: new neighbour {} at {} (timestamp port {})", n.id,
                         n.ip.ToString(), n.tcp_port);
            s.peers->Track(n.id, n.ip);
          },
      .on_measured =
          [](const Neighbor& n) {
            spdlog::debug("discovery: {} delay {:.3f} ms after {} beacons", n.id, *n.delay_ms,
                          n.broadcast_count);
          },
      .on_removed =
          [&s](const Neighbor& n, const std::string& why) {
            spdlog::info("discovery: removed neighbour {} at {}: {}", n.id, n.ip.ToString(), why);
            s.peers->Untrack(n.id);
          },
  });
  s.event_streams = std::make_unique<EventStreams>(s.loop, *s.events);
  s.overview = std::make_unique<Overview>(s.loop, s.clock, s.router, *s.consensus, s.identity.id);
  s.http = std::make_unique<HttpServer>(s.loop, s.router);
  if (s.access) {
    // Every request from the network passes the token check before it is routed (AccessGate
    // says why there); the overview's remote fetches carry a token where reads need one.
    s.http->SetGate(s.access->AsGate());
    if (s.access->policy().reads_require_token()) {
      s.overview->SetPeerToken(s.access->policy().peer_token());
    }
  }
  if (!s.config.api_tls_cert_file.empty() || !s.config.api_tls_key_file.empty()) {
    if (s.config.api_tls_cert_file.empty() || s.config.api_tls_key_file.empty()) {
      return Status::Invalid("--api-tls-cert and --api-tls-key go together");
    }
    Result<std::shared_ptr<const TlsConfig>> https =
        TlsConfig::ForHttpsServer(s.config.api_tls_cert_file, s.config.api_tls_key_file);
    if (!https.ok())
      return Status::Invalid("--api-tls-cert/--api-tls-key: " + https.status().message());
    s.http->SetTls(https.value());
    s.overview->UseHttps(s.config.api_tls_ca_file);
  } else if (!s.config.api_tls_ca_file.empty()) {
    return Status::Invalid("--api-tls-ca needs --api-tls-cert and --api-tls-key");
  }
  s.AddRoutes();

  Status status = s.http->Listen(s.config.bind, s.config.api_port);
  if (status.ok()) status = s.peers->Start();
  // The folder is checked before the data dir holds any cluster state.
  if (status.ok() && s.sync) status = s.sync->Start();
  if (status.ok()) status = s.ranks->Start();
  if (status.ok()) status = s.consensus->Start();
  if (status.ok()) s.cluster_clock->Start();
  if (status.ok()) s.timers->Start();
  if (status.ok()) s.purger->Start();
  if (status.ok()) status = s.discovery->Start();
  if (!status.ok()) {
    s.Shutdown(nullptr);  // the caller reports the error
    s.loop.Run();         // let what was opened close
    return status;
  }
  if (s.config.formation_beacon_interval) {
    s.steady_beacons_check.Start(std::chrono::milliseconds(200), std::chrono::milliseconds(200),
                                 [&s] {
                                   if (!s.consensus->GetStatus().member) return;
                                   s.discovery->SetBeaconInterval(s.config.beacon_interval);
                                   s.steady_beacons_check.Stop();
                                 });
  }
  s.WatchSignals();
  spdlog::info("agent {} ({}) up on {}: api {}{}, peer {}, sdss timestamp {}, data {}",
               s.config.name, s.identity.id, s.config.bind.ToString(), s.config.api_port,
               s.config.api_tls_cert_file.empty() ? "" : " (https)", s.config.peer_port,
               s.discovery->timestamp_port(), s.config.data_dir);
  if (s.tls) {
    spdlog::info("cluster traffic is encrypted and authenticated (TLS 1.3, {})",
                 s.tls->description());
  } else {
    spdlog::info(
        "cluster traffic is in clear text: anyone who reaches the peer and Raft ports "
        "can join (see --cluster-key-file)");
  }
  return Status::Ok();
}

void Agent::Run() { impl_->loop.Run(); }

void Agent::Stop() {
  impl_->loop.Post([impl = impl_.get()] { impl->Shutdown("asked to stop"); });
}

std::vector<std::pair<std::string, std::string>> Agent::Routes() const {
  return impl_->router.Routes();
}

void Agent::Impl::AddRoutes() {
  router.Handle("GET", "/healthz", [this](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::Json(
        200, {{"status", "ok"},
              {"id", identity.id},
              {"name", config.name},
              {"uptime_s", NanosToSeconds((clock.Monotonic() - started_at).count())}}));
  });
  router.Handle("GET", "/v1/node", [this](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::Json(
        200, {{"id", identity.id},
              {"short_id", identity.ShortId()},
              {"name", config.name},
              {"ip", config.bind.ToString()},
              {"api_port", config.api_port},
              {"peer_port", config.peer_port},
              {"sdss_tcp_port", discovery->timestamp_port()},
              {"broadcast", broadcast_ip.ToString() + ":" + std::to_string(config.broadcast_port)},
              {"beacon_interval_ms", config.beacon_interval.count()},
              {"discovery", DiscoveryStatsJson(discovery->table().stats())}}));
  });
  AddClusterRoutes(router, *consensus);
  AddKvRoutes(router, *consensus, kv);
  router.Handle("GET", "/v1/clock", [this](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::Json(200, cluster_clock->StatusJson()));
  });
  router.Handle("GET", "/v1/clock/members", [this](const HttpRequest&, HttpResponder respond) {
    cluster_clock->MembersJson([respond](Result<nlohmann::json> members) {
      respond(members.ok() ? HttpResponse::Json(200, members.value())
                           : HttpResponse::Error(503, members.error()));
    });
  });
  const ReadPolicy reads = [&consensus = *consensus](HttpHandler read) {
    return ConsistentRead(consensus, std::move(read));
  };
  AddRanksRoutes(router, *ranks, reads);
  AddTimerRoutes(router, *timers, reads);
  AddSyncRoutes(router, files, sync.get(), reads);
  router.Handle("GET", "/metrics", [this](const HttpRequest&, HttpResponder respond) {
    HttpResponse response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = RenderMetrics(
        MetricsSources{discovery->table(), *consensus, *cluster_clock, *ranks, kv, *timers, files,
                       sync.get(), NanosToSeconds((clock.Monotonic() - started_at).count()),
                       access.get(), tls != nullptr, &tls_refusals, http.get(), &peers->stats()});
    respond(std::move(response));
  });
  router.Handle("GET", "/v1/neighbors", [this](const HttpRequest&, HttpResponder respond) {
    respond(HttpResponse::Json(200, NeighborsJson(discovery->table(), *peers, clock)));
  });
  event_streams->AddRoutes(router);
  overview->AddRoutes(router);
  AddWebRoutes(router);
}

void Agent::Impl::WatchSignals() {
  auto watch = [this](int signum, uv_signal_cb on_signal) {
    auto* handle = new uv_signal_t;
    uv_signal_init(loop.raw(), handle);
    handle->data = this;
    uv_signal_start(handle, on_signal, signum);
    return handle;
  };
  static constexpr auto impl = [](uv_signal_t* handle) { return static_cast<Impl*>(handle->data); };
  sigint = watch(SIGINT, [](uv_signal_t* h, int) { impl(h)->Shutdown("SIGINT"); });
  sigterm = watch(SIGTERM, [](uv_signal_t* h, int) { impl(h)->Shutdown("SIGTERM"); });
  sighup = watch(SIGHUP, [](uv_signal_t* h, int) { impl(h)->ReloadTokenFile(); });
}

void Agent::Impl::Shutdown(const char* why) {
  if (stopping) return;
  stopping = true;
  if (why != nullptr) spdlog::info("agent {}: stopping ({})", config.name, why);
  CloseAndDelete(sigint);
  CloseAndDelete(sigterm);
  CloseAndDelete(sighup);
  sigint = sigterm = sighup = nullptr;
  steady_beacons_check.Stop();
  if (discovery) discovery->Stop();
  // What runs from now on (leaving, destruction) may outlive the cluster clock.
  cluster_time.SetSource(nullptr);
  if (cluster_clock) cluster_clock->Stop();
  if (ranks) ranks->Stop();
  if (timers) timers->Stop();
  if (sync) sync->Stop();
  if (purger) purger->Stop();
  if (http) http->Close();
  if (event_streams) event_streams->Stop();
  if (overview) overview->Stop();
  // Leaving the cluster needs the peer links; everything else can go now. If something hangs,
  // the deadline ends the loop anyway.
  exit_deadline = std::make_unique<Timer>(loop);
  exit_deadline->Start(std::chrono::milliseconds(4000), std::chrono::milliseconds(0), [this] {
    spdlog::warn("agent {}: shutdown took too long; stopping now", config.name);
    spdlog::default_logger()->flush();
    // Not through the destructors: work still running on libuv's thread pool (a snapshot being
    // written) would touch what they free. What was acknowledged is on disk already.
    std::_Exit(0);
  });
  auto finish = [this] {
    if (peers) peers->Stop();
    exit_deadline.reset();
    spdlog::default_logger()->flush();
  };
  if (consensus) {
    consensus->Leave(finish);
  } else {
    finish();
  }
}

}  // namespace synod
