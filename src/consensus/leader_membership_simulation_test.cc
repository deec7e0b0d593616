// LeaderMembership on virtual time: the leader's membership duties, unchanged, driving a
// simulated Raft configuration (changes that take a while and sometimes fail), a member list
// committed through a simulated log, and nodes that join, send heartbeats, die, come back and
// leave, on one ManualScheduler. Each scenario checks what an operator would: who is a voter,
// a standby or a spare, which members are dead, and that records and configuration agree.
#include "consensus/leader_membership.h"

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/manual_scheduler.h"

namespace synod {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kTick = milliseconds(100);       // ConsensusService's
constexpr auto kHeartbeat = milliseconds(500);  // ConsensusOptions::member_heartbeat
constexpr auto kJoinRetry = milliseconds(1000);

struct SimulatedNode {
  std::string id;
  Ipv4 ip;
  bool up = true;
  bool joined = false;    // its join request was answered ok
  bool impostor = false;  // another node answers at its address
  bool left = false;      // it asked to leave
  std::string last_refusal;
  wire::MemberRecord Record() const {
    wire::MemberRecord record;
    record.set_id(id);
    record.set_name("n-" + id.substr(0, 4));
    record.set_ip(ip.ToString());
    record.set_peer_port(7946);
    record.set_raft_port(7947);
    record.set_raft_id(RaftIdFromNodeId(id));
    (*record.mutable_modules())[std::string(MembersState::kName)] = 1;
    return record;
  }
};

// Node 0 leads throughout. Configuration changes commit 5 to 200 ms after they are asked for,
// and one in ten fails (leadership lost for a moment, say) without changing anything; member
// list entries commit 1 to 5 ms after they are proposed.
class SimulatedCluster final : public ConfigurationEngine, public PeerReach {
 public:
  SimulatedCluster(size_t size, uint64_t seed) : random_(seed) {
    for (size_t i = 0; i < size; ++i) {
      char id[17];
      std::snprintf(id, sizeof id, "%02zx%014x", i + 1, 0xabcdefu);
      SimulatedNode node;
      node.id = id;
      node.ip = Ipv4::Parse("127.0.0." + std::to_string(10 + i)).value();
      nodes.push_back(node);
    }
    membership = std::make_unique<LeaderMembership>(
        clock, *this, *this, members,
        [this](Proposal proposal, ClusterLog::ProposeCallback done) {
          Commit(std::move(proposal), std::move(done));
        },
        LeaderMembership::Options{nodes[0].id, RoleTargets{3, 2}, LivenessRules{}});
    // The founder, as ConsensusService forms a cluster.
    configuration_.push_back({RaftIdFromNodeId(nodes[0].id), "", RaftRole::kVoter});
    membership->OnBecameLeader();
    Commit(MembersState::Found("simulated"), [](Result<Committed>) {});
    wire::MemberRecord founder = nodes[0].Record();
    founder.set_role(wire::VOTER);
    Commit(MembersState::Join(founder), [](Result<Committed>) {});
    nodes[0].joined = true;

    tick_ = loop.NewAlarm();
    tick_->Start(kTick, kTick, [this] {
      membership->Step();
      CheckInvariants();
    });
    heartbeats_ = loop.NewAlarm();
    heartbeats_->Start(kHeartbeat, kHeartbeat, [this] {
      for (size_t i = 1; i < nodes.size(); ++i) {
        // Only members' heartbeats count (ConsensusService checks the record).
        if (nodes[i].up && members.FindMember(nodes[i].id) != nullptr) {
          loop.RunAfter(milliseconds(random_() % 100),
                        [this, i] { membership->HeardFrom(nodes[i].id); });
        }
      }
    });
    joins_ = loop.NewAlarm();
    joins_->Start(kJoinRetry, kJoinRetry, [this] { AskToJoin(); });
  }

  void Run(Nanos span) { loop.Advance(span); }

  // As a joining node does, until it is both in the configuration and in the member list (a
  // configuration change that failed after the leader's answer leaves it half-way).
  void AskToJoin() {
    for (SimulatedNode& node : nodes) {
      const wire::MemberRecord* record = members.FindMember(node.id);
      if (!node.up || node.left || (RoleOf(node) && record != nullptr)) continue;
      membership->HandleJoin(node.Record(), [&node](wire::PeerMessage response) {
        if (response.join_response().ok()) {
          node.joined = true;
        } else {
          node.last_refusal = response.join_response().error();
        }
      });
    }
  }

  // A voter other than the leader, if there is one.
  SimulatedNode* AFollowingVoter() {
    for (size_t i = 1; i < nodes.size(); ++i) {
      if (RoleOf(nodes[i]) == RaftRole::kVoter) return &nodes[i];
    }
    return nullptr;
  }
  std::optional<RaftRole> RoleOf(const SimulatedNode& node) const {
    return RoleIn(configuration_, RaftIdFromNodeId(node.id));
  }
  size_t Count(RaftRole role, bool only_alive = false) const {
    size_t count = 0;
    for (const RaftServer& server : configuration_) {
      const wire::MemberRecord* member = members.FindMemberByRaftId(server.id);
      if (server.role == role && (!only_alive || (member && member->state() == wire::ALIVE))) {
        ++count;
      }
    }
    return count;
  }
  const std::vector<RaftServer>& configuration() const { return configuration_; }

  // Every member record says the role its server has in the configuration.
  void ExpectRecordsMatchTheConfiguration() const {
    for (const RaftServer& server : configuration_) {
      const wire::MemberRecord* member = members.FindMemberByRaftId(server.id);
      ASSERT_NE(member, nullptr) << "server " << server.id << " has no member record";
      EXPECT_EQ(member->role(), ToWireRole(server.role)) << member->name();
    }
  }

  // ConfigurationEngine.
  bool IsLeader() const override { return true; }
  std::vector<RaftServer> Configuration() const override { return configuration_; }
  void Add(uint64_t id, const std::string& address, ChangeCallback done) override {
    Change(std::move(done), [this, id, address] {
      EXPECT_FALSE(RoleIn(configuration_, id).has_value()) << "added twice";
      configuration_.push_back({id, address, RaftRole::kSpare});
    });
  }
  void Assign(uint64_t id, RaftRole role, ChangeCallback done) override {
    Change(std::move(done), [this, id, role] {
      for (RaftServer& server : configuration_) {
        if (server.id == id) server.role = role;
      }
    });
  }
  void Remove(uint64_t id, ChangeCallback done) override {
    Change(std::move(done), [this, id] {
      std::erase_if(configuration_, [id](const RaftServer& server) { return server.id == id; });
    });
  }

  // PeerReach: a node up answers at its address, with its id.
  bool Reach(Ipv4) override { return true; }
  void ForgetAddress(Ipv4) override {}
  std::optional<wire::Hello> HelloAt(Ipv4 ip) const override {
    for (const SimulatedNode& node : nodes) {
      if (node.ip != ip || !node.up) continue;
      wire::Hello hello;
      hello.set_node_id(node.impostor ? "ffff" + node.id.substr(4) : node.id);
      hello.set_peer_port(7946);
      hello.set_raft_port(7947);
      return hello;
    }
    return std::nullopt;
  }

  ManualClock clock;
  ManualScheduler loop{clock};
  MembersState members;
  std::vector<SimulatedNode> nodes;
  std::unique_ptr<LeaderMembership> membership;
  uint64_t most_voters = 0;

 private:
  void Change(ChangeCallback done, std::function<void()> apply) {
    ASSERT_FALSE(change_in_flight_) << "two configuration changes at once";
    change_in_flight_ = true;
    const bool fails = random_() % 10 == 0;
    loop.RunAfter(milliseconds(5 + random_() % 200),
                  [this, fails, done = std::move(done), apply = std::move(apply)] {
                    change_in_flight_ = false;
                    if (fails) {
                      done(Status(StatusCode::kNotLeader, "leadership lost"));
                      return;
                    }
                    apply();
                    done(Status::Ok());
                  });
  }

  void Commit(Proposal proposal, ClusterLog::ProposeCallback done) {
    loop.RunAfter(milliseconds(1 + random_() % 5), [this, proposal = std::move(proposal),
                                                    done = std::move(done)] {
      Result<std::string> applied = members.Apply(ApplyContext{++index_, clock.WallUtcNanos()},
                                                  proposal.version, proposal.body);
      if (!applied.ok()) {
        done(applied.status());
        return;
      }
      done(Committed{applied.value(), index_});
    });
  }

  void CheckInvariants() {
    const size_t voters = Count(RaftRole::kVoter);
    EXPECT_GE(voters, 1u);
    EXPECT_LE(voters, 3u) << "more voters than wanted";
    most_voters = std::max<uint64_t>(most_voters, voters);
  }

  std::mt19937_64 random_;
  std::vector<RaftServer> configuration_;
  bool change_in_flight_ = false;
  uint64_t index_ = 0;
  std::unique_ptr<Scheduler::Alarm> tick_;
  std::unique_ptr<Scheduler::Alarm> heartbeats_;
  std::unique_ptr<Scheduler::Alarm> joins_;
};

class LeaderMembershipSimulation : public ::testing::TestWithParam<uint64_t> {};

// Formation: every node asks at once; the first ones become voters, then standbys, the rest
// spares, one configuration change at a time, whatever changes fail on the way.
void Form(SimulatedCluster& cluster) {
  cluster.Run(seconds(10));
  for (const SimulatedNode& node : cluster.nodes) {
    ASSERT_TRUE(node.joined) << node.id << " refused: " << node.last_refusal;
    ASSERT_TRUE(cluster.RoleOf(node).has_value()) << node.id << " not in the configuration";
  }
  EXPECT_EQ(cluster.Count(RaftRole::kVoter), 3u);
  EXPECT_EQ(cluster.Count(RaftRole::kStandby), 2u);
  EXPECT_EQ(cluster.Count(RaftRole::kSpare), cluster.nodes.size() - 5);
  cluster.ExpectRecordsMatchTheConfiguration();
  for (const auto* member : cluster.members.MembersInJoinOrder()) {
    EXPECT_EQ(member->state(), wire::ALIVE) << member->name();
  }
}

TEST_P(LeaderMembershipSimulation, NodesJoiningAtOnceFillTheVotersThenTheStandbys) {
  SimulatedCluster cluster(9, GetParam());
  Form(cluster);
}

TEST_P(LeaderMembershipSimulation, ADeadVoterIsReplacedAndComesBackAsAStandby) {
  SimulatedCluster cluster(9, GetParam());
  Form(cluster);
  // A voter other than the leader stops.
  SimulatedNode* victim = cluster.AFollowingVoter();
  ASSERT_NE(victim, nullptr);
  victim->up = false;
  const MonoTime stopped = cluster.clock.Monotonic();
  auto state = [&] { return cluster.members.FindMember(victim->id)->state(); };
  while (state() != wire::DEAD && cluster.clock.Monotonic() - stopped < seconds(20)) {
    cluster.Run(milliseconds(10));
  }
  ASSERT_EQ(state(), wire::DEAD);
  // Dead 5 s after its last heartbeat (sent up to 0.6 s before it stopped), within a tick and a
  // commit.
  EXPECT_GE(cluster.clock.Monotonic() - stopped, milliseconds(4400));
  EXPECT_LE(cluster.clock.Monotonic() - stopped, milliseconds(5300));
  cluster.Run(seconds(5));
  EXPECT_EQ(cluster.RoleOf(*victim), RaftRole::kStandby) << "a dead voter is demoted";
  EXPECT_EQ(cluster.Count(RaftRole::kVoter, true), 3u) << "a standby took its place";
  EXPECT_EQ(cluster.Count(RaftRole::kStandby, true), 2u) << "a spare took the standby's";
  cluster.ExpectRecordsMatchTheConfiguration();

  victim->up = true;
  cluster.Run(seconds(5));
  EXPECT_EQ(state(), wire::ALIVE);
  EXPECT_EQ(cluster.Count(RaftRole::kVoter, true), 3u);
  EXPECT_EQ(cluster.Count(RaftRole::kStandby, true), 2u) << "one standby too many is demoted";
  cluster.ExpectRecordsMatchTheConfiguration();
}

TEST_P(LeaderMembershipSimulation, ALeavingVoterIsRecordedAndRemovedAndReplaced) {
  SimulatedCluster cluster(6, GetParam());
  Form(cluster);
  SimulatedNode* leaver = cluster.AFollowingVoter();
  ASSERT_NE(leaver, nullptr);
  std::optional<bool> answered;
  cluster.membership->HandleLeave(
      leaver->id, [&](wire::PeerMessage response) { answered = response.leave_response().ok(); });
  leaver->up = false;
  leaver->left = true;
  cluster.Run(seconds(5));
  ASSERT_EQ(answered, true);
  EXPECT_EQ(cluster.members.FindMember(leaver->id)->state(), wire::LEFT);
  EXPECT_FALSE(cluster.RoleOf(*leaver).has_value()) << "still in the configuration";
  EXPECT_EQ(cluster.Count(RaftRole::kVoter), 3u);
  EXPECT_EQ(cluster.Count(RaftRole::kStandby), 2u);
  cluster.ExpectRecordsMatchTheConfiguration();
}

TEST_P(LeaderMembershipSimulation, AJoinerThatDoesNotAnswerAtItsAddressIsRefused) {
  SimulatedCluster cluster(4, GetParam());
  cluster.nodes[3].impostor = true;
  cluster.Run(seconds(6));
  const SimulatedNode& impostor = cluster.nodes[3];
  EXPECT_FALSE(impostor.joined);
  EXPECT_NE(impostor.last_refusal.find("could not reach a node with your id"), std::string::npos)
      << impostor.last_refusal;
  EXPECT_FALSE(cluster.RoleOf(impostor).has_value());
  EXPECT_EQ(cluster.members.FindMember(impostor.id), nullptr);
  EXPECT_GT(cluster.membership->joins_refused(), 0u);
  // The others joined meanwhile: a join that waits does not hold up the rest.
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(cluster.nodes[i].joined) << i;
}

INSTANTIATE_TEST_SUITE_P(Seeds, LeaderMembershipSimulation, ::testing::Range<uint64_t>(1, 11));

}  // namespace
}  // namespace synod
