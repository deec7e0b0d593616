#include "consensus/consensus_service.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "consensus/membership_planner.h"
#include "net/tcp.h"
#include "peer/peer_link.h"

namespace synod {
namespace {

constexpr auto kTick = std::chrono::milliseconds(100);
constexpr auto kJoinRetry = std::chrono::milliseconds(1000);
// A joiner waits this long for the leader's answer: longer than the leader tries to reach it at
// its address (LeaderMembership), so that a refusal reaches it.
constexpr auto kJoinTimeout = std::chrono::milliseconds(3000);
constexpr auto kLeaveBudget = std::chrono::milliseconds(2500);
// A linearizable read that cannot be confirmed in this time is refused.
constexpr auto kReadTimeout = std::chrono::milliseconds(1000);
constexpr const char* kClusterIdFile = "cluster_id";

void ExitOnFatal(const Status& why) {
  spdlog::critical("consensus: {}", why.message());
  spdlog::shutdown();
  std::fprintf(stderr, "synod: %s\n", why.message().c_str());
  std::_Exit(78);  // EX_CONFIG: this build cannot run on this data
}

Result<Ipv4> IpOfAddress(const std::string& address) {
  return Ipv4::Parse(address.substr(0, address.rfind(':')));
}

RaftOptions EngineOptions(const ConsensusOptions& options) {
  RaftOptions raft;
  raft.dir = (std::filesystem::path(options.data_dir) / "raft").string();
  raft.id = RaftIdFromNodeId(options.identity.id);
  raft.address = options.ip.ToString() + ":" + std::to_string(options.raft_port);
  raft.election_timeout_ms = options.election_timeout_ms;
  raft.heartbeat_timeout_ms = options.heartbeat_timeout_ms;
  raft.snapshot_threshold = options.snapshot_threshold;
  raft.transport.tls = options.tls;
  raft.transport.refusals = options.tls_refusals;
  return raft;
}

}  // namespace

ConsensusService::ConsensusService(EventLoop& loop, const Clock& clock, PeerService& peers,
                                   ConsensusOptions options)
    : loop_(loop),
      clock_(clock),
      peers_(peers),
      options_(std::move(options)),
      engine_(loop, EngineOptions(options_), state_),
      tick_timer_(loop),
      feed_(clock, peers, engine_, state_, members_,
            SpareFeed::Options{options_.identity.id, options_.ip, options_.feed_window}),
      proposer_(
          loop, clock, peers, engine_, state_, members_, [this] { return LeaderIp(); },
          Proposer::Options{options_.ip,
                            options_.identity.ShortId() + "-" + RandomHexId().substr(0, 8),
                            options_.propose_timeout}),
      reads_(
          loop, peers, engine_, [this] { return LeaderIp(); }, kReadTimeout),
      membership_(
          clock, engine_, peers, members_,
          [this](Proposal proposal, ProposeCallback done) {
            Propose(std::move(proposal), std::move(done));
          },
          LeaderMembership::Options{options_.identity.id,
                                    RoleTargets{options_.max_voters, options_.max_standbys},
                                    LivenessRules{options_.suspect_after, options_.dead_after}}) {
  state_.Register(members_);
  if (!options_.on_fatal) options_.on_fatal = ExitOnFatal;
  if (options_.events) {
    members_.Subscribe([this](const MemberEvent& event) { PublishMemberEvent(event); });
  }
  engine_.SetAppliedObserver(AppliedEntryObserver{
      .on_entry = [this](uint64_t index,
                         std::string_view payload) { feed_.OnApplied(index, payload); },
      .on_restore = [this](uint64_t index) { feed_.OnRestored(index); },
      .on_fatal =
          [this](const Status& why) {
            Fail(why.message());
            options_.on_fatal(why);
          },
  });
}

ConsensusService::~ConsensusService() = default;

Status ConsensusService::Start() {
  {
    // The engine listens only once it starts, which for a joining node is later: check the
    // port now so that the user hears about a conflict at once.
    TcpListener probe(loop_);
    Status free = probe.Listen(options_.ip, options_.raft_port, "raft", [](auto) {});
    if (!free.ok()) return free;
  }
  std::ifstream id_file(std::filesystem::path(options_.data_dir) / kClusterIdFile);
  std::getline(id_file, known_cluster_id_);

  if (Status opened = engine_.Open(); !opened.ok()) return opened;
  peers_.SetHelloProvider([this](wire::Hello& hello) {
    hello.set_raft_port(options_.raft_port);
    hello.set_cluster_id(members_.cluster_id().empty() ? known_cluster_id_ : members_.cluster_id());
    hello.set_member(engine_.started() && InConfiguration());
    hello.set_bootstrap_expect(options_.bootstrap_expect);
  });
  peers_.SetPeerListener(PeerService::PeerListener{
      .on_hello =
          [this](Ipv4 ip, const wire::Hello& hello) {
            if (hello.node_id() != options_.identity.id) peers_seen_[hello.node_id()] = {ip, hello};
          },
      .on_lost =
          [this](Ipv4 ip) {
            std::erase_if(peers_seen_, [ip](const auto& entry) { return entry.second.ip == ip; });
          },
  });
  peers_.SetRequestHandler([this](const wire::PeerMessage& request, PeerService::Reply reply) {
    OnRequest(request, std::move(reply));
  });
  for (Ipv4 address : options_.join) peers_.Track("", address);

  if (RaftEngine::HasState(engine_.options().dir)) {
    StartEngine();  // a restart: same identity, same state, rejoins by itself
  } else if (options_.bootstrap && known_cluster_id_.empty()) {
    Result<bool> bootstrapped = engine_.BootstrapSelf();
    if (!bootstrapped.ok()) return bootstrapped.status();
    spdlog::info("consensus: bootstrapping a new cluster with this node as its first voter");
    StartEngine();
  }
  if (phase_ == Phase::kFailed) return Status::Error(failure_);
  tick_timer_.Start(kTick, kTick, [this] { Tick(); });
  return Status::Ok();
}

void ConsensusService::StartEngine() {
  if (engine_.started()) return;
  if (Status started = engine_.Start(); !started.ok()) {
    Fail(started.message());
    return;
  }
  phase_ = Phase::kJoining;
}

void ConsensusService::Fail(const std::string& why) {
  spdlog::error("consensus: {}", why);
  failure_ = why;
  phase_ = Phase::kFailed;
}

wire::MemberRecord ConsensusService::SelfRecord(wire::Role role) const {
  wire::MemberRecord record;
  record.set_id(options_.identity.id);
  record.set_name(options_.name);
  record.set_ip(options_.ip.ToString());
  record.set_api_port(options_.api_port);
  record.set_peer_port(options_.peer_port);
  record.set_raft_port(options_.raft_port);
  record.set_raft_id(RaftIdFromNodeId(options_.identity.id));
  record.set_role(role);
  for (const auto& [module, version] : state_.ModuleVersions()) {
    (*record.mutable_modules())[module] = version;
  }
  return record;
}

bool ConsensusService::InConfiguration() const {
  if (engine_.RoleOf(engine_.options().id).has_value()) return true;
  // A spare added after it started knows no Raft configuration: the feed is its proof.
  if (!feed_.RecentSource()) return false;
  const auto* self = members_.FindMember(options_.identity.id);
  return self != nullptr && self->state() != wire::LEFT;
}

std::optional<SpareFeed::Source> ConsensusService::FeedSource() const {
  return engine_.IsLeader() ? std::nullopt : feed_.RecentSource();
}

std::optional<Ipv4> ConsensusService::LeaderIp() const {
  // Raft tells a spare nothing, and what it told it before it became one may be stale.
  if (auto source = FeedSource()) return source->leader_ip;
  auto leader = engine_.Leader();
  if (!leader) return std::nullopt;
  Result<Ipv4> ip = IpOfAddress(leader->address);
  if (!ip.ok()) return std::nullopt;
  return ip.value();
}

// ---- the node's own membership --------------------------------------------------------------

void ConsensusService::Tick() {
  if (phase_ == Phase::kClosed || phase_ == Phase::kFailed) return;
  proposer_.ObserveLeader();
  if (engine_.IsLeader() || LeaderIp()) leader_known_at_ = clock_.Monotonic();
  if (!engine_.started()) {
    FormationStep();
    return;
  }
  PersistClusterId();
  const bool in_configuration = InConfiguration();
  // Joined means in the configuration *and* in the member list: a leader that died between the
  // two steps, or a lost record, is healed by asking again.
  const auto* self = members_.FindMember(options_.identity.id);
  const bool recorded = self != nullptr && self->state() != wire::LEFT;
  if (phase_ == Phase::kJoining && in_configuration && recorded) {
    phase_ = Phase::kMember;
    spdlog::info("consensus: member of cluster {}", members_.cluster_id());
  }
  if (phase_ == Phase::kJoining && !(in_configuration && recorded)) {
    if (!engine_.IsLeader()) {
      FormationStep();  // ask again
    } else if (in_configuration) {
      // Restarted after leaving (its record says so) and elected before rejoining: it records
      // itself, as it would any joiner.
      membership_.HandleJoin(SelfRecord(wire::VOTER), [](const wire::PeerMessage&) {});
    }
  }

  const bool leader = engine_.IsLeader();
  ObserveLeadership(leader);
  if (leader && !was_leader_) OnBecameLeader();
  was_leader_ = leader;
  if (leader) membership_.Step();
  feed_.Tick(leader);
  if (in_configuration && clock_.Monotonic() >= next_heartbeat_) {
    // Every node calls HeartbeatSoon() when the same entry is applied (a new master clock).
    next_heartbeat_ = clock_.Monotonic() + heartbeat_jitter_.Spread(options_.member_heartbeat);
    wire::PeerMessage message;
    wire::Heartbeat* heartbeat = message.mutable_heartbeat();
    heartbeat->set_node_id(options_.identity.id);
    for (const auto& decorate : heartbeat_decorators_) decorate(*heartbeat);
    if (leader) {
      for (const auto& listener : heartbeat_listeners_) listener(*heartbeat);
    } else if (auto ip = LeaderIp()) {
      peers_.Send(*ip, message);
    }
  }
}

void ConsensusService::PersistClusterId() {
  const std::string& id = members_.cluster_id();
  if (id.empty() || id == known_cluster_id_) return;
  if (!known_cluster_id_.empty()) {
    Fail("data dir " + options_.data_dir + " belongs to cluster " + known_cluster_id_ +
         ", but the replicated state says " + id);
    return;
  }
  Status written = WriteFileAtomically(
      (std::filesystem::path(options_.data_dir) / kClusterIdFile).string(), id + "\n");
  if (!written.ok()) spdlog::warn("consensus: {}", written.message());
  known_cluster_id_ = id;
}

void ConsensusService::FormationStep() {
  const MonoTime now = clock_.Monotonic();
  if (now < next_join_attempt_) return;
  // What peers said of themselves may be old news (one may have joined a cluster since).
  if (now >= next_hello_refresh_) {
    next_hello_refresh_ = now + std::chrono::seconds(1);
    peers_.RefreshHellos();
  }
  // 1. A member of a cluster we may join (ours, if the data dir names one).
  std::vector<Ipv4> members;
  for (const auto& [id, peer] : peers_seen_) {
    const std::string& theirs = peer.hello.cluster_id();
    if (!peer.hello.member() || theirs.empty()) continue;
    if (!known_cluster_id_.empty() && theirs != known_cluster_id_) continue;
    members.push_back(peer.ip);
  }
  if (!members.empty()) {
    next_join_attempt_ = now + kJoinRetry;
    AskToJoin(members[join_rotation_++ % members.size()]);
    return;
  }
  // 2. Addresses given with --join.
  if (!options_.join.empty()) {
    next_join_attempt_ = now + kJoinRetry;
    AskToJoin(options_.join[join_rotation_++ % options_.join.size()]);
    return;
  }
  // 3. --bootstrap-expect N: once N nodes that expect the same N and are outside any cluster
  //    have been seen, and the set has been stable for a moment, the lowest id forms the
  //    cluster and the others join it.
  if (options_.bootstrap_expect == 0 || !known_cluster_id_.empty()) return;
  std::vector<std::pair<std::string, Ipv4>> candidates{{options_.identity.id, options_.ip}};
  for (const auto& [id, peer] : peers_seen_) {
    if (peer.hello.cluster_id().empty() &&
        peer.hello.bootstrap_expect() == options_.bootstrap_expect) {
      candidates.emplace_back(id, peer.ip);
    }
  }
  if (candidates.size() != last_candidate_count_) {
    last_candidate_count_ = candidates.size();
    candidates_stable_since_ = now;
  }
  if (candidates.size() < options_.bootstrap_expect) return;
  if (now - *candidates_stable_since_ < options_.formation_settle) return;
  std::sort(candidates.begin(), candidates.end());
  if (candidates.front().first == options_.identity.id) {
    Result<bool> bootstrapped = engine_.BootstrapSelf();
    if (!bootstrapped.ok()) {
      Fail(bootstrapped.error());
      return;
    }
    spdlog::info("consensus: {} nodes seen and this one has the lowest id: forming the cluster",
                 candidates.size());
    StartEngine();
    return;
  }
  next_join_attempt_ = now + kJoinRetry / 2;
  AskToJoin(candidates.front().second);
}

void ConsensusService::AskToJoin(Ipv4 target) {
  wire::PeerMessage request;
  *request.mutable_join_request()->mutable_member() = SelfRecord(wire::ROLE_UNKNOWN);
  peers_.Call(target, request, kJoinTimeout, [this, target](Result<wire::PeerMessage> response) {
    if (phase_ == Phase::kClosed || phase_ == Phase::kLeaving || phase_ == Phase::kFailed) return;
    if (!response.ok()) {
      spdlog::debug("consensus: join via {}: {}", target.ToString(), response.error());
      return;
    }
    const wire::JoinResponse& answer = response.value().join_response();
    if (!answer.ok()) {
      spdlog::debug("consensus: join via {} refused: {}", target.ToString(), answer.error());
      return;
    }
    if (!known_cluster_id_.empty() && answer.cluster_id() != known_cluster_id_) {
      Fail("data dir " + options_.data_dir + " belongs to cluster " + known_cluster_id_ + ", but " +
           target.ToString() + " is in cluster " + answer.cluster_id());
      return;
    }
    if (!engine_.started()) {
      spdlog::info("consensus: joining {} via {}",
                   answer.cluster_id().empty() ? "a new cluster" : "cluster " + answer.cluster_id(),
                   target.ToString());
      StartEngine();
    }
  });
}

// ---- requests from other nodes --------------------------------------------------------------

void ConsensusService::OnRequest(const wire::PeerMessage& request, PeerService::Reply reply) {
  switch (request.body_case()) {
    case wire::PeerMessage::kProposeRequest:
      proposer_.OnProposeRequest(request.propose_request(), std::move(reply));
      return;
    case wire::PeerMessage::kReadIndexRequest:
      reads_.OnReadIndexRequest(std::move(reply));
      return;
    case wire::PeerMessage::kJoinRequest: {
      if (engine_.IsLeader()) {
        membership_.HandleJoin(request.join_request().member(), std::move(reply));
        return;
      }
      auto leader = LeaderIp();
      if (!engine_.started() || !leader || *leader == options_.ip) {
        wire::PeerMessage response;
        response.mutable_join_response()->set_error(engine_.started() ? "no leader right now"
                                                                      : "not in a cluster yet");
        reply(response);
        return;
      }
      peers_.Call(*leader, request, kJoinTimeout, [reply](Result<wire::PeerMessage> response) {
        if (response.ok()) {
          reply(response.value());
          return;
        }
        wire::PeerMessage failed;
        failed.mutable_join_response()->set_error("leader unreachable: " + response.error());
        reply(failed);
      });
      return;
    }
    case wire::PeerMessage::kLeaveRequest: {
      if (engine_.IsLeader()) {
        membership_.HandleLeave(request.leave_request().node_id(), std::move(reply));
      } else {
        wire::PeerMessage response;
        response.mutable_leave_response()->set_error("not the leader");
        reply(response);
      }
      return;
    }
    case wire::PeerMessage::kEntryFeed:
      if (engine_.started()) feed_.OnFeed(request.entry_feed());
      return;
    case wire::PeerMessage::kEntryFeedReply:
      feed_.OnFeedReply(request.entry_feed_reply());
      return;
    case wire::PeerMessage::kStateChunkRequest: {
      wire::PeerMessage response;
      *response.mutable_state_chunk() = feed_.OnStateChunkRequest(request.state_chunk_request());
      reply(response);
      return;
    }
    case wire::PeerMessage::kHeartbeat:
      // Only members' heartbeats count: another id would otherwise keep a dead member alive
      // or grow the table without end.
      if (engine_.IsLeader() && members_.FindMember(request.heartbeat().node_id()) != nullptr) {
        membership_.HeardFrom(request.heartbeat().node_id());
        for (const auto& listener : heartbeat_listeners_) listener(request.heartbeat());
      }
      return;
    default:
      if (auto handler = request_handlers_.find(request.body_case());
          handler != request_handlers_.end()) {
        handler->second(request, std::move(reply));
      }
      return;
  }
}

// ---- leader duties ------------------------------------------------------------------------

void ConsensusService::PublishMemberEvent(const MemberEvent& event) const {
  const char* type = "member.joined";
  switch (event.kind) {
    case MemberEvent::Kind::kJoined:
      break;
    case MemberEvent::Kind::kRejoined:
      type = "member.rejoined";
      break;
    case MemberEvent::Kind::kDead:
      type = "member.dead";
      break;
    case MemberEvent::Kind::kRevived:
      type = "member.revived";
      break;
    case MemberEvent::Kind::kSuspect:
      type = "member.suspect";
      break;
    case MemberEvent::Kind::kRecovered:
      type = "member.alive";
      break;
    case MemberEvent::Kind::kLeft:
      type = "member.left";
      break;
  }
  options_.events(type, event.at_nanos, {{"member", MemberSummaryJson(event.member)}});
}

void ConsensusService::ObserveLeadership(bool leader) {
  const uint64_t term = engine_.term();
  const ClusterStatus status = GetStatus();
  const std::optional<std::string> leader_id =
      status.leader ? std::optional(status.leader->id()) : std::nullopt;
  if (leader_id != logged_leader_) {
    if (leader_id) {
      ++stats_.leader_changes;
      spdlog::info("consensus: the leader is {} at {} (term {})",
                   leader ? "this node" : status.leader->name(), status.leader->ip(), term);
    } else {
      spdlog::warn(
          "consensus: no leader (term {}): an election is under way, or this node is "
          "cut off from a majority of the voters",
          term);
    }
    logged_leader_ = leader_id;
    if (options_.events) {
      options_.events(
          "leader.changed", clock_.WallUtcNanos(),
          {{"leader", status.leader ? MemberSummaryJson(*status.leader) : nlohmann::json(nullptr)},
           {"term", term}});
    }
  }
  if (was_leader_ && !leader) {
    ++stats_.step_downs;
    spdlog::warn("consensus: stepped down as the leader of term {}: {}", led_term_,
                 term > led_term_ ? "another node started a newer term"
                                  : "lost contact with a majority of the voters");
  }
  if (leader && !was_leader_) led_term_ = term;
  if (status.quorum != had_quorum_) {
    if (status.quorum) {
      spdlog::info("consensus: quorum regained ({} of {} voters alive)", status.voters_alive,
                   status.voters);
    } else {
      spdlog::warn("consensus: quorum lost ({} of {} voters alive{})", status.voters_alive,
                   status.voters, status.leader ? "" : ", no leader");
    }
    had_quorum_ = status.quorum;
  }
}

uint64_t ConsensusService::term() const {
  const std::optional<SpareFeed::Source> source = FeedSource();
  return std::max(engine_.term(), source ? source->term : 0);
}

ConsensusStats ConsensusService::stats() const {
  ConsensusStats stats = stats_;
  stats.reads_refused = reads_.refused();
  stats.joins_refused = membership_.joins_refused();
  stats.connections = engine_.connection_stats();
  return stats;
}

void ConsensusService::OnBecameLeader() {
  membership_.OnBecameLeader();
  if (members_.cluster_id().empty()) {
    // The founder: name the cluster and enter the member list, in one entry.
    Propose(MembersState::Found(RandomHexId()), [](Result<Committed>) {});
    Propose(MembersState::Join(SelfRecord(wire::VOTER)), [](Result<Committed>) {});
  }
}

// ---- leaving --------------------------------------------------------------------------------

void ConsensusService::Leave(std::function<void()> done) {
  if (phase_ == Phase::kClosed || phase_ == Phase::kLeaving) {
    done();
    return;
  }
  const bool member = engine_.started() && InConfiguration() && phase_ != Phase::kFailed;
  phase_ = Phase::kLeaving;
  feed_.Stop();
  tick_timer_.Stop();
  proposer_.Stop();
  reads_.Stop();
  on_closed_ = std::move(done);
  auto close = [this] {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    leave_deadline_.reset();
    engine_.Close([this] {
      auto callback = std::move(on_closed_);
      if (callback) callback();
    });
  };
  // Whatever happens below, the engine closes within the budget.
  leave_deadline_ = std::make_unique<Timer>(loop_);
  leave_deadline_->Start(std::chrono::duration_cast<std::chrono::milliseconds>(kLeaveBudget),
                         std::chrono::milliseconds(0), close);
  if (!member) {
    close();
    return;
  }
  auto ask_leader = [this, close] {
    auto leader = LeaderIp();
    if (!leader || *leader == options_.ip) {
      close();
      return;
    }
    wire::PeerMessage request;
    request.mutable_leave_request()->set_node_id(options_.identity.id);
    peers_.Call(*leader, request, std::chrono::milliseconds(1500),
                [close](Result<wire::PeerMessage>) { close(); });
  };
  if (engine_.IsLeader()) {
    spdlog::info("consensus: leaving: handing leadership over first");
    engine_.Transfer(0, [this, ask_leader] { AfterHandover(50, ask_leader); });
    return;
  }
  ask_leader();
}

void ConsensusService::HandleRequests(wire::PeerMessage::BodyCase kind,
                                      PeerService::RequestHandler handler) {
  if (!request_handlers_.emplace(kind, std::move(handler)).second) {
    std::fprintf(stderr, "consensus: a second handler for peer message kind %d\n",
                 static_cast<int>(kind));
    std::abort();
  }
}

std::optional<Nanos> ConsensusService::SilenceOf(const std::string& id) const {
  if (!engine_.IsLeader()) return std::nullopt;
  return membership_.SilenceOf(id);
}

std::optional<Nanos> ConsensusService::SinceLeaderKnown() const {
  if (engine_.IsLeader() || LeaderIp()) return Nanos(0);
  if (leader_known_at_ == MonoTime{}) return std::nullopt;
  return clock_.Monotonic() - leader_known_at_;
}

void ConsensusService::AfterHandover(int polls_left, std::function<void()> then) {
  // The new leader needs a moment to be known; then it can record our leave.
  auto leader = LeaderIp();
  if ((leader && *leader != options_.ip) || polls_left <= 0) {
    then();
    return;
  }
  loop_.RunAfter(std::chrono::milliseconds(20), [this, polls_left, then = std::move(then)] {
    AfterHandover(polls_left - 1, then);
  });
}

// ---- status ---------------------------------------------------------------------------------

ClusterStatus ConsensusService::GetStatus() const {
  ClusterStatus status;
  switch (phase_) {
    case Phase::kForming:
      status.phase = options_.bootstrap_expect > 0
                         ? "waiting for " + std::to_string(options_.bootstrap_expect) + " nodes"
                         : "looking for a cluster to join";
      break;
    case Phase::kJoining:
      status.phase = "joining";
      break;
    case Phase::kMember:
      status.phase = "member";
      break;
    case Phase::kLeaving:
      status.phase = "leaving";
      break;
    case Phase::kClosed:
      status.phase = "closed";
      break;
    case Phase::kFailed:
      status.phase = "error: " + failure_;
      break;
  }
  status.cluster_id = cluster_id();
  status.member = engine_.started() && InConfiguration();
  const std::optional<SpareFeed::Source> source = FeedSource();
  const bool fed = source.has_value();
  status.term = term();
  status.applied_index = engine_.applied_index();
  status.commit_index = std::max(engine_.commit_index(), status.applied_index);
  if (fed) {
    if (const auto* record = members_.FindMember(source->leader_id)) status.leader = *record;
  } else if (auto leader = engine_.Leader()) {
    if (const auto* record = members_.FindMemberByRaftId(leader->id)) status.leader = *record;
  }
  auto count = [&status](wire::Role role, const wire::MemberRecord* record) {
    if (role == wire::STANDBY) ++status.standbys;
    if (role == wire::SPARE) ++status.spares;
    if (role != wire::VOTER) return;
    ++status.voters;
    if (record == nullptr || record->state() == wire::ALIVE || record->state() == wire::SUSPECT) {
      ++status.voters_alive;
    }
  };
  if (fed) {
    // A spare's Raft configuration is empty or stale; the member list it is fed follows the
    // leader's.
    for (const auto* member : members_.MembersInJoinOrder()) {
      if (member->state() != wire::LEFT) count(member->role(), member);
    }
  } else {
    for (const RaftServer& server : engine_.Configuration()) {
      count(ToWireRole(server.role), members_.FindMemberByRaftId(server.id));
    }
  }
  status.quorum = status.leader.has_value() && status.voters_alive * 2 > status.voters;
  status.snapshots = engine_.snapshot_stats();
  return status;
}

}  // namespace synod
