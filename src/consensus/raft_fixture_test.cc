// The replicated state machine under libraft's in-memory fixture: simulated time and network,
// deterministic, milliseconds per scenario.
#include <gtest/gtest.h>

extern "C" {
#include <raft.h>
#include <raft/fixture.h>
}

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "consensus/replicated_state.h"
#include "kv/kv_state.h"

namespace synod {
namespace {

constexpr unsigned kAll = 1000;  // generous simulated milliseconds

// One server's state machine: the registry with a key/value module.
struct Server {
  Server() { state.Register(kv); }
  KvState kv;
  ReplicatedState state;
};

class FixtureCluster : public ::testing::Test {
 protected:
  void Grow(unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      states_.push_back(std::make_unique<Server>());
      fsms_.push_back(std::make_unique<RaftFsmAdapter>(states_.back()->state));
      // libraft 0.15's fixture I/O, like its libuv I/O, implements async_work but says it is
      // version 1, and raft_init refuses an asynchronous fsm on it: start at version 2, then
      // switch both to what they are (RaftEngine::Open does the same for the libuv I/O).
      raft_fsm* fsm = fsms_.back()->get();
      fsm->version = 2;
      ASSERT_EQ(raft_fixture_grow(&f_, fsm), 0);
      raft_io* io = raft_fixture_get(&f_, raft_fixture_n(&f_) - 1)->io;
      ASSERT_NE(io->async_work, nullptr);
      io->version = 2;
      fsm->version = 3;
    }
  }

  void SetUp() override {
    ASSERT_EQ(raft_fixture_initialize(&f_), 0);
    Grow(3);
    raft_configuration configuration;
    ASSERT_EQ(raft_fixture_configuration(&f_, 3, &configuration), 0);
    ASSERT_EQ(raft_fixture_bootstrap(&f_, &configuration), 0);
    raft_configuration_close(&configuration);
    for (unsigned i = 0; i < 3; ++i) {
      // Small thresholds, so that a server that falls behind must catch up by snapshot.
      raft_set_snapshot_threshold(raft_fixture_get(&f_, i), 8);
      raft_set_snapshot_trailing(raft_fixture_get(&f_, i), 2);
    }
    ASSERT_EQ(raft_fixture_start(&f_), 0);
  }

  void TearDown() override { raft_fixture_close(&f_); }

  // The leader of the servers other than `cut_off`. The fixture's own notion of a leader needs
  // every alive server to agree, which a partitioned one cannot.
  unsigned Leader(int cut_off = -1) {
    if (cut_off < 0) {
      EXPECT_TRUE(raft_fixture_step_until_has_leader(&f_, 10 * kAll));
      return raft_fixture_leader_index(&f_);
    }
    for (int step = 0; step < 100000; ++step) {
      for (unsigned i = 0; i < raft_fixture_n(&f_); ++i) {
        if (static_cast<int>(i) != cut_off && raft_state(raft_fixture_get(&f_, i)) == RAFT_LEADER) {
          return i;
        }
      }
      raft_fixture_step(&f_);
    }
    ADD_FAILURE() << "no leader among the majority";
    return 0;
  }

  // Proposes `key=value` on the leader and steps until every live server, but `cut_off`,
  // applied it.
  void Put(const std::string& key, const std::string& value, int cut_off = -1) {
    const Proposal put = KvState::Put(key, value);
    wire::Op op;
    op.set_module(put.module);
    op.set_version(put.version);
    op.set_body(put.body);
    Propose(EncodeEntry(++clock_, {op}), cut_off);
    written_[key] = value;
  }

  // Proposes one framed entry on the leader and steps until every live server but `cut_off`
  // applied it.
  void Propose(const std::string& payload, int cut_off = -1) {
    const unsigned leader = Leader(cut_off);
    const std::string entry = FrameRaftPayload(payload);
    raft_buffer buf;
    buf.len = entry.size();
    buf.base = raft_malloc(buf.len);
    memcpy(buf.base, entry.data(), buf.len);
    auto* request = new struct raft_apply;
    request->data = &applied_ok_;
    ASSERT_EQ(
        raft_apply(raft_fixture_get(&f_, leader), request, &buf, 1,
                   [](struct raft_apply* req, int status, void* result) {
                     wire::EntryResult batch;
                     if (status == 0) batch.ParseFromString(*static_cast<std::string*>(result));
                     if (status == 0 && batch.results_size() == 1 && batch.results(0).code() == 0) {
                       ++*static_cast<int*>(req->data);
                     }
                     delete req;
                   }),
        0);
    const raft_index index = raft_last_index(raft_fixture_get(&f_, leader));
    for (unsigned i = 0; i < raft_fixture_n(&f_); ++i) {
      if (raft_fixture_alive(&f_, i) && static_cast<int>(i) != cut_off) {
        ASSERT_TRUE(raft_fixture_step_until_applied(&f_, i, index, 10 * kAll)) << "server " << i;
      }
    }
  }

  // Every live server holds exactly the keys written, through the module's own accessors.
  void ExpectIdentical() {
    for (unsigned i = 0; i < states_.size(); ++i) {
      if (!raft_fixture_alive(&f_, i)) continue;
      EXPECT_EQ(states_[i]->kv.size(), written_.size()) << "server " << i;
      for (const auto& [key, value] : written_) {
        EXPECT_EQ(states_[i]->kv.Get(key).value_or("(missing)"), value)
            << "server " << i << " key " << key;
      }
    }
  }

  raft_fixture f_{};
  std::vector<std::unique_ptr<Server>> states_;
  std::map<std::string, std::string> written_;
  int64_t clock_ = 0;
  std::vector<std::unique_ptr<RaftFsmAdapter>> fsms_;
  int applied_ok_ = 0;
};

TEST(RaftFraming, PadsToEightBytesAndRoundTrips) {
  for (size_t size : {0, 1, 7, 8, 9, 477}) {
    const std::string payload(size, 'p');
    const std::string framed = FrameRaftPayload(payload);
    EXPECT_EQ(framed.size() % 8, 0u) << size;
    auto back = UnframeRaftPayload(framed);
    ASSERT_TRUE(back.ok()) << size;
    EXPECT_EQ(back.value(), payload);
  }
  EXPECT_FALSE(UnframeRaftPayload("short").ok());
  EXPECT_FALSE(UnframeRaftPayload(std::string("\xff\xff\x00\x00SYN1", 8)).ok());
  EXPECT_FALSE(UnframeRaftPayload(std::string(16, '\0')).ok());
}

TEST_F(FixtureCluster, ElectsAndAppliesOnEveryServer) {
  Put("a", "1");
  Put("b", "2");
  EXPECT_EQ(applied_ok_, 2) << "the proposer got each command's result";
  for (const auto& state : states_) EXPECT_EQ(state->kv.Get("b").value_or(""), "2");
  ExpectIdentical();
}

TEST_F(FixtureCluster, LeaderDiesAnotherTakesOverAndTheDeadCatchesUpBySnapshot) {
  Put("before", "1");
  const unsigned old_leader = Leader();
  raft_fixture_kill(&f_, old_leader);
  ASSERT_TRUE(raft_fixture_step_until_has_no_leader(&f_, 10 * kAll));
  const unsigned new_leader = Leader();
  EXPECT_NE(new_leader, old_leader);
  for (int i = 0; i < 30; ++i) Put("k" + std::to_string(i), std::to_string(i));  // past snapshots
  raft_fixture_revive(&f_, old_leader);
  const raft_index index = raft_last_index(raft_fixture_get(&f_, new_leader));
  ASSERT_TRUE(raft_fixture_step_until_applied(&f_, old_leader, index, 20 * kAll));
  EXPECT_EQ(states_[old_leader]->kv.Get("k29").value_or(""), "29");
  EXPECT_GE(raft_fixture_n_recv(&f_, old_leader, RAFT_IO_INSTALL_SNAPSHOT), 1u)
      << "the log it missed was compacted: it must have caught up by snapshot";
  ExpectIdentical();
}

TEST_F(FixtureCluster, PartitionedMinorityHealsToTheSameState) {
  Put("a", "1");
  const unsigned leader = Leader();
  const unsigned minority = (leader + 1) % 3;
  for (unsigned i = 0; i < 3; ++i) {
    if (i != minority) {
      raft_fixture_disconnect(&f_, i, minority);
      raft_fixture_disconnect(&f_, minority, i);
    }
  }
  for (int i = 0; i < 20; ++i) Put("p" + std::to_string(i), "x", minority);  // majority goes on
  EXPECT_FALSE(states_[minority]->kv.Get("p19").has_value());
  for (unsigned i = 0; i < 3; ++i) {
    if (i != minority) {
      raft_fixture_reconnect(&f_, i, minority);
      raft_fixture_reconnect(&f_, minority, i);
    }
  }
  Put("after", "heal");
  EXPECT_EQ(states_[minority]->kv.Get("p19").value_or(""), "x");
  ExpectIdentical();
}

// A spare fed by the leader (as ConsensusService feeds spares), then promoted: the log brings it
// the entries the feed already applied, and none may be applied twice.
TEST_F(FixtureCluster, AFedSpareIsPromotedWithoutApplyingAnyEntryTwice) {
  for (unsigned i = 0; i < 3; ++i) {
    // Catch-up by log, not snapshot, so that the log replays what was fed.
    raft_set_snapshot_threshold(raft_fixture_get(&f_, i), 1000);
  }
  // What each server applied, by index, in order.
  std::vector<std::vector<uint64_t>> applied(4);
  std::vector<std::pair<uint64_t, std::string>> feed;  // what the leader would send
  Grow(1);
  ASSERT_EQ(raft_start(raft_fixture_get(&f_, 3)), 0);
  for (unsigned i = 0; i < 4; ++i) {
    fsms_[i]->Attach(raft_fixture_get(&f_, i));
    fsms_[i]->SetAppliedObserver(
        AppliedEntryObserver{.on_entry =
                                 [&, i](uint64_t index, std::string_view payload) {
                                   applied[i].push_back(index);
                                   if (raft_state(raft_fixture_get(&f_, i)) == RAFT_LEADER) {
                                     feed.emplace_back(index, std::string(payload));
                                   }
                                 },
                             .on_restore = {},
                             .on_fatal = {}});
  }
  auto change = [&](auto&& start) {
    struct raft_change request {};
    bool done = false;
    request.data = &done;
    ASSERT_EQ(start(&request,
                    [](struct raft_change* req, int status) {
                      ASSERT_EQ(status, 0);
                      *static_cast<bool*>(req->data) = true;
                    }),
              0);
    for (int step = 0; step < 100000 && !done; ++step) raft_fixture_step(&f_);
    ASSERT_TRUE(done);
  };
  raft* leader = raft_fixture_get(&f_, Leader());
  change([&](raft_change* req, raft_change_cb cb) { return raft_add(leader, req, 4, "4", cb); });

  auto feed_spare = [&] {
    for (const auto& [index, payload] : feed) fsms_[3]->ApplyFed(index, payload);
    fsms_[3]->FedThrough(raft_last_applied(leader));
  };
  for (int i = 0; i < 5; ++i) Put("fed" + std::to_string(i), "x", /*cut_off=*/3);
  EXPECT_EQ(applied[Leader()].back(), raft_last_applied(leader))
      << "each entry is applied with its own index";
  EXPECT_EQ(raft_last_applied(raft_fixture_get(&f_, 3)), 0u) << "a spare gets nothing from Raft";
  feed_spare();
  EXPECT_EQ(states_[3]->kv.Get("fed4").value_or(""), "x");
  EXPECT_EQ(fsms_[3]->applied_index(), raft_last_applied(leader));
  feed_spare();  // a feed repeated (a retry, a new leader) changes nothing
  EXPECT_EQ(applied[3].size(), 5u);

  change([&](raft_change* req, raft_change_cb cb) {
    return raft_assign(leader, req, 4, RAFT_VOTER, cb);
  });
  Put("after", "promotion");
  EXPECT_EQ(states_[3]->kv.Get("after").value_or(""), "promotion");
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_TRUE(std::is_sorted(applied[i].begin(), applied[i].end()) &&
                std::adjacent_find(applied[i].begin(), applied[i].end()) == applied[i].end())
        << "server " << i << " applied an entry twice or out of order";
  }
  EXPECT_EQ(applied[3], applied[Leader()]) << "the spare applied exactly what the leader did";
  ExpectIdentical();
}

// An entry this build cannot apply (written by a newer Synod): every server stops at it, and
// none applies any part of it or anything after it.
TEST_F(FixtureCluster, AnEntryOfAnUnknownModuleStopsEveryServerBeforeApplyingIt) {
  Put("before", "1");
  std::vector<std::string> fatal(3);
  for (unsigned i = 0; i < 3; ++i) {
    fsms_[i]->Attach(raft_fixture_get(&f_, i));
    fsms_[i]->SetAppliedObserver(AppliedEntryObserver{
        .on_entry = {}, .on_restore = {}, .on_fatal = [&, i](const Status& why) {
          fatal[i] = why.message();
        }});
  }
  const Proposal put = KvState::Put("during", "x");
  wire::Op known;
  known.set_module(put.module);
  known.set_version(1);
  known.set_body(put.body);
  wire::Op unknown;
  unknown.set_module("timers");
  unknown.set_version(1);
  const std::string entry = FrameRaftPayload(EncodeEntry(1, {known, unknown}));
  raft_buffer buf;
  buf.len = entry.size();
  buf.base = raft_malloc(buf.len);
  memcpy(buf.base, entry.data(), buf.len);
  auto* request = new struct raft_apply;
  ASSERT_EQ(raft_apply(raft_fixture_get(&f_, Leader()), request, &buf, 1,
                       [](struct raft_apply* req, int, void*) { delete req; }),
            0);
  raft_fixture_step_until_elapsed(&f_, 2 * kAll);
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_NE(fatal[i].find("module 'timers'"), std::string::npos)
        << "server " << i << ": " << fatal[i];
    EXPECT_FALSE(states_[i]->kv.Get("during").has_value()) << "server " << i;
    EXPECT_EQ(states_[i]->kv.Get("before").value_or(""), "1");
  }
}

}  // namespace
}  // namespace synod
