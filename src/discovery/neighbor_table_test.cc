#include "discovery/neighbor_table.h"

#include <gtest/gtest.h>

#include <deque>

namespace synod {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Records probes; the test decides when and how each one ends.
class FakeTransport : public ProbeTransport {
 public:
  struct Pending {
    Ipv4 ip;
    uint16_t port;
    std::function<void(ProbeOutcome)> done;
  };
  void Probe(Ipv4 ip, uint16_t port, std::function<void(ProbeOutcome)> done) override {
    pending.push_back(Pending{ip, port, std::move(done)});
  }
  void AnswerAll(const ManualClock& clock, double peer_lag_seconds) {
    auto batch = std::move(pending);
    pending.clear();
    for (auto& probe : batch) {
      ProbeOutcome outcome;
      outcome.ok = true;
      outcome.received_utc_nanos = clock.WallUtcNanos();
      outcome.peer_utc_seconds = NanosToSeconds(clock.WallUtcNanos()) - peer_lag_seconds;
      probe.done(outcome);
    }
  }
  void FailAll(ProbeFailure failure) {
    auto batch = std::move(pending);
    pending.clear();
    for (auto& probe : batch) {
      ProbeOutcome outcome;
      outcome.failure = failure;
      probe.done(outcome);
    }
  }
  std::deque<Pending> pending;
};

class NeighborTableTest : public ::testing::Test {
 protected:
  NeighborTableTest()
      : table_(
            clock_, transport_,
            NeighborTableOptions{"selfself", Subnet{Ip("127.0.0.1"), 0xFF000000}, seconds(1), 10}) {
    table_.SetListener(NeighborTable::Listener{
        .on_added = [this](const Neighbor& n) { added_.push_back(n.id); },
        .on_measured = nullptr,
        .on_removed = [this](const Neighbor& n, const std::string&) { removed_.push_back(n.id); },
    });
  }
  static Ipv4 Ip(const char* text) { return Ipv4::Parse(text).value(); }
  // One beacon interval passes, then node `id` beacons.
  void Beacon(const std::string& id, const char* ip = "127.0.0.3", int port = 4000) {
    clock_.Advance(seconds(1));
    EXPECT_EQ(table_.OnDatagram(id + " ON " + std::to_string(port), Ip(ip)),
              NeighborTable::Verdict::kAccepted);
    table_.Tick();
  }
  void Silence(int intervals) {
    for (int i = 0; i < intervals; ++i) {
      clock_.Advance(seconds(1));
      table_.Tick();
    }
  }

  ManualClock clock_;
  FakeTransport transport_;
  NeighborTable table_;
  std::vector<std::string> added_, removed_;
};

TEST_F(NeighborTableTest, NewNodeIsProbedAtOnceAndMeasured) {
  Beacon("aaaa1111");
  ASSERT_EQ(transport_.pending.size(), 1u);
  EXPECT_EQ(transport_.pending[0].ip, Ip("127.0.0.3"));
  EXPECT_EQ(transport_.pending[0].port, 4000);
  transport_.AnswerAll(clock_, 0.002);
  const Neighbor& n = table_.neighbors().at("aaaa1111");
  ASSERT_TRUE(n.delay_ms.has_value());
  EXPECT_NEAR(*n.delay_ms, 2.0, 1e-3);
  EXPECT_EQ(n.broadcast_count, 1u);
  EXPECT_EQ(added_, std::vector<std::string>{"aaaa1111"});
}

TEST_F(NeighborTableTest, RefreshEveryTenBeaconsNotEveryBeacon) {
  Beacon("aaaa1111");
  transport_.AnswerAll(clock_, 0.001);
  for (int i = 0; i < 9; ++i) {
    Beacon("aaaa1111");
    EXPECT_TRUE(transport_.pending.empty()) << "probed after beacon " << i + 2;
  }
  Beacon("aaaa1111");  // the 10th since the last probe
  EXPECT_EQ(transport_.pending.size(), 1u);
  transport_.AnswerAll(clock_, 0.005);
  EXPECT_NEAR(*table_.neighbors().at("aaaa1111").delay_ms, 5.0, 1e-3);
  EXPECT_EQ(table_.stats().probes_started, 2u);
}

TEST_F(NeighborTableTest, NoSecondProbeWhileOneIsInFlight) {
  Beacon("aaaa1111");
  for (int i = 0; i < 25; ++i) Beacon("aaaa1111");
  EXPECT_EQ(transport_.pending.size(), 1u);
}

TEST_F(NeighborTableTest, SilentNodeIsRefreshedAndRemovedWhenUnreachable) {
  Beacon("aaaa1111");
  transport_.AnswerAll(clock_, 0.001);
  Silence(9);
  EXPECT_TRUE(transport_.pending.empty());
  Silence(1);  // 10 intervals without a beacon: refresh due
  ASSERT_EQ(transport_.pending.size(), 1u);
  transport_.FailAll(ProbeFailure::kRefused);
  EXPECT_TRUE(table_.neighbors().empty());
  EXPECT_EQ(removed_, std::vector<std::string>{"aaaa1111"});
  EXPECT_EQ(table_.stats().probes_refused, 1u);
  EXPECT_EQ(table_.stats().neighbors_removed, 1u);
}

TEST_F(NeighborTableTest, SilentButReachableNodeStays) {
  Beacon("aaaa1111");
  transport_.AnswerAll(clock_, 0.001);
  Silence(10);
  transport_.AnswerAll(clock_, 0.001);
  EXPECT_EQ(table_.neighbors().size(), 1u);
  Silence(9);
  EXPECT_TRUE(transport_.pending.empty()) << "silence is counted from the last probe";
}

TEST_F(NeighborTableTest, MeasuredNodeUnreachableAtItsTenthBeaconIsRemoved) {
  Beacon("aaaa1111");
  transport_.AnswerAll(clock_, 0.001);
  for (int i = 0; i < 10; ++i) Beacon("aaaa1111");
  transport_.FailAll(ProbeFailure::kTimedOut);
  EXPECT_TRUE(table_.neighbors().empty());
  EXPECT_EQ(table_.stats().probes_timed_out, 1u);
  Beacon("aaaa1111");  // seen again later: a new node, probed again
  EXPECT_EQ(transport_.pending.size(), 1u);
}

TEST_F(NeighborTableTest, NeverAnsweringNodeIsProbedOncePerTenBeaconsAndRemovedAtRefresh) {
  Beacon("bbbb2222");
  transport_.FailAll(ProbeFailure::kReset);
  ASSERT_EQ(table_.neighbors().size(), 1u) << "a failed first contact is not yet a refresh";
  EXPECT_FALSE(table_.neighbors().at("bbbb2222").delay_ms.has_value());
  for (int i = 0; i < 9; ++i) Beacon("bbbb2222");
  EXPECT_TRUE(transport_.pending.empty());
  Beacon("bbbb2222");
  ASSERT_EQ(transport_.pending.size(), 1u);
  transport_.FailAll(ProbeFailure::kRefused);
  EXPECT_TRUE(table_.neighbors().empty()) << "unreachable when its refresh was due";
  EXPECT_EQ(removed_, std::vector<std::string>{"bbbb2222"});
  Beacon("bbbb2222");  // new again
  EXPECT_EQ(transport_.pending.size(), 1u);
  EXPECT_EQ(table_.stats().probes_reset, 1u);
  EXPECT_EQ(table_.stats().probes_refused, 1u);
}

TEST_F(NeighborTableTest, RestartedNodeOnANewPortIsReprobed) {
  Beacon("aaaa1111", "127.0.0.3", 4000);
  transport_.AnswerAll(clock_, 0.001);
  Beacon("aaaa1111", "127.0.0.3", 4001);
  ASSERT_EQ(transport_.pending.size(), 1u);
  EXPECT_EQ(transport_.pending[0].port, 4001);
}

TEST_F(NeighborTableTest, OwnForeignAndMalformedBeaconsAreCountedAndDropped) {
  EXPECT_EQ(table_.OnDatagram("selfself ON 1234", Ip("127.0.0.2")), NeighborTable::Verdict::kOwn);
  EXPECT_EQ(table_.OnDatagram("cccc3333 ON 1234", Ip("10.0.0.7")),
            NeighborTable::Verdict::kForeignSubnet);
  EXPECT_EQ(table_.OnDatagram("cccc3333 ON 99999", Ip("127.0.0.7")),
            NeighborTable::Verdict::kMalformed);
  EXPECT_NE(table_.last_malformed_reason().find("127.0.0.7"), std::string::npos);
  EXPECT_TRUE(table_.neighbors().empty());
  EXPECT_TRUE(transport_.pending.empty());
  EXPECT_EQ(table_.stats().beacons_own, 1u);
  EXPECT_EQ(table_.stats().beacons_foreign, 1u);
  EXPECT_EQ(table_.stats().beacons_malformed, 1u);
}

TEST_F(NeighborTableTest, ProbeOfAnOldEndpointIsRedoneOnTheNewOne) {
  Beacon("aaaa1111", "127.0.0.3", 4000);
  transport_.AnswerAll(clock_, 0.001);
  for (int i = 0; i < 10; ++i) Beacon("aaaa1111", "127.0.0.3", 4000);
  auto old_probe = std::move(transport_.pending.front());
  transport_.pending.clear();
  Beacon("aaaa1111", "127.0.0.3", 4001);  // restarted while the refresh was out
  EXPECT_TRUE(transport_.pending.empty()) << "one probe at a time";
  ProbeOutcome refused;
  refused.failure = ProbeFailure::kRefused;
  old_probe.done(refused);
  EXPECT_EQ(table_.neighbors().size(), 1u) << "the old endpoint's failure says nothing of the new";
  ASSERT_EQ(transport_.pending.size(), 1u);
  EXPECT_EQ(transport_.pending[0].port, 4001);
}

TEST_F(NeighborTableTest, CompletionAfterDestructionIsDropped) {
  FakeTransport transport;
  std::function<void(ProbeOutcome)> late;
  {
    NeighborTable table(
        clock_, transport,
        NeighborTableOptions{"x", Subnet{Ip("127.0.0.1"), 0xFF000000}, seconds(1), 10});
    table.OnDatagram("dddd4444 ON 1", Ip("127.0.0.4"));
    late = std::move(transport.pending.front().done);
  }
  late(ProbeOutcome{});  // must not touch the destroyed table
  SUCCEED();
}

}  // namespace
}  // namespace synod
