#include "timers/fire_scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "timers/timer_ownership.h"
#include "timers/timer_state.h"

namespace synod {
namespace {

constexpr int64_t kSecond = TimerState::kSecond;
constexpr int64_t kT0 = 1'795'961'100 * kSecond;  // 2026-11-29T14:05:00Z
// Long enough that no test below but the backup's sees a backup take a timer.
constexpr int64_t kBackupDelay = 3600 * kSecond;

// Node ids as members have them: 32 hex digits.
const std::string kSelf = "6f1c2a9e0b7d4c3a8e5f1a2b3c4d5e6f";
const std::string kB = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const std::string kC = "f9e8d7c6b5a493827160f5e4d3c2b1a0";

std::string IdText(uint64_t n) {
  return Uuid{0x0000'0000'0000'4000ull | n << 16, 0x8000'0000'0000'0000ull | n}.ToString();
}
Uuid Id(uint64_t n) { return *Uuid::Parse(IdText(n)); }

std::vector<Uuid> RandomIds(size_t count, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<Uuid> ids;
  for (size_t i = 0; i < count; ++i) ids.push_back(Uuid::Random(random));
  return ids;
}

// --- TimerOwnership ---

wire::MemberRecord Member(const std::string& id, wire::MemberState state, bool timers = true) {
  wire::MemberRecord member;
  member.set_id(id);
  member.set_state(state);
  if (timers) (*member.mutable_modules())["timers"] = 1;
  (*member.mutable_modules())["kv"] = 1;
  return member;
}

std::vector<std::string> Eligible(const std::vector<wire::MemberRecord>& members) {
  std::vector<const wire::MemberRecord*> pointers;
  for (const wire::MemberRecord& member : members) pointers.push_back(&member);
  std::vector<std::string> nodes = TimerOwnership::EligibleNodes(pointers);
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

TEST(TimerOwnership, EligibleNodesAreTheLiveMembersRunningTimers) {
  EXPECT_EQ(Eligible({Member("a", wire::ALIVE), Member("b", wire::ALIVE, false),
                      Member("c", wire::SUSPECT), Member("d", wire::DEAD), Member("e", wire::LEFT),
                      Member("f", wire::ALIVE)}),
            (std::vector<std::string>{"a", "f"}));
  // None alive: those not dead or gone, so that timers still have an owner.
  EXPECT_EQ(Eligible({Member("a", wire::SUSPECT), Member("c", wire::STATE_UNKNOWN),
                      Member("d", wire::DEAD), Member("e", wire::LEFT)}),
            (std::vector<std::string>{"a", "c"}));
  // Members without the timers module never fire them.
  EXPECT_EQ(Eligible({Member("a", wire::ALIVE, false), Member("b", wire::SUSPECT)}),
            (std::vector<std::string>{"b"}));
  EXPECT_TRUE(Eligible({Member("d", wire::DEAD), Member("e", wire::LEFT)}).empty());
  EXPECT_TRUE(Eligible({}).empty());
}

TEST(TimerOwnership, EveryTimerHasExactlyOneOwner) {
  TimerOwnership ownership;
  EXPECT_EQ(ownership.OwnerOf(Id(1)), -1);
  EXPECT_EQ(ownership.OwnerAndBackupOf(Id(1)), (std::pair{-1, -1}));
  EXPECT_TRUE(ownership.SetNodes({kSelf, kB, kC}));
  EXPECT_FALSE(ownership.SetNodes({kC, kSelf, kB}));                        // the same set
  EXPECT_EQ(ownership.nodes(), (std::vector<std::string>{kB, kSelf, kC}));  // sorted
  for (const Uuid& id : RandomIds(3000, 1)) {
    const int owner = ownership.OwnerOf(id);
    ASSERT_GE(owner, 0);
    ASSERT_LT(owner, 3);
    // The backup is another node.
    const auto [same_owner, backup] = ownership.OwnerAndBackupOf(id);
    EXPECT_EQ(same_owner, owner);
    ASSERT_GE(backup, 0);
    ASSERT_LT(backup, 3);
    EXPECT_NE(backup, owner);
  }
  // One node owns everything, with no backup.
  EXPECT_TRUE(ownership.SetNodes({kB}));
  for (const Uuid& id : RandomIds(100, 2)) {
    EXPECT_EQ(ownership.OwnerAndBackupOf(id), (std::pair{0, -1}));
  }
  // No nodes: no owner.
  EXPECT_TRUE(ownership.SetNodes({}));
  EXPECT_EQ(ownership.OwnerOf(Id(1)), -1);
  EXPECT_EQ(ownership.OwnerAndBackupOf(Id(1)), (std::pair{-1, -1}));
}

TEST(TimerOwnership, TheBackupTakesOverWhenTheOwnerLeaves) {
  // The backup is the second highest score, so it is the owner once the owner is gone.
  TimerOwnership three, without;
  three.SetNodes({kSelf, kB, kC});
  std::map<std::pair<int, int>, int> pairs;
  for (const Uuid& id : RandomIds(30'000, 6)) {
    const auto [owner, backup] = three.OwnerAndBackupOf(id);
    ++pairs[{owner, backup}];
    std::vector<std::string> rest = three.nodes();
    rest.erase(rest.begin() + owner);
    without.SetNodes(rest);
    ASSERT_EQ(without.nodes()[static_cast<size_t>(without.OwnerOf(id))],
              three.nodes()[static_cast<size_t>(backup)]);
  }
  // Backups spread evenly too: each of the 6 (owner, backup) pairs gets about a sixth.
  ASSERT_EQ(pairs.size(), 6u);
  for (const auto& [pair, count] : pairs) {
    EXPECT_GE(count, 30'000 / 6 * 3 / 4) << pair.first << "," << pair.second;
    EXPECT_LE(count, 30'000 / 6 * 5 / 4) << pair.first << "," << pair.second;
  }
}

TEST(TimerOwnership, SpreadsTimersEvenly) {
  TimerOwnership ownership;
  ownership.SetNodes({kSelf, kB, kC});
  std::array<int, 3> owned{};
  const std::vector<Uuid> ids = RandomIds(30'000, 3);
  for (const Uuid& id : ids) ++owned[static_cast<size_t>(ownership.OwnerOf(id))];
  for (int count : owned) {
    EXPECT_GE(count, 30'000 * 25 / 100) << owned[0] << " " << owned[1] << " " << owned[2];
    EXPECT_LE(count, 30'000 * 42 / 100) << owned[0] << " " << owned[1] << " " << owned[2];
  }
  // Sequential ids too (the hash, not the id's randomness, spreads them).
  owned = {};
  for (uint64_t n = 0; n < 30'000; ++n) ++owned[static_cast<size_t>(ownership.OwnerOf(Id(n)))];
  for (int count : owned) {
    EXPECT_GE(count, 30'000 * 25 / 100);
    EXPECT_LE(count, 30'000 * 42 / 100);
  }
}

TEST(TimerOwnership, ANodeLeavingMovesOnlyItsTimersAndTheyComeBack) {
  TimerOwnership three, two;
  three.SetNodes({kSelf, kB, kC});
  two.SetNodes({kSelf, kC});
  auto owner = [](const TimerOwnership& ownership, const Uuid& id) {
    return ownership.nodes()[static_cast<size_t>(ownership.OwnerOf(id))];
  };
  std::map<std::string, int> moved_to;
  for (const Uuid& id : RandomIds(30'000, 4)) {
    const std::string before = owner(three, id);
    const std::string after = owner(two, id);
    if (before != kB) {
      EXPECT_EQ(after, before);
    } else {
      ++moved_to[after];
    }
  }
  // B's timers went to both others, about evenly.
  ASSERT_EQ(moved_to.size(), 2u);
  EXPECT_GT(moved_to[kSelf], moved_to[kC] / 2);
  EXPECT_GT(moved_to[kC], moved_to[kSelf] / 2);

  // B back: everything as it was.
  TimerOwnership again;
  again.SetNodes({kC, kB, kSelf});
  for (const Uuid& id : RandomIds(3000, 4)) EXPECT_EQ(owner(again, id), owner(three, id));
}

TEST(TimerOwnership, IsDeterministic) {
  // The same answer from any node, whatever order it lists the members in; fixed across builds.
  TimerOwnership a, b;
  a.SetNodes({kSelf, kB, kC});
  b.SetNodes({kC, kB, kSelf});
  for (const Uuid& id : RandomIds(3000, 5)) {
    EXPECT_EQ(a.nodes()[static_cast<size_t>(a.OwnerOf(id))],
              b.nodes()[static_cast<size_t>(b.OwnerOf(id))]);
    EXPECT_EQ(a.OwnerOf(id), a.OwnerOf(id));
  }
}

// --- FireScheduler with a real TimerState ---

wire::TimerSpec Spec() {
  wire::TimerSpec spec;
  spec.set_url("https://example.com/hook");
  spec.set_method("POST");
  spec.set_timeout_ms(10'000);
  spec.set_max_attempts(3);
  spec.set_initial_backoff_nanos(kSecond);
  spec.set_max_backoff_nanos(60 * kSecond);
  spec.set_backoff_multiplier(2.0);
  return spec;
}

class FireSchedulerTest : public ::testing::Test {
 protected:
  FireSchedulerTest() {
    // As TimerService wires them.
    state_.SetListener(scheduler_.Listener());
  }

  // A timer due at `due`, created at `now`.
  void CreateAt(uint64_t n, int64_t due, int64_t now = kT0) {
    wire::TimerCreate create;
    create.set_id(IdText(n));
    *create.mutable_spec() = Spec();
    create.set_at_nanos(due);
    Result<std::string> result =
        state_.Apply(ApplyContext{++index_, now}, 1, TimerState::Create(create).body);
    ASSERT_TRUE(result.ok()) << result.error();
  }
  // Records the next attempt of `id` with `http_status`, at `now`.
  void Record(const Uuid& id, int http_status, int64_t now) {
    const wire::TimerRecord record = *state_.Get(id);
    wire::TimerComplete complete;
    complete.set_id(record.id());
    complete.mutable_attempt()->set_occurrence(record.occurrence());
    complete.mutable_attempt()->set_number(record.attempts() + 1);
    complete.mutable_attempt()->set_http_status(http_status);
    Result<std::string> result =
        state_.Apply(ApplyContext{++index_, now}, 1, TimerState::Complete(complete).body);
    ASSERT_TRUE(result.ok()) << result.error();
  }

  TimerState state_;
  FireScheduler scheduler_{state_, kSelf, kBackupDelay};
  uint64_t index_ = 0;
};

TEST_F(FireSchedulerTest, TakesDueTimersInOrderAndNeverEarly) {
  scheduler_.SetNodes({kSelf});
  EXPECT_TRUE(scheduler_.owns_any());
  EXPECT_EQ(scheduler_.NextWake(), std::nullopt);
  CreateAt(1, kT0 + 10 * kSecond);
  CreateAt(2, kT0 + 20 * kSecond);
  CreateAt(3, kT0 + 30 * kSecond);
  CreateAt(4, kT0 + 20 * kSecond);
  EXPECT_EQ(scheduler_.NextWake(), kT0 + 10 * kSecond);

  EXPECT_TRUE(scheduler_.TakeDue(kT0, 100).empty());
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 10 * kSecond - 1, 100).empty());
  EXPECT_EQ(scheduler_.TakeDue(kT0 + 10 * kSecond, 100), (std::vector<Uuid>{Id(1)}));
  EXPECT_EQ(scheduler_.NextWake(), kT0 + 20 * kSecond);
  EXPECT_EQ(scheduler_.TakeDue(kT0 + 25 * kSecond, 100), (std::vector<Uuid>{Id(2), Id(4)}));
  EXPECT_EQ(scheduler_.NextWake(), kT0 + 30 * kSecond);
  EXPECT_EQ(scheduler_.TakeDue(kT0 + 60 * kSecond, 100), (std::vector<Uuid>{Id(3)}));
  EXPECT_GT(scheduler_.NextWake().value_or(INT64_MAX), kT0 + 60 * kSecond);  // no busy wake
  EXPECT_EQ(scheduler_.started(), 4u);
}

TEST_F(FireSchedulerTest, ATimerIsNotTakenTwiceWhileStarted) {
  scheduler_.SetNodes({kSelf});
  CreateAt(1, kT0);
  EXPECT_EQ(scheduler_.TakeDue(kT0, 100), (std::vector<Uuid>{Id(1)}));
  EXPECT_TRUE(scheduler_.TakeDue(kT0, 100).empty());
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + kSecond, 100).empty());
  // The cursor going back (a timer created behind it) does not bring it back either.
  CreateAt(2, kT0 - kSecond);
  EXPECT_EQ(scheduler_.TakeDue(kT0 + kSecond, 100), (std::vector<Uuid>{Id(2)}));
  // Nor does a change of nodes.
  scheduler_.SetNodes({kSelf, kB});
  scheduler_.SetNodes({kSelf});
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + kSecond, 100).empty());
  EXPECT_EQ(scheduler_.started(), 2u);
}

TEST_F(FireSchedulerTest, AFinishedAttemptIsTakenAgainOnceItsRecordChanged) {
  scheduler_.SetNodes({kSelf});
  CreateAt(1, kT0);
  CreateAt(2, kT0);
  CreateAt(3, kT0);
  ASSERT_EQ(scheduler_.TakeDue(kT0, 100), (std::vector<Uuid>{Id(1), Id(2), Id(3)}));

  // Over, but its record not applied here yet: it must not look due meanwhile.
  scheduler_.Finished(Id(1));
  EXPECT_EQ(scheduler_.started(), 3u);
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 100 * kSecond, 100).empty());
  // Then the record arrives (a failure): taken again when the retry is due, not before.
  Record(Id(1), 500, kT0 + kSecond);
  EXPECT_EQ(scheduler_.started(), 2u);
  const int64_t retry1 = state_.Get(Id(1))->next_attempt_nanos();
  EXPECT_TRUE(scheduler_.TakeDue(retry1 - 1, 100).empty());
  EXPECT_EQ(scheduler_.TakeDue(retry1, 100), (std::vector<Uuid>{Id(1)}));

  // Recorded and applied before the answer: released at once.
  Record(Id(2), 500, kT0 + kSecond);
  EXPECT_EQ(scheduler_.started(), 3u);  // still in flight until Finished
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 100 * kSecond, 100).empty());
  scheduler_.Finished(Id(2));
  const int64_t retry2 = state_.Get(Id(2))->next_attempt_nanos();
  EXPECT_EQ(scheduler_.TakeDue(retry2, 100), (std::vector<Uuid>{Id(2)}));

  // Recorded by another node (ours was refused): released when Finished.
  Record(Id(3), 200, kT0 + kSecond);
  scheduler_.Finished(Id(3));
  EXPECT_EQ(scheduler_.started(), 2u);  // 1 and 2 again
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 100 * kSecond, 100).empty());

  // Finished twice, or for a timer never started: nothing happens.
  scheduler_.Finished(Id(3));
  scheduler_.Finished(Id(99));
  EXPECT_EQ(scheduler_.started(), 2u);
  Record(Id(1), 200, retry1 + kSecond);
  Record(Id(2), 200, retry2 + kSecond);
  scheduler_.Finished(Id(1));
  scheduler_.Finished(Id(2));
  EXPECT_EQ(scheduler_.started(), 0u);
  EXPECT_EQ(scheduler_.NextWake(), std::nullopt);
}

TEST_F(FireSchedulerTest, AFinishedTimerThatIsNoLongerWaitingIsReleased) {
  scheduler_.SetNodes({kSelf});
  CreateAt(1, kT0);
  ASSERT_EQ(scheduler_.TakeDue(kT0, 100).size(), 1u);
  // Cancelled or finished meanwhile (here: compacted away after it was done elsewhere).
  Record(Id(1), 200, kT0);
  ASSERT_TRUE(
      state_.Apply(ApplyContext{++index_, kT0}, 1, TimerState::Compact(kT0 + 1, 0).body).ok());
  scheduler_.Finished(Id(1));
  EXPECT_EQ(scheduler_.started(), 0u);
}

TEST_F(FireSchedulerTest, AFailedAttemptIsTakenAgainWhenItsRetryIsDue) {
  scheduler_.SetNodes({kSelf});
  CreateAt(1, kT0);
  ASSERT_EQ(scheduler_.TakeDue(kT0, 100), (std::vector<Uuid>{Id(1)}));
  Record(Id(1), 500, kT0 + kSecond);
  scheduler_.Finished(Id(1));
  const int64_t retry = state_.Get(Id(1))->next_attempt_nanos();
  ASSERT_GT(retry, kT0 + kSecond);
  EXPECT_EQ(scheduler_.NextWake(), retry);
  EXPECT_TRUE(scheduler_.TakeDue(retry - 1, 100).empty());
  EXPECT_EQ(scheduler_.TakeDue(retry, 100), (std::vector<Uuid>{Id(1)}));
  // Recorded before Finished (the usual order too): the same.
  Record(Id(1), 200, retry + kSecond);
  scheduler_.Finished(Id(1));
  EXPECT_TRUE(scheduler_.TakeDue(retry + 100 * kSecond, 100).empty());
  EXPECT_EQ(scheduler_.NextWake(), std::nullopt);
  EXPECT_EQ(scheduler_.started(), 0u);
}

TEST_F(FireSchedulerTest, ATimerEnteringBehindTheCursorIsStillFound) {
  scheduler_.SetNodes({kSelf});
  CreateAt(10, kT0 + 100 * kSecond);
  ASSERT_EQ(scheduler_.TakeDue(kT0 + 100 * kSecond, 100), (std::vector<Uuid>{Id(10)}));
  EXPECT_GT(scheduler_.NextWake().value_or(INT64_MAX), kT0 + 100 * kSecond);

  // Created already due, well behind the cursor.
  CreateAt(11, kT0 + 50 * kSecond, kT0 + 100 * kSecond);
  EXPECT_EQ(scheduler_.NextWake(), kT0 + 50 * kSecond);
  EXPECT_EQ(scheduler_.TakeDue(kT0 + 100 * kSecond, 100), (std::vector<Uuid>{Id(11)}));
  // At exactly the cursor's time, with an id ordered before the one the cursor is on.
  CreateAt(1, kT0 + 100 * kSecond, kT0 + 100 * kSecond);
  ASSERT_LT(Id(1), Id(10));
  EXPECT_EQ(scheduler_.TakeDue(kT0 + 100 * kSecond, 100), (std::vector<Uuid>{Id(1)}));

  // Rescheduled behind it.
  CreateAt(12, kT0 + 500 * kSecond, kT0 + 100 * kSecond);
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 200 * kSecond, 100).empty());
  wire::TimerReschedule reschedule;
  reschedule.set_id(IdText(12));
  reschedule.set_at_nanos(kT0 + 50 * kSecond);
  ASSERT_TRUE(state_
                  .Apply(ApplyContext{++index_, kT0 + 140 * kSecond}, 1,
                         TimerState::Reschedule(reschedule).body)
                  .ok());
  EXPECT_EQ(scheduler_.TakeDue(kT0 + 200 * kSecond, 100), (std::vector<Uuid>{Id(12)}));
}

TEST_F(FireSchedulerTest, TakesOnlyItsOwnTimersAndADeadNodesWhenOwnershipChanges) {
  std::vector<std::string> three = {kSelf, kB, kC};
  scheduler_.SetNodes(three);
  TimerOwnership with_three, without_b;
  with_three.SetNodes(three);
  without_b.SetNodes({kSelf, kC});
  auto owner = [](const TimerOwnership& ownership, const Uuid& id) {
    return ownership.nodes()[static_cast<size_t>(ownership.OwnerOf(id))];
  };
  for (uint64_t n = 1; n <= 600; ++n) CreateAt(n, kT0 + static_cast<int64_t>(n % 7) * kSecond);

  std::set<Uuid> mine, b_moved_to_me;
  for (uint64_t n = 1; n <= 600; ++n) {
    if (owner(with_three, Id(n)) == kSelf) mine.insert(Id(n));
    if (owner(with_three, Id(n)) == kB && owner(without_b, Id(n)) == kSelf) {
      b_moved_to_me.insert(Id(n));
    }
  }
  ASSERT_GT(mine.size(), 100u);
  ASSERT_GT(b_moved_to_me.size(), 30u);

  std::vector<Uuid> taken = scheduler_.TakeDue(kT0 + 10 * kSecond, 10'000);
  EXPECT_EQ(std::set<Uuid>(taken.begin(), taken.end()), mine);
  EXPECT_EQ(taken.size(), mine.size());
  EXPECT_TRUE(std::is_sorted(taken.begin(), taken.end(), [&](const Uuid& x, const Uuid& y) {
    return state_.Get(x)->next_attempt_nanos() < state_.Get(y)->next_attempt_nanos();
  }));

  // B dies: its overdue timers that now map here are taken, none of ours twice, none of C's;
  // after the handover delay, in case B was still sending them.
  scheduler_.SetNodes({kSelf, kC});
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 10 * kSecond, 10'000).empty());
  EXPECT_EQ(scheduler_.NextWake(), kT0 + 10 * kSecond + FireScheduler::kHandoverNanos);
  taken = scheduler_.TakeDue(kT0 + 10 * kSecond + FireScheduler::kHandoverNanos, 10'000);
  EXPECT_EQ(std::set<Uuid>(taken.begin(), taken.end()), b_moved_to_me);
  EXPECT_EQ(taken.size(), b_moved_to_me.size());
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 11 * kSecond, 10'000).empty());
}

TEST_F(FireSchedulerTest, ANodeOutsideTheListFiresNothingUntilItJoins) {
  scheduler_.SetNodes({kB, kC});
  EXPECT_FALSE(scheduler_.owns_any());
  for (uint64_t n = 1; n <= 30; ++n) CreateAt(n, kT0);
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + kSecond, 100).empty());
  scheduler_.SetNodes({kSelf, kB, kC});
  EXPECT_TRUE(scheduler_.owns_any());
  // Gained from B and C, which may be sending them: after the handover delay.
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + kSecond, 100).empty());
  const std::vector<Uuid> taken =
      scheduler_.TakeDue(kT0 + kSecond + FireScheduler::kHandoverNanos, 100);
  EXPECT_FALSE(taken.empty());
  for (const Uuid& id : taken) EXPECT_EQ(scheduler_.ownership().OwnerOf(id), 1);  // kSelf
  // Without any nodes: nothing.
  FireScheduler lonely(state_, kSelf, kBackupDelay);
  EXPECT_FALSE(lonely.owns_any());
  EXPECT_TRUE(lonely.TakeDue(kT0 + kSecond, 100).empty());
}

TEST_F(FireSchedulerTest, TheHandoverDelayRunsFromTheChangeOfNodes) {
  scheduler_.SetNodes({kB, kC}, kT0);
  for (uint64_t n = 1; n <= 30; ++n) CreateAt(n, kT0 + 10 * kSecond);
  scheduler_.SetNodes({kSelf, kB, kC}, kT0 + 5 * kSecond);
  // Long after the change: gained timers are taken as soon as they are due.
  const std::vector<Uuid> taken = scheduler_.TakeDue(kT0 + 10 * kSecond, 100);
  EXPECT_FALSE(taken.empty());

  // A change just before they are due: they wait out the handover.
  for (uint64_t n = 31; n <= 60; ++n) CreateAt(n, kT0 + 20 * kSecond);
  scheduler_.SetNodes({kB, kC}, kT0 + 19 * kSecond);
  scheduler_.SetNodes({kSelf, kB, kC}, kT0 + 20 * kSecond);
  EXPECT_TRUE(
      scheduler_.TakeDue(kT0 + 20 * kSecond + FireScheduler::kHandoverNanos - 1, 100).empty());
  EXPECT_EQ(scheduler_.NextWake(), kT0 + 20 * kSecond + FireScheduler::kHandoverNanos);
  EXPECT_FALSE(scheduler_.TakeDue(kT0 + 20 * kSecond + FireScheduler::kHandoverNanos, 100).empty());
}

TEST_F(FireSchedulerTest, TheLimitIsRespectedAndTheRestTakenNext) {
  scheduler_.SetNodes({kSelf});
  for (uint64_t n = 1; n <= 10; ++n) CreateAt(n, kT0 + static_cast<int64_t>(n) * kSecond);
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 20 * kSecond, 0).empty());
  std::vector<Uuid> all;
  for (int call = 0; call < 4; ++call) {
    std::vector<Uuid> taken = scheduler_.TakeDue(kT0 + 20 * kSecond, 3);
    EXPECT_EQ(taken.size(), call < 3 ? 3u : 1u);
    // Something left: the wake time says so at once.
    if (call < 3) {
      EXPECT_LE(scheduler_.NextWake().value_or(INT64_MAX), kT0 + 20 * kSecond);
    }
    all.insert(all.end(), taken.begin(), taken.end());
  }
  std::vector<Uuid> expected;
  for (uint64_t n = 1; n <= 10; ++n) expected.push_back(Id(n));
  EXPECT_EQ(all, expected);
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 20 * kSecond, 3).empty());
  EXPECT_GT(scheduler_.NextWake().value_or(INT64_MAX), kT0 + 20 * kSecond);
}

TEST_F(FireSchedulerTest, ARestoredStateIsLookedAtAgain) {
  scheduler_.SetNodes({kSelf});
  CreateAt(1, kT0 + 100 * kSecond);
  CreateAt(5, kT0 + 100 * kSecond);
  ASSERT_EQ(scheduler_.TakeDue(kT0 + 100 * kSecond, 100).size(), 2u);
  // 1 was answered and recorded; 5's attempt is over but not applied here.
  Record(Id(1), 200, kT0 + 100 * kSecond);
  scheduler_.Finished(Id(1));
  scheduler_.Finished(Id(5));

  // Another replica's state, with timers due before the cursor.
  TimerState other;
  for (uint64_t n : {2, 3, 4, 5}) {
    wire::TimerCreate create;
    create.set_id(IdText(n));
    *create.mutable_spec() = Spec();
    create.set_at_nanos(kT0 + static_cast<int64_t>(n == 5 ? 100 : n) * kSecond);
    ASSERT_TRUE(other.Apply(ApplyContext{n, kT0}, 1, TimerState::Create(create).body).ok());
  }
  class Sink final : public SectionSink {
   public:
    void Add(std::string_view record) override { records.emplace_back(record); }
    std::vector<std::string> records;
  } sink;
  std::unique_ptr<SectionCapture> capture = other.Capture();
  while (!capture->WriteSome(sink, 1 << 20)) {
  }
  std::unique_ptr<SectionLoader> loader = state_.NewLoader(1);
  for (const std::string& record : sink.records) ASSERT_TRUE(loader->Add(record).ok());
  loader->Install();
  // Everything is looked at again; 5 (still waiting there) is released.
  EXPECT_EQ(scheduler_.TakeDue(kT0 + 100 * kSecond, 100),
            (std::vector<Uuid>{Id(2), Id(3), Id(4), Id(5)}));
  EXPECT_EQ(scheduler_.started(), 4u);
}

TEST(FireSchedulerBackup, TakesTheOwnersTimersOnlyTheBackupDelayLate) {
  constexpr int64_t kDelay = 30 * kSecond;
  TimerState state;
  FireScheduler scheduler(state, kSelf, kDelay);
  state.SetListener(scheduler.Listener());
  const std::vector<std::string> nodes = {kSelf, kB, kC};
  scheduler.SetNodes(nodes);
  const TimerOwnership& ownership = scheduler.ownership();
  const int self = 1, b = 0;  // sorted: kB, kSelf, kC
  ASSERT_EQ(ownership.nodes()[self], kSelf);
  // Timers B owns and this node backs up, and one B owns that C backs up.
  std::vector<Uuid> backed_up;
  std::optional<Uuid> not_ours;
  for (uint64_t n = 1; backed_up.size() < 2 || !not_ours; ++n) {
    const auto [owner, backup] = ownership.OwnerAndBackupOf(Id(n));
    if (owner == b && backup == self && backed_up.size() < 2) backed_up.push_back(Id(n));
    if (owner == b && backup != self && !not_ours) not_ours = Id(n);
  }
  uint64_t index = 0;
  for (const Uuid& id : {backed_up[0], backed_up[1], *not_ours}) {
    wire::TimerCreate create;
    create.set_id(id.ToString());
    *create.mutable_spec() = Spec();
    create.set_at_nanos(kT0);
    ASSERT_TRUE(state.Apply(ApplyContext{++index, kT0}, 1, TimerState::Create(create).body).ok());
  }
  // B says it is sending the second one's attempt.
  wire::TimerBegin begin;
  begin.set_id(backed_up[1].ToString());
  begin.set_number(1);
  begin.set_node(kB);
  ASSERT_TRUE(state.Apply(ApplyContext{++index, kT0}, 1, TimerState::Begin(begin, 1).body).ok());

  EXPECT_TRUE(scheduler.TakeDue(kT0, 100).empty());
  EXPECT_TRUE(scheduler.TakeDue(kT0 + kDelay - 1, 100).empty());
  EXPECT_LE(scheduler.NextWake().value_or(INT64_MAX), kT0 + kDelay);
  EXPECT_EQ(scheduler.TakeDue(kT0 + kDelay, 100), (std::vector<Uuid>{backed_up[0]}));
  EXPECT_TRUE(scheduler.TakeDue(kT0 + 10 * kDelay, 100).empty());
}

// This node backs up B's timers, with a backup delay of 1 s; nodes known since long before kT0.
class FireSchedulerBackupTest : public ::testing::Test {
 protected:
  FireSchedulerBackupTest() {
    state_.SetListener(scheduler_.Listener());
    scheduler_.SetNodes({kSelf, kB, kC}, kT0 - 10 * kSecond);
  }

  // `count` timers due at kT0 that B owns and this node backs up.
  std::vector<Uuid> CreateBackedUp(size_t count) {
    const TimerOwnership& ownership = scheduler_.ownership();
    const int self = 1, b = 0;  // sorted: kB, kSelf, kC
    std::vector<Uuid> backed_up;
    for (uint64_t n = 1; backed_up.size() < count; ++n) {
      if (ownership.OwnerAndBackupOf(Id(n)) == std::pair{b, self}) backed_up.push_back(Id(n));
    }
    for (const Uuid& id : backed_up) {
      wire::TimerCreate create;
      create.set_id(id.ToString());
      *create.mutable_spec() = Spec();
      create.set_at_nanos(kT0);
      EXPECT_TRUE(
          state_.Apply(ApplyContext{++index_, kT0}, 1, TimerState::Create(create).body).ok());
    }
    return backed_up;
  }

  TimerState state_;
  FireScheduler scheduler_{state_, kSelf, kSecond};
  uint64_t index_ = 0;
};

TEST_F(FireSchedulerBackupTest, WaitsWhileTheOwnerIsHeardFrom) {
  const std::vector<Uuid> backed_up = CreateBackedUp(2);
  // B is alive but late: it records the first one 1.5 s after the due time.
  wire::TimerComplete done;
  done.set_id(backed_up[0].ToString());
  done.mutable_attempt()->set_number(1);
  done.mutable_attempt()->set_node(kB);
  done.mutable_attempt()->set_http_status(200);
  ASSERT_TRUE(
      state_
          .Apply(ApplyContext{++index_, kT0 + 3 * kSecond / 2}, 1, TimerState::Complete(done).body)
          .ok());
  // Heard 0.5 s ago: the backup leaves the second one to B for now...
  EXPECT_TRUE(scheduler_.TakeDue(kT0 + 2 * kSecond, 100).empty());
  EXPECT_EQ(scheduler_.NextWake(), kT0 + 5 * kSecond / 2);
  // ...and takes it once B has been silent for the backup delay.
  EXPECT_EQ(scheduler_.TakeDue(kT0 + 5 * kSecond / 2, 100), (std::vector<Uuid>{backed_up[1]}));
}

TEST_F(FireSchedulerBackupTest, WaitsWhileHeldAfterAnElection) {
  const std::vector<Uuid> backed_up = CreateBackedUp(1);
  // No leader from the due time until 1.5 s later: B could not fire it. Then, with a leader
  // again, B has until the hold ends (0.6 s) to do so before this node does.
  const int64_t leader_back = kT0 + 3 * kSecond / 2;
  const int64_t hold_ends = leader_back + 6 * kSecond / 10;
  scheduler_.HoldBackups(hold_ends);
  scheduler_.HoldBackups(leader_back);  // a shorter hold does not cut it short
  EXPECT_TRUE(scheduler_.TakeDue(leader_back, 100).empty());
  EXPECT_TRUE(scheduler_.TakeDue(hold_ends - 1, 100).empty());
  EXPECT_EQ(scheduler_.NextWake(), hold_ends);
  EXPECT_EQ(scheduler_.TakeDue(hold_ends, 100), backed_up);
}

// B dies at kT0; the cluster drops it from the nodes 1.5 s later, when some of its timers
// are already overdue by more than the backup delay (1 s).
class FireSchedulerHandoverTest : public FireSchedulerBackupTest {
 protected:
  static constexpr int64_t kDropped = kT0 + 3 * kSecond / 2;

  // A timer due at `due` that moves from `from` (with three nodes) to this node (with two).
  Uuid CreateMoving(const std::string& from, int64_t due) {
    TimerOwnership three, two;
    three.SetNodes({kSelf, kB, kC});
    two.SetNodes({kSelf, kC});
    for (uint64_t n = next_id_;; ++n) {
      if (three.nodes()[three.OwnerOf(Id(n))] == from && two.nodes()[two.OwnerOf(Id(n))] == kSelf) {
        next_id_ = n + 1;
        Create(Id(n), due);
        return Id(n);
      }
    }
  }
  void Create(const Uuid& id, int64_t due) {
    wire::TimerCreate create;
    create.set_id(id.ToString());
    *create.mutable_spec() = Spec();
    create.set_at_nanos(due);
    ASSERT_TRUE(state_.Apply(ApplyContext{++index_, kT0}, 1, TimerState::Create(create).body).ok());
  }
  // `node` records an attempt of a timer of its own at `at`: it is heard from then.
  void HeardFrom(const std::string& node, int64_t at) {
    const Uuid id = Id(900'000 + index_);
    Create(id, at);
    wire::TimerComplete done;
    done.set_id(id.ToString());
    done.mutable_attempt()->set_number(1);
    done.mutable_attempt()->set_node(node);
    done.mutable_attempt()->set_http_status(200);
    ASSERT_TRUE(state_.Apply(ApplyContext{++index_, at}, 1, TimerState::Complete(done).body).ok());
  }

  uint64_t next_id_ = 1;
};

TEST_F(FireSchedulerHandoverTest, ADeadOwnersTimersAreNoLaterThanTheBackupDelay) {
  HeardFrom(kB, kT0 - kSecond / 10);
  const Uuid overdue = CreateMoving(kB, kT0 + kSecond / 10);
  const Uuid recent = CreateMoving(kB, kT0 + 13 * kSecond / 10);
  scheduler_.SetNodes({kSelf, kC}, kDropped);
  const Uuid mine = CreateMoving(kSelf, kDropped + kSecond / 10);

  // B has been silent for the backup delay since `overdue` was due: its backup would have sent
  // it, so the handover delay adds nothing.
  EXPECT_EQ(scheduler_.TakeDue(kDropped, 100), (std::vector<Uuid>{overdue}));
  // This node's own timers are not held up behind the gained ones that must wait.
  EXPECT_EQ(scheduler_.TakeDue(kDropped + kSecond / 10, 100), (std::vector<Uuid>{mine}));
  // `recent` at the end of the handover delay, before the backup delay is over.
  const int64_t handover_ends = kDropped + FireScheduler::kHandoverNanos;
  ASSERT_LT(handover_ends, kT0 + 23 * kSecond / 10);
  EXPECT_EQ(scheduler_.NextWake(), handover_ends);
  EXPECT_TRUE(scheduler_.TakeDue(handover_ends - 1, 100).empty());
  EXPECT_EQ(scheduler_.TakeDue(handover_ends, 100), (std::vector<Uuid>{recent}));
  EXPECT_EQ(scheduler_.started(), 3u);
}

TEST_F(FireSchedulerHandoverTest, AGainedTimerWaitsTheHandoverWhileItsOwnerWasHeardLately) {
  // B recorded something 0.2 s before it was dropped (only suspected, perhaps still sending):
  // even its long overdue timer waits out the handover delay.
  const Uuid overdue = CreateMoving(kB, kT0);
  // And one that B said it began: never before the handover delay is over.
  const Uuid begun = CreateMoving(kB, kT0 - kSecond);
  wire::TimerBegin begin;
  begin.set_id(begun.ToString());
  begin.set_number(1);
  begin.set_node(kB);
  ASSERT_TRUE(state_.Apply(ApplyContext{++index_, kT0}, 1, TimerState::Begin(begin, 1).body).ok());
  HeardFrom(kB, kDropped - kSecond / 5);
  scheduler_.SetNodes({kSelf, kC}, kDropped);

  EXPECT_TRUE(scheduler_.TakeDue(kDropped, 100).empty());
  const int64_t handover_ends = kDropped + FireScheduler::kHandoverNanos;
  EXPECT_EQ(scheduler_.NextWake(), handover_ends);
  EXPECT_TRUE(scheduler_.TakeDue(handover_ends - 1, 100).empty());
  const std::vector<Uuid> taken = scheduler_.TakeDue(handover_ends, 100);
  EXPECT_EQ(std::set<Uuid>(taken.begin(), taken.end()), (std::set<Uuid>{overdue, begun}));
}

// Three nodes sharing one replicated state fire every timer exactly once, never early, and the
// timers of a node that dies are fired by the others.
TEST(FireSchedulerSimulation, EveryTimerFiresOnceAcrossThreeNodes) {
  TimerState state;
  std::vector<std::string> nodes = {kSelf, kB, kC};
  std::vector<std::unique_ptr<FireScheduler>> schedulers;
  for (const std::string& node : nodes) {
    schedulers.push_back(std::make_unique<FireScheduler>(state, node, kBackupDelay));
    schedulers.back()->SetNodes(nodes);
  }
  state.SetListener(TimerState::Listener{
      .on_change =
          [&](const Uuid& id, std::optional<int64_t> next) {
            for (auto& scheduler : schedulers) scheduler->OnChange(id, next);
          },
      .on_reset =
          [&] {
            for (auto& scheduler : schedulers) scheduler->OnReset();
          },
      .on_attempt = nullptr,
  });
  std::mt19937_64 random(99);
  uint64_t index = 0;
  int64_t now = kT0;
  std::map<Uuid, int> fired;
  std::map<Uuid, int64_t> due;
  std::vector<std::pair<size_t, Uuid>> in_flight;  // taken, not yet recorded
  bool b_dead = false;
  for (int step = 0; step < 2000; ++step) {
    now += static_cast<int64_t>(random() % (kSecond / 2));
    if (step < 1500 && random() % 2 == 0) {
      const Uuid id = Uuid::Random(random);
      wire::TimerCreate create;
      create.set_id(id.ToString());
      *create.mutable_spec() = Spec();
      // Some already due (created late), most in the next minute.
      create.set_at_nanos(now + static_cast<int64_t>(random() % (60 * kSecond)) - 5 * kSecond);
      ASSERT_TRUE(state.Apply(ApplyContext{++index, now}, 1, TimerState::Create(create).body).ok());
      due[id] = create.at_nanos();
    }
    if (step == 1000) {
      // B dies with attempts in flight: they are never recorded.
      b_dead = true;
      std::erase_if(in_flight, [](const auto& flight) { return flight.first == 1; });
      for (size_t i : {0u, 2u}) schedulers[i]->SetNodes({kSelf, kC});
    }
    for (size_t i = 0; i < schedulers.size(); ++i) {
      if (b_dead && i == 1) continue;
      for (const Uuid& id : schedulers[i]->TakeDue(now, 1 + random() % 20)) {
        ASSERT_GE(now, state.Get(id)->next_attempt_nanos());
        in_flight.emplace_back(i, id);
      }
    }
    // Record some of the attempts in flight: 1 in 5 fails and is retried.
    std::shuffle(in_flight.begin(), in_flight.end(), random);
    const size_t done = in_flight.size() / 2;
    for (size_t k = 0; k < done; ++k) {
      const auto [node, id] = in_flight.back();
      in_flight.pop_back();
      const wire::TimerRecord record = *state.Get(id);
      wire::TimerComplete complete;
      complete.set_id(record.id());
      complete.mutable_attempt()->set_occurrence(record.occurrence());
      complete.mutable_attempt()->set_number(record.attempts() + 1);
      const bool ok = random() % 5 != 0 || record.attempts() + 1 == record.spec().max_attempts();
      complete.mutable_attempt()->set_http_status(ok ? 200 : 500);
      ASSERT_TRUE(
          state.Apply(ApplyContext{++index, now}, 1, TimerState::Complete(complete).body).ok())
          << "attempt " << record.attempts() + 1 << " of " << record.id() << " recorded twice";
      if (ok) ++fired[id];
      schedulers[node]->Finished(id);
    }
  }
  // Let everything drain.
  for (int round = 0; round < 200 && state.count(wire::TIMER_WAITING) > 0; ++round) {
    now += 5 * kSecond;
    for (size_t i : {0u, 2u}) {
      for (const Uuid& id : schedulers[i]->TakeDue(now, 10'000)) in_flight.emplace_back(i, id);
    }
    for (const auto& [node, id] : in_flight) {
      const wire::TimerRecord record = *state.Get(id);
      wire::TimerComplete complete;
      complete.set_id(record.id());
      complete.mutable_attempt()->set_occurrence(record.occurrence());
      complete.mutable_attempt()->set_number(record.attempts() + 1);
      complete.mutable_attempt()->set_http_status(200);
      ASSERT_TRUE(
          state.Apply(ApplyContext{++index, now}, 1, TimerState::Complete(complete).body).ok());
      ++fired[id];
      schedulers[node]->Finished(id);
    }
    in_flight.clear();
  }
  EXPECT_EQ(state.count(wire::TIMER_WAITING), 0u);
  EXPECT_EQ(state.count(wire::TIMER_DONE), due.size());
  EXPECT_GT(due.size(), 500u);
  for (const auto& [id, at] : due) EXPECT_EQ(fired[id], 1) << id.ToString();
}

// Every node restarts long after a batch of timers fell due, one of them a moment after the
// others: the backups send the late node's timers, and it then finds them overdue as well.
// Proposals commit in random order and late, so claims race; each timer is still sent once,
// and a claim whose node crashed before sending is taken over once it expires.
TEST(FireSchedulerSimulation, OverdueTimersAreSentOnceAfterEveryNodeRestarts) {
  constexpr int64_t kDelay = kSecond;  // the service's default backup delay
  const std::vector<std::string> nodes = {kSelf, kB, kC};
  TimerState state;
  std::vector<std::unique_ptr<FireScheduler>> schedulers;
  for (const std::string& node : nodes) {
    schedulers.push_back(std::make_unique<FireScheduler>(state, node, kDelay));
  }
  state.SetListener(TimerState::Listener{
      .on_change =
          [&](const Uuid& id, std::optional<int64_t> next) {
            for (auto& scheduler : schedulers) scheduler->OnChange(id, next);
          },
      .on_reset = nullptr,
      .on_attempt = nullptr,
  });
  uint64_t index = 0;
  std::vector<Uuid> ids = RandomIds(300, 7);
  for (size_t i = 0; i < ids.size(); ++i) {
    wire::TimerCreate create;
    create.set_id(ids[i].ToString());
    *create.mutable_spec() = Spec();
    create.set_at_nanos(kT0 + static_cast<int64_t>(i) * kSecond / 30);
    ASSERT_TRUE(
        state.Apply(ApplyContext{++index, kT0 - kSecond}, 1, TimerState::Create(create).body).ok());
  }

  // The cluster is back at kT0 + 60 s; B only as its backups take its timers. A crashes after its
  // 5th claim commits, before sending, and is back at once.
  const int64_t back = kT0 + 60 * kSecond;
  const std::vector<int64_t> starts = {back, back + kDelay + kSecond / 10, back};
  for (size_t i = 0; i < nodes.size(); ++i) schedulers[i]->SetNodes(nodes, starts[i]);
  struct Proposed {
    size_t node;
    bool claim;  // else the record of a sent attempt
    Uuid id;
    uint32_t number;
    int life;  // of the node, which restarts
  };
  std::vector<Proposed> proposed;
  auto record_attempt = [&](const Proposed& op, int64_t now) {
    const wire::TimerRecord record = *state.Get(op.id);
    wire::TimerComplete complete;
    complete.set_id(op.id.ToString());
    complete.mutable_attempt()->set_occurrence(record.occurrence());
    complete.mutable_attempt()->set_number(op.number);
    complete.mutable_attempt()->set_node(nodes[op.node]);
    complete.mutable_attempt()->set_http_status(200);
    Result<std::string> result =
        state.Apply(ApplyContext{++index, now}, 1, TimerState::Complete(complete).body);
    EXPECT_TRUE(result.ok()) << "attempt " << op.number << " of " << op.id.ToString()
                             << " sent twice";
    schedulers[op.node]->Finished(op.id);
  };
  std::vector<std::pair<int64_t, std::pair<size_t, Uuid>>> releases;
  std::vector<int> lives(nodes.size(), 0);
  std::map<Uuid, int> sent;
  int claims_won = 0, claims_lost = 0, a_claims = 0;
  std::mt19937_64 random(11);
  auto send = [&](size_t node, const Uuid& id, uint32_t number) {
    ++sent[id];
    proposed.push_back(Proposed{node, false, id, number, lives[node]});
  };
  for (int64_t now = back; now < back + 60 * kSecond; now += kSecond / 20) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (now < starts[i]) continue;
      for (const Uuid& id : schedulers[i]->TakeDue(now, 1 + random() % 40)) {
        const wire::TimerRecord record = *state.Get(id);
        if (schedulers[i]->MustClaim(record, now)) {
          proposed.push_back(Proposed{i, true, id, record.attempts() + 1, lives[i]});
        } else {
          send(i, id, record.attempts() + 1);
        }
      }
    }
    for (auto it = releases.begin(); it != releases.end();) {
      if (it->first > now) {
        ++it;
        continue;
      }
      schedulers[it->second.first]->Release(it->second.second);
      it = releases.erase(it);
    }
    // A third of what was proposed commits now, in any order.
    std::shuffle(proposed.begin(), proposed.end(), random);
    const auto third = proposed.begin() + static_cast<std::ptrdiff_t>((proposed.size() + 2) / 3);
    std::vector<Proposed> committing(proposed.begin(), third);
    proposed.erase(proposed.begin(), third);
    for (const Proposed& op : committing) {
      const bool dead = op.life != lives[op.node];
      if (dead && !op.claim) continue;  // recorded when its node crashed
      if (op.claim) {
        const wire::TimerRecord record = *state.Get(op.id);
        wire::TimerBegin begin;
        begin.set_id(op.id.ToString());
        begin.set_occurrence(record.occurrence());
        begin.set_number(op.number);
        begin.set_node(nodes[op.node]);
        Result<std::string> result =
            state.Apply(ApplyContext{++index, now}, TimerState::kClaimVersion,
                        TimerState::Begin(begin, TimerState::kClaimVersion).body);
        if (result.ok() && dead) continue;  // in the log, but its node crashed before sending
        if (result.ok()) {
          ++claims_won;
          if (op.node == 0 && ++a_claims == 5) {
            // A crashes with this claim committed, before sending; its other claims may still
            // commit. What it sent was recorded first (a crash between sending and recording
            // may repeat an attempt).
            for (const Proposed& p : proposed) {
              if (p.node == 0 && !p.claim) record_attempt(p, now);
            }
            std::erase_if(proposed, [](const Proposed& p) { return p.node == 0 && !p.claim; });
            ++lives[0];
            schedulers[0] = std::make_unique<FireScheduler>(state, kSelf, kDelay);
            schedulers[0]->SetNodes(nodes, now);
            continue;
          }
          send(op.node, op.id, op.number);
          continue;
        }
        ASSERT_EQ(result.code(), StatusCode::kConflict) << result.error();
        ++claims_lost;
        if (dead) continue;
        schedulers[op.node]->Finished(op.id);
        const wire::TimerRecord now_record = *state.Get(op.id);
        if (now_record.begun_attempt() == op.number) {
          releases.push_back({TimerState::ClaimExpiry(now_record), {op.node, op.id}});
        }
        continue;
      }
      record_attempt(op, now);
    }
  }
  EXPECT_EQ(state.count(wire::TIMER_WAITING), 0u);
  EXPECT_EQ(state.count(wire::TIMER_DONE), ids.size());
  for (const Uuid& id : ids) EXPECT_EQ(sent[id], 1) << id.ToString();
  EXPECT_GT(claims_lost, 0);  // the race did happen
  EXPECT_GE(claims_won, static_cast<int>(ids.size()));
}

}  // namespace
}  // namespace synod
