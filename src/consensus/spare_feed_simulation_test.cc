// SpareFeed on virtual time: a leader's feed and its spares', unchanged, over a simulated
// network that delays, reorders, drops and cuts off messages, on one ManualScheduler. Each
// scenario runs in well under a second and the same way every time, and checks what the feed
// promises: every spare applies every committed entry once and in order, a spare cut off past
// the window takes the state in chunks and follows again, and a new leader takes the spares
// over.
#include "consensus/spare_feed.h"

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "consensus/members_state.h"
#include "consensus/replicated_state.h"
#include "core/manual_scheduler.h"
#include "kv/kv_state.h"

namespace synod {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kTick = milliseconds(100);  // ConsensusService's

class SimulatedCluster;

// The engine as the feed sees it. A voter applies every committed entry (the Raft log); a spare
// only what the feed brings, which must come in order, each index once.
class SimulatedEngine final : public FeedEngine {
 public:
  SimulatedEngine(SimulatedCluster& cluster, ReplicatedState& state, std::string id)
      : cluster_(cluster), state_(state), id_(std::move(id)) {}

  void SetFeed(SpareFeed* feed) { feed_ = feed; }
  // Through the Raft log (voters).
  void ApplyCommitted(uint64_t index, const std::string& entry) { Apply(index, entry); }
  uint64_t restores() const { return restores_; }

  // FeedEngine.
  bool started() const override { return true; }
  bool IsLeader() const override;
  std::optional<RaftServer> Leader() const override;
  uint64_t term() const override;
  uint64_t applied_index() const override { return applied_; }
  std::optional<RaftRole> RoleOf(uint64_t id) const override;
  void ApplyFed(uint64_t index, std::string_view payload) override {
    if (index <= applied_) return;
    ASSERT_EQ(index, applied_ + 1) << id_ << " was fed entry " << index << " after " << applied_;
    Apply(index, payload);
  }
  void FedThrough(uint64_t index) override { applied_ = std::max(applied_, index); }
  Status RestoreFed(uint64_t index, const std::function<Status()>& install) override {
    Status installed = install();
    if (!installed.ok()) return installed;
    applied_ = index;
    ++restores_;
    if (feed_ != nullptr) feed_->OnRestored(index);
    return Status::Ok();
  }

 private:
  void Apply(uint64_t index, std::string_view entry) {
    Result<std::vector<wire::OpResult>> results = state_.Apply(index, entry);
    ASSERT_TRUE(results.ok()) << id_ << " cannot apply " << index;
    applied_ = index;
    if (feed_ != nullptr) feed_->OnApplied(index, entry);
  }

  SimulatedCluster& cluster_;
  ReplicatedState& state_;
  std::string id_;
  SpareFeed* feed_ = nullptr;
  uint64_t applied_ = 0;
  uint64_t restores_ = 0;
};

// This node's side of the network.
class SimulatedPeers final : public PeerSender {
 public:
  SimulatedPeers(SimulatedCluster& cluster, Ipv4 self) : cluster_(cluster), self_(self) {}
  void Call(Ipv4 ip, wire::PeerMessage request, milliseconds timeout, CallCallback done,
            PeerLane lane) override;
  void Send(Ipv4 ip, const wire::PeerMessage& message) override;

 private:
  SimulatedCluster& cluster_;
  Ipv4 self_;
};

struct SimulatedNode {
  SimulatedNode(SimulatedCluster& cluster, std::string id_in, Ipv4 ip_in, size_t window)
      : id(std::move(id_in)), ip(ip_in), engine(cluster, state, id), peers(cluster, ip) {
    state.Register(members);
    state.Register(kv);
    SpareFeed::Options options{.self_id = id, .self_ip = ip, .window = window};
    feed =
        std::make_unique<SpareFeed>(cluster_clock(cluster), peers, engine, state, members, options);
    engine.SetFeed(feed.get());
  }
  static const Clock& cluster_clock(SimulatedCluster& cluster);

  std::string id;
  Ipv4 ip;
  ReplicatedState state;
  MembersState members;
  KvState kv;
  SimulatedEngine engine;
  SimulatedPeers peers;
  std::unique_ptr<SpareFeed> feed;
};

// Node 0 leads and node 1 is the other voter; the rest are spares. The leader commits one entry
// (a 2 KiB put) per millisecond while `writing`; every message takes 0 to 3 ms, so they
// overtake each other, and `loss` of them are dropped.
class SimulatedCluster {
 public:
  SimulatedCluster(size_t spares, uint64_t seed, size_t window) : random(seed) {
    for (size_t i = 0; i < 2 + spares; ++i) {
      const std::string id = std::string(8, static_cast<char>('a' + i)) + "00000000";
      const Ipv4 ip = Ipv4::Parse("127.0.0." + std::to_string(10 + i)).value();
      nodes.push_back(std::make_unique<SimulatedNode>(*this, id, ip, window));
      roles[RaftIdFromNodeId(id)] = i < 2 ? RaftRole::kVoter : RaftRole::kSpare;
    }
    Commit(MembersState::Found("simulated"));
    for (auto& node : nodes) {
      wire::MemberRecord member;
      member.set_id(node->id);
      member.set_name(node->id);
      member.set_ip(node->ip.ToString());
      member.set_raft_id(RaftIdFromNodeId(node->id));
      member.set_role(roles[member.raft_id()] == RaftRole::kVoter ? wire::VOTER : wire::SPARE);
      (*member.mutable_modules())[std::string(MembersState::kName)] = 1;
      Commit(MembersState::Join(member));
    }
    ticker = loop.NewAlarm();
    ticker->Start(kTick, kTick, [this] {
      for (size_t i = 0; i < nodes.size(); ++i) nodes[i]->feed->Tick(i == leader || i == deposed);
    });
    writer = loop.NewAlarm();
    writer->Start(milliseconds(1), milliseconds(1), [this] {
      if (writing) Commit(KvState::Put("key" + std::to_string(writes++), std::string(2048, 'v')));
    });
  }

  void Run(Nanos span) { loop.Advance(span); }

  // Commits an entry: the voters apply it from the log (and the leader feeds it on).
  void Commit(const Proposal& proposal) {
    log.push_back(EncodeEntry(clock.WallUtcNanos(), {OpOf(proposal)}));
    for (size_t i = 0; i < 2; ++i) {
      if (i != deposed) nodes[i]->engine.ApplyCommitted(log.size(), log.back());
    }
  }

  // Delivers `message` to the node at `to` after a random delay, unless it is lost.
  void Deliver(Ipv4 from, Ipv4 to, wire::PeerMessage message, std::function<void()> lost) {
    if (Cut(from) || Cut(to) || Chance(loss)) {
      if (lost) lost();
      return;
    }
    loop.RunAfter(milliseconds(random() % 4), [this, to, message = std::move(message)] {
      SimulatedNode* node = At(to);
      if (node == nullptr) return;
      if (message.has_entry_feed()) node->feed->OnFeed(message.entry_feed());
      if (message.has_entry_feed_reply()) node->feed->OnFeedReply(message.entry_feed_reply());
    });
  }
  SimulatedNode* At(Ipv4 ip) {
    for (auto& node : nodes) {
      if (node->ip == ip) return node.get();
    }
    return nullptr;
  }
  bool Cut(Ipv4 ip) const { return cut_off.contains(ip.ToString()); }
  bool Chance(double p) { return std::uniform_real_distribution<>(0, 1)(random) < p; }

  // Every node holds what the leader holds, read through the modules.
  void ExpectAllCaughtUp() {
    const SimulatedNode& leader_node = *nodes[leader];
    ASSERT_EQ(leader_node.engine.applied_index(), log.size());
    for (auto& node : nodes) {
      EXPECT_EQ(node->engine.applied_index(), log.size()) << node->id << " is behind";
      EXPECT_EQ(node->kv.size(), writes) << node->id;
      EXPECT_EQ(node->members.MembersInJoinOrder().size(), nodes.size()) << node->id;
      for (uint64_t key = 0; key < writes; key += 97) {
        EXPECT_EQ(node->kv.Get("key" + std::to_string(key)), std::string(2048, 'v'))
            << node->id << " lacks key" << key;
      }
    }
  }

  ManualClock clock;
  ManualScheduler loop{clock};
  std::mt19937_64 random;
  std::vector<std::unique_ptr<SimulatedNode>> nodes;
  std::map<uint64_t, RaftRole> roles;
  std::vector<std::string> log;  // committed entries, index 1 first
  size_t leader = 0;
  std::optional<size_t> deposed;  // a former leader that does not know it was replaced
  uint64_t term = 1;
  bool writing = true;
  uint64_t writes = 0;
  double loss = 0;
  std::set<std::string> cut_off;  // addresses that nothing reaches or leaves
  std::unique_ptr<Scheduler::Alarm> ticker;
  std::unique_ptr<Scheduler::Alarm> writer;
};

const Clock& SimulatedNode::cluster_clock(SimulatedCluster& cluster) { return cluster.clock; }

bool SimulatedEngine::IsLeader() const {
  return cluster_.nodes[cluster_.leader]->id == id_ ||
         (cluster_.deposed && cluster_.nodes[*cluster_.deposed]->id == id_);
}
std::optional<RaftServer> SimulatedEngine::Leader() const {
  const SimulatedNode& leader = *cluster_.nodes[cluster_.leader];
  return RaftServer{RaftIdFromNodeId(leader.id), leader.ip.ToString() + ":7000", RaftRole::kVoter};
}
uint64_t SimulatedEngine::term() const {
  const bool deposed = cluster_.deposed && cluster_.nodes[*cluster_.deposed]->id == id_;
  return deposed ? cluster_.term - 1 : cluster_.term;
}
std::optional<RaftRole> SimulatedEngine::RoleOf(uint64_t id) const {
  auto it = cluster_.roles.find(id);
  if (it == cluster_.roles.end()) return std::nullopt;
  return it->second;
}

void SimulatedPeers::Send(Ipv4 ip, const wire::PeerMessage& message) {
  cluster_.Deliver(self_, ip, message, nullptr);
}

// Messages travel on TCP links: what is lost was on a link that broke, and a call on it fails
// at once; a node cut off answers nothing, and a call to it times out.
void SimulatedPeers::Call(Ipv4 ip, wire::PeerMessage request, milliseconds timeout,
                          CallCallback done, PeerLane) {
  auto answer = std::make_shared<CallCallback>(std::move(done));
  auto fail = [this, answer](milliseconds after, std::string why) {
    cluster_.loop.RunAfter(after, [answer, why] { (*answer)(Status::Error(why)); });
  };
  if (cluster_.Cut(self_) || cluster_.Cut(ip)) return fail(timeout, "timed out");
  if (cluster_.Chance(cluster_.loss)) return fail(milliseconds(1), "connection lost");
  cluster_.loop.RunAfter(milliseconds(cluster_.random() % 4),
                         [this, ip, request, answer, fail, timeout] {
                           SimulatedNode* node = cluster_.At(ip);
                           if (node == nullptr || !request.has_state_chunk_request())
                             return fail(timeout, "timed out");
                           wire::PeerMessage response;
                           *response.mutable_state_chunk() =
                               node->feed->OnStateChunkRequest(request.state_chunk_request());
                           if (cluster_.Chance(cluster_.loss))
                             return fail(milliseconds(1), "connection lost");
                           cluster_.loop.RunAfter(milliseconds(cluster_.random() % 4),
                                                  [answer, response] { (*answer)(response); });
                         });
}

class SpareFeedSimulation : public ::testing::TestWithParam<uint64_t> {};

TEST_P(SpareFeedSimulation, SparesApplyEveryEntryInOrderThroughLossAndReordering) {
  SimulatedCluster cluster(3, GetParam(), 4096);
  cluster.loss = 0.1;
  cluster.Run(seconds(2));
  cluster.writing = false;
  cluster.Run(seconds(2));
  EXPECT_GE(cluster.writes, 1900u);
  cluster.ExpectAllCaughtUp();
  for (auto& node : cluster.nodes) EXPECT_EQ(node->engine.restores(), 0u) << node->id;
}

TEST_P(SpareFeedSimulation, ASpareCutOffPastTheWindowTakesTheStateInChunksThenFollows) {
  SimulatedCluster cluster(2, GetParam(), 1024);
  cluster.loss = 0.05;
  cluster.Run(milliseconds(500));
  SimulatedNode& spare = *cluster.nodes[3];
  cluster.cut_off.insert(spare.ip.ToString());
  cluster.Run(seconds(3));  // 3,000 entries, 6 MiB of state: past the window
  const uint64_t behind = spare.engine.applied_index();
  EXPECT_LT(behind + 2000, cluster.log.size());
  cluster.cut_off.clear();
  cluster.Run(seconds(2));
  cluster.writing = false;
  cluster.Run(seconds(3));
  cluster.ExpectAllCaughtUp();
  EXPECT_GE(spare.engine.restores(), 1u) << "it took the leader's state";
  EXPECT_EQ(cluster.nodes[2]->engine.restores(), 0u) << "the other spare kept up entry by entry";
}

TEST_P(SpareFeedSimulation, ANewLeaderTakesTheSparesOverWhileTheDeposedOneStillFeeds) {
  SimulatedCluster cluster(3, GetParam(), 4096);
  cluster.loss = 0.05;
  cluster.Run(seconds(1));
  // Node 1 is elected in term 2; node 0, cut off from it, still believes it leads in term 1 and
  // keeps feeding the spares what it has.
  cluster.deposed = 0;
  cluster.leader = 1;
  ++cluster.term;
  cluster.Run(milliseconds(500));
  for (int sample = 0; sample < 20; ++sample) {
    cluster.Run(milliseconds(50));
    for (size_t i = 2; i < cluster.nodes.size(); ++i) {
      std::optional<SpareFeed::Source> source = cluster.nodes[i]->feed->RecentSource();
      ASSERT_TRUE(source.has_value()) << cluster.nodes[i]->id;
      EXPECT_EQ(source->leader_id, cluster.nodes[1]->id) << "a deposed leader took a spare back";
      EXPECT_EQ(source->term, 2u);
    }
  }
  // It learns of the new term and follows the log again.
  cluster.deposed.reset();
  for (uint64_t index = cluster.nodes[0]->engine.applied_index() + 1; index <= cluster.log.size();
       ++index) {
    cluster.nodes[0]->engine.ApplyCommitted(index, cluster.log[index - 1]);
  }
  cluster.writing = false;
  cluster.Run(seconds(3));
  cluster.ExpectAllCaughtUp();
}

INSTANTIATE_TEST_SUITE_P(Seeds, SpareFeedSimulation, ::testing::Range<uint64_t>(1, 11));

}  // namespace
}  // namespace synod
