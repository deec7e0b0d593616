// TimerService on virtual time: several nodes' services, unchanged, over an in-memory log and a
// simulated webhook receiver, on one ManualScheduler. Each scenario (crashes, restarts of every
// node, slow receivers, random commit delays) runs in milliseconds and the same way every time,
// and checks what a user of the timers would: each timer sent once, on time, recorded on every
// node.
#include "timers/timer_service.h"

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "consensus/members_state.h"
#include "consensus/proposer.h"
#include "consensus/raft_engine.h"
#include "consensus/replicated_state.h"
#include "core/manual_scheduler.h"
#include "timers/timer_state.h"

namespace synod {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kMilli = 1'000'000;

// One webhook request as the receiver saw it.
struct Delivery {
  std::string node;
  std::string timer;
  int64_t sent_nanos = 0;
};

class SimulatedCluster;

// What the receiver does with each request: answered 200 after `answer_after`.
class Receiver final : public HttpSender {
 public:
  Receiver(SimulatedCluster& cluster, std::string node) : cluster_(cluster), node_(node) {}
  // A crashed node's requests are never answered: its process is gone.
  ~Receiver() override { *alive_ = false; }
  void Send(OutgoingHttpRequest request, Callback done) override;

 private:
  SimulatedCluster& cluster_;
  std::string node_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// One node: its replicated state, applied from the shared log, and its TimerService. A crash
// loses everything but the log; a boot replays the log, as a restarted agent does.
class SimulatedNode final : public ClusterLog {
 public:
  SimulatedNode(SimulatedCluster& cluster, std::string id) : cluster_(cluster), id_(id) {}

  void Boot();
  void Crash();
  bool up() const { return timers_ != nullptr; }
  const std::string& id() const { return id_; }
  TimerService& timers() { return *timers_; }
  // Applies a committed entry; the results of its operations.
  std::vector<wire::OpResult> Apply(uint64_t index, const std::string& entry);

  // ClusterLog.
  void RegisterModule(StateModule& module) override { state_->Register(module); }
  void AddStateListener(std::function<void()> listener) override {
    state_->AddChangeListener(std::move(listener));
  }
  void Propose(Proposal proposal, ProposeCallback done) override;
  std::string NewRequestId() override {
    return id_ + "-" + std::to_string(boots_) + "-" + std::to_string(++requests_);
  }
  void ConfirmRead(std::function<void(Status)> done) override;
  const MembersState& members() const override { return *members_; }
  uint64_t term() const override;
  std::optional<Ipv4> LeaderAddress() const override;
  bool IsLeader() const override;

 private:
  SimulatedCluster& cluster_;
  std::string id_;
  int boots_ = 0;
  uint64_t requests_ = 0;
  std::shared_ptr<bool> alive_;  // this incarnation's: callbacks to a crashed one are dropped
  std::unique_ptr<ReplicatedState> state_;
  std::unique_ptr<MembersState> members_;
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<TimerService> timers_;
};

// The log and the network. An operation commits 1 to 5 ms after it is proposed (so that
// proposals overtake each other), and only while a majority of nodes is up; every node up
// applies it at once. The first node up leads, and each change of leader is a new term.
class SimulatedCluster {
 public:
  SimulatedCluster(size_t size, uint64_t seed) : random(seed) {
    for (size_t i = 0; i < size; ++i) {
      nodes.push_back(std::make_unique<SimulatedNode>(*this, "node" + std::to_string(i)));
    }
    CommitAsLeader(MembersState::Found("simulated"));
    for (auto& node : nodes) node->Boot();
    loop.RunDue();
    Run(milliseconds(10));
    for (auto& node : nodes) CommitAsLeader(JoinOf(node->id()));
    Run(milliseconds(10));
  }
  ~SimulatedCluster() {
    for (auto& node : nodes) {
      if (node->up()) node->Crash();
    }
  }

  void Run(Nanos span) { loop.Advance(span); }
  int64_t Now() const { return clock.WallUtcNanos(); }

  bool HasLeader() const {
    const auto up = std::count_if(nodes.begin(), nodes.end(), [](auto& n) { return n->up(); });
    return static_cast<size_t>(up) * 2 > nodes.size();
  }
  const SimulatedNode* Leader() const {
    if (!HasLeader()) return nullptr;
    for (auto& node : nodes) {
      if (node->up()) return node.get();
    }
    return nullptr;
  }
  // Called after every crash and boot.
  void FollowLeader() {
    const SimulatedNode* leader = Leader();
    if (leader != last_leader_) ++term;
    last_leader_ = leader;
  }

  // Commits `op` if there is a leader when its time comes; `done` runs unless `alive` (of the
  // proposer) says it crashed meanwhile, with its result on the proposer.
  void Commit(wire::Op op, std::shared_ptr<bool> alive, const SimulatedNode* proposer,
              std::function<void(Result<wire::OpResult>)> done) {
    const milliseconds delay(1 + static_cast<int>(random() % 5));
    loop.RunAfter(delay, [this, op = std::move(op), alive, proposer, done = std::move(done)] {
      const bool answer = alive == nullptr || *alive;
      if (!HasLeader()) {
        if (answer && done) done(Status(StatusCode::kUnavailable, "no leader"));
        return;
      }
      log.push_back(EncodeEntry(Now(), {op}));  // the leader's clock
      std::optional<wire::OpResult> result;
      for (auto& node : nodes) {
        if (!node->up()) continue;
        std::vector<wire::OpResult> results = node->Apply(log.size(), log.back());
        if (node.get() == proposer && !results.empty()) result = results.front();
      }
      if (answer && result && done) done(*result);
    });
  }
  // An operation of the leader's own (membership duties), answered nowhere.
  void CommitAsLeader(Proposal proposal) {
    proposal.request_id = "leader-" + std::to_string(++leader_requests_);
    Commit(OpOf(std::move(proposal)), nullptr, nullptr, nullptr);
  }

  static Proposal JoinOf(const std::string& id) {
    wire::MemberRecord member;
    member.set_id(id);
    member.set_name(id);
    member.set_ip("127.0.0.2");
    member.set_raft_id(RaftIdFromNodeId(id));
    member.set_role(wire::VOTER);
    (*member.mutable_modules())[std::string(MembersState::kName)] = 1;
    (*member.mutable_modules())[std::string(TimerState::kName)] = TimerState::kClaimVersion;
    return MembersState::Join(member);
  }
  // The leader's liveness duty: a node silent for `kDeclaredDeadAfter` is declared dead, and
  // alive again once heard from.
  void DeclareLiveness(const std::string& id, wire::MemberState state) {
    wire::MemberLiveness liveness;
    auto* entry = liveness.add_entries();
    entry->set_id(id);
    entry->set_state(state);
    CommitAsLeader(MembersState::Liveness(liveness));
  }
  static constexpr milliseconds kDeclaredDeadAfter{3000};

  // Creates `count` timers through random nodes that are up, due `from` to `to` from now.
  // Returns their ids once committed.
  std::vector<std::string> CreateTimers(int count, milliseconds from, milliseconds to) {
    auto created = std::make_shared<std::vector<std::string>>();
    for (int i = 0; i < count; ++i) {
      std::vector<SimulatedNode*> up;
      for (auto& node : nodes) {
        if (node->up()) up.push_back(node.get());
      }
      SimulatedNode* node = up[random() % up.size()];
      wire::TimerCreate create;
      create.set_id(node->timers().NewTimerId());
      create.mutable_spec()->set_url("http://127.0.0.1:9/hook");
      create.mutable_spec()->set_method("POST");
      create.mutable_spec()->set_timeout_ms(10'000);
      create.mutable_spec()->set_max_attempts(3);
      create.mutable_spec()->set_initial_backoff_nanos(1000 * kMilli);
      create.mutable_spec()->set_max_backoff_nanos(60'000 * kMilli);
      create.mutable_spec()->set_backoff_multiplier(2.0);
      const int64_t span = (to - from).count() * kMilli;
      create.set_at_nanos(Now() + from.count() * kMilli + static_cast<int64_t>(random() % span));
      node->timers().Create(create, "", [created](Result<wire::TimerRecord> record) {
        ASSERT_TRUE(record.ok()) << record.status().message();
        created->push_back(record.value().id());
      });
    }
    Run(milliseconds(50));
    EXPECT_EQ(created->size(), static_cast<size_t>(count));
    return *created;
  }

  // Each node's copy of a timer; every node up must hold the same.
  wire::TimerRecord RecordOf(const std::string& id) {
    std::optional<wire::TimerRecord> first;
    for (auto& node : nodes) {
      if (!node->up()) continue;
      std::optional<wire::TimerRecord> record = node->timers().state().Get(Uuid::Parse(id).value());
      EXPECT_TRUE(record.has_value()) << id << " unknown on " << node->id();
      if (!record) return {};
      if (first) {
        EXPECT_EQ(record->SerializeAsString(), first->SerializeAsString())
            << id << " differs on " << node->id();
      } else {
        first = record;
      }
    }
    return first.value_or(wire::TimerRecord{});
  }

  std::map<std::string, std::vector<Delivery>> DeliveriesByTimer() const {
    std::map<std::string, std::vector<Delivery>> by_timer;
    for (const Delivery& delivery : deliveries) by_timer[delivery.timer].push_back(delivery);
    return by_timer;
  }

  ManualClock clock;
  ManualScheduler loop{clock};
  std::mt19937_64 random;
  std::vector<std::string> log;  // committed entries, index 1 first
  uint64_t term = 0;
  std::vector<std::unique_ptr<SimulatedNode>> nodes;
  std::vector<Delivery> deliveries;
  milliseconds answer_after{20};

 private:
  const SimulatedNode* last_leader_ = nullptr;
  uint64_t leader_requests_ = 0;
};

void Receiver::Send(OutgoingHttpRequest request, Callback done) {
  Delivery delivery{node_, "", cluster_.Now()};
  for (const std::string& header : request.headers) {
    if (header.starts_with("Synod-Timer-Id: ")) delivery.timer = header.substr(16);
  }
  cluster_.deliveries.push_back(delivery);
  cluster_.loop.RunAfter(cluster_.answer_after, [alive = alive_, done = std::move(done)] {
    if (*alive) done(HttpReply{200, "", {}});
  });
}

void SimulatedNode::Boot() {
  ++boots_;
  alive_ = std::make_shared<bool>(true);
  state_ = std::make_unique<ReplicatedState>();
  members_ = std::make_unique<MembersState>();
  state_->Register(*members_);
  receiver_ = std::make_unique<Receiver>(cluster_, id_);
  TimerOptions options;
  options.self_id = id_;
  timers_ =
      std::make_unique<TimerService>(cluster_.loop, cluster_.clock, *this, *receiver_, options);
  for (size_t i = 0; i < cluster_.log.size(); ++i) Apply(i + 1, cluster_.log[i]);
  timers_->Start();
  cluster_.FollowLeader();
  const wire::MemberRecord* self = members_->FindMember(id_);
  if (self != nullptr && self->state() == wire::DEAD) {
    cluster_.DeclareLiveness(id_, wire::ALIVE);
  }
}

void SimulatedNode::Crash() {
  *alive_ = false;
  timers_.reset();
  receiver_.reset();
  members_.reset();
  state_.reset();
  cluster_.FollowLeader();
  cluster_.loop.RunAfter(SimulatedCluster::kDeclaredDeadAfter, [this, boots = boots_] {
    if (!up() && boots_ == boots) cluster_.DeclareLiveness(id_, wire::DEAD);
  });
}

std::vector<wire::OpResult> SimulatedNode::Apply(uint64_t index, const std::string& entry) {
  Result<std::vector<wire::OpResult>> results = state_->Apply(index, entry);
  EXPECT_TRUE(results.ok()) << id_ << " cannot apply entry " << index;
  return results.ok() ? results.value() : std::vector<wire::OpResult>{};
}

void SimulatedNode::Propose(Proposal proposal, ProposeCallback done) {
  if (proposal.request_id.empty()) proposal.request_id = NewRequestId();
  cluster_.Commit(
      OpOf(std::move(proposal)), alive_, this,
      [done = std::move(done)](Result<wire::OpResult> result) {
        done(result.ok() ? FromOpResult(result.value()) : Result<Committed>(result.status()));
      });
}

void SimulatedNode::ConfirmRead(std::function<void(Status)> done) {
  cluster_.loop.RunAfter(milliseconds(2), [this, alive = alive_, done = std::move(done)] {
    if (!*alive) return;
    done(cluster_.HasLeader() ? Status::Ok() : Status(StatusCode::kNoQuorum, "no leader"));
  });
}

uint64_t SimulatedNode::term() const { return cluster_.term; }

std::optional<Ipv4> SimulatedNode::LeaderAddress() const {
  if (!cluster_.HasLeader()) return std::nullopt;
  return Ipv4::Parse("127.0.0.2").value();
}

bool SimulatedNode::IsLeader() const { return cluster_.Leader() == this; }

// Every timer was sent once, by a node up at the time, no earlier than its due time and no
// later than `max_lateness`; every node records it done.
void ExpectEachSentOnceAndDone(SimulatedCluster& cluster, const std::vector<std::string>& ids,
                               Nanos max_lateness, const std::set<std::string>& may_repeat = {}) {
  const auto by_timer = cluster.DeliveriesByTimer();
  size_t repeated = 0;
  for (const std::string& id : ids) {
    const wire::TimerRecord record = cluster.RecordOf(id);
    EXPECT_EQ(record.status(), wire::TIMER_DONE) << id;
    auto it = by_timer.find(id);
    ASSERT_NE(it, by_timer.end()) << id << " never sent";
    if (may_repeat.contains(id)) {
      repeated += it->second.size() > 1 ? 1 : 0;
      EXPECT_LE(it->second.size(), 2u) << id;
    } else {
      EXPECT_EQ(it->second.size(), 1u)
          << id << " sent by " << it->second[0].node << " and " << it->second.back().node;
    }
    const int64_t lateness = it->second.front().sent_nanos - record.due_nanos();
    EXPECT_GE(lateness, 0) << id << " sent early";
    EXPECT_LE(lateness, max_lateness.count())
        << id << " sent late by " << lateness / kMilli << " ms";
  }
  EXPECT_EQ(cluster.deliveries.size(), ids.size() + repeated);
}

class TimerServiceSimulation : public ::testing::TestWithParam<uint64_t> {};

TEST_P(TimerServiceSimulation, EachTimerIsSentOnceOnTimeByItsOwner) {
  SimulatedCluster cluster(3, GetParam());
  const std::vector<std::string> ids = cluster.CreateTimers(300, seconds(1), seconds(10));
  cluster.Run(seconds(12));
  // Owners send on time without asking: within the millisecond the loop timer rounds up to, or
  // for a node's first firing in a term, one read confirmation (2 ms here) later.
  ExpectEachSentOnceAndDone(cluster, ids, milliseconds(4));
  std::set<std::string> senders;
  for (const Delivery& delivery : cluster.deliveries) senders.insert(delivery.node);
  EXPECT_EQ(senders.size(), 3u) << "firing is shared by every node";
}

TEST_P(TimerServiceSimulation, ACrashedNodesTimersAreSentByItsBackupsWithinTheBackupDelay) {
  SimulatedCluster cluster(3, GetParam());
  cluster.answer_after = milliseconds(50);
  const std::vector<std::string> ids = cluster.CreateTimers(300, seconds(1), seconds(10));
  cluster.Run(seconds(4));
  // What node1 sent and was not answered yet is sent again: the contract's one exception.
  std::set<std::string> unanswered;
  for (const Delivery& delivery : cluster.deliveries) {
    if (delivery.node == "node1" &&
        delivery.sent_nanos > cluster.Now() - cluster.answer_after.count() * kMilli) {
      unanswered.insert(delivery.timer);
    }
  }
  cluster.nodes[1]->Crash();
  cluster.Run(seconds(8));
  cluster.nodes[1]->Boot();
  cluster.Run(seconds(5));
  // The backup delay (1 s) and one commit of the claim.
  ExpectEachSentOnceAndDone(cluster, ids, milliseconds(1100), unanswered);
  const auto by_timer = cluster.DeliveriesByTimer();
  for (const std::string& id : unanswered) {
    EXPECT_NE(by_timer.at(id).back().node, "node1") << "another node sends it again";
  }
}

TEST_P(TimerServiceSimulation, OverdueTimersAreSentOnceAfterEveryNodeRestarts) {
  SimulatedCluster cluster(3, GetParam());
  const std::vector<std::string> ids = cluster.CreateTimers(200, seconds(2), seconds(8));
  cluster.Run(seconds(1));
  for (auto& node : cluster.nodes) node->Crash();
  cluster.Run(seconds(10));
  // Back one after the other; the last just when the others' backups would take its timers.
  cluster.nodes[2]->Boot();
  cluster.Run(milliseconds(200));
  cluster.nodes[0]->Boot();
  cluster.Run(milliseconds(1000));
  cluster.nodes[1]->Boot();
  cluster.Run(seconds(5));
  ExpectEachSentOnceAndDone(cluster, ids, seconds(12));
}

TEST_P(TimerServiceSimulation, ASlowReceiverGetsOneRequestPerTimer) {
  SimulatedCluster cluster(3, GetParam());
  // Far longer than the backup delay: owners announce their attempts, backups stand by.
  cluster.answer_after = milliseconds(2500);
  const std::vector<std::string> ids = cluster.CreateTimers(100, seconds(1), seconds(5));
  cluster.Run(seconds(10));
  ExpectEachSentOnceAndDone(cluster, ids, milliseconds(4));
}

INSTANTIATE_TEST_SUITE_P(Seeds, TimerServiceSimulation, ::testing::Range<uint64_t>(1, 11));

}  // namespace
}  // namespace synod
