#include "core/manual_scheduler.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace synod {
namespace {

using std::chrono::milliseconds;

TEST(ManualScheduler, RunsCallbacksInDueOrderWithTheClockAtTheirTime) {
  ManualClock clock;
  ManualScheduler scheduler(clock);
  const MonoTime start = clock.Monotonic();
  std::vector<std::pair<std::string, Nanos>> ran;
  auto note = [&](std::string what) {
    return [&, what] { ran.emplace_back(what, clock.Monotonic() - start); };
  };
  scheduler.RunAfter(milliseconds(30), note("c"));
  scheduler.RunAfter(milliseconds(10), note("a"));
  scheduler.RunAfter(milliseconds(10), note("b"));  // same time: after "a", scheduled first
  scheduler.RunAfter(milliseconds(-5), note("now"));

  scheduler.Advance(milliseconds(20));
  ASSERT_EQ(ran.size(), 3u);
  EXPECT_EQ(ran[0], std::make_pair(std::string("now"), Nanos(0)));
  EXPECT_EQ(ran[1], std::make_pair(std::string("a"), Nanos(milliseconds(10))));
  EXPECT_EQ(ran[2], std::make_pair(std::string("b"), Nanos(milliseconds(10))));
  EXPECT_EQ(clock.Monotonic() - start, milliseconds(20));
  EXPECT_EQ(scheduler.pending(), 1u);

  scheduler.Advance(milliseconds(10));
  ASSERT_EQ(ran.size(), 4u);
  EXPECT_EQ(ran[3], std::make_pair(std::string("c"), Nanos(milliseconds(30))));
}

TEST(ManualScheduler, WhatACallbackSchedulesWithinTheStepRunsInIt) {
  ManualClock clock;
  ManualScheduler scheduler(clock);
  int chain = 0;
  std::function<void()> next = [&] {
    if (++chain < 5) scheduler.RunAfter(milliseconds(3), next);
  };
  scheduler.RunAfter(milliseconds(3), next);
  scheduler.Advance(milliseconds(10));  // runs at 3, 6, 9
  EXPECT_EQ(chain, 3);
  scheduler.Advance(milliseconds(10));
  EXPECT_EQ(chain, 5);
  EXPECT_EQ(scheduler.pending(), 0u);
}

TEST(ManualScheduler, AlarmsRepeatRestartStopAndCancelWhenDestroyed) {
  ManualClock clock;
  ManualScheduler scheduler(clock);
  int ticks = 0;
  Timer repeating(scheduler);
  repeating.Start(milliseconds(5), milliseconds(10), [&] { ++ticks; });
  scheduler.Advance(milliseconds(26));  // 5, 15, 25
  EXPECT_EQ(ticks, 3);

  // Restarting replaces the schedule.
  repeating.Start(milliseconds(100), milliseconds(0), [&] { ticks += 100; });
  scheduler.Advance(milliseconds(99));
  EXPECT_EQ(ticks, 3);
  scheduler.Advance(milliseconds(1));
  EXPECT_EQ(ticks, 103);
  scheduler.Advance(milliseconds(1000));
  EXPECT_EQ(ticks, 103);

  repeating.Start(milliseconds(1), milliseconds(1), [&] { ++ticks; });
  repeating.Stop();
  scheduler.Advance(milliseconds(10));
  EXPECT_EQ(ticks, 103);

  {
    Timer dropped(scheduler);
    dropped.Start(milliseconds(1), milliseconds(0), [&] { ++ticks; });
    EXPECT_EQ(scheduler.pending(), 1u);
  }
  EXPECT_EQ(scheduler.pending(), 0u);
  scheduler.Advance(milliseconds(10));
  EXPECT_EQ(ticks, 103);
}

TEST(ManualScheduler, AnAlarmMayStopOrDestroyItselfFromItsCallback) {
  ManualClock clock;
  ManualScheduler scheduler(clock);
  int ticks = 0;
  auto alarm = std::make_unique<Timer>(scheduler);
  alarm->Start(milliseconds(1), milliseconds(1), [&] {
    if (++ticks == 3) alarm.reset();
  });
  scheduler.Advance(milliseconds(10));
  EXPECT_EQ(ticks, 3);
  EXPECT_EQ(scheduler.pending(), 0u);

  Timer self_stopping(scheduler);
  self_stopping.Start(milliseconds(1), milliseconds(1), [&] {
    if (++ticks == 5) self_stopping.Stop();
  });
  scheduler.Advance(milliseconds(10));
  EXPECT_EQ(ticks, 5);
}

}  // namespace
}  // namespace synod
