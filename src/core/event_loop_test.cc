#include "core/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace synod {
namespace {

using std::chrono::milliseconds;

TEST(EventLoop, OneShotTimerFiresOnceAndLoopEnds) {
  EventLoop loop;
  int fired = 0;
  {
    Timer timer(loop);
    timer.Start(milliseconds(5), milliseconds(0), [&] { ++fired; });
    loop.Run();  // returns when the timer is no longer active
  }
  EXPECT_EQ(fired, 1);
}

TEST(EventLoop, ADelayAlreadyPastFiresAtOnce) {
  EventLoop loop;
  int fired = 0;
  Timer timer(loop);
  timer.Start(milliseconds(-5), milliseconds(0), [&] { ++fired; });
  loop.RunAfter(milliseconds(-1), [&] { ++fired; });
  loop.RunAfter(milliseconds(50), [&] {  // ends the test even if a delay became endless
    timer.Stop();
    loop.Stop();
  });
  loop.Run();
  EXPECT_EQ(fired, 2);
}

TEST(EventLoop, RepeatingTimerCanStopItself) {
  EventLoop loop;
  Timer timer(loop);
  int fired = 0;
  timer.Start(milliseconds(1), milliseconds(1), [&] {
    if (++fired == 3) timer.Stop();
  });
  loop.Run();
  EXPECT_EQ(fired, 3);
}

TEST(EventLoop, DeferredWorkRunsAfterTheCallbackAndBeforeTheLoopWaits) {
  EventLoop loop;
  std::vector<int> order;
  Timer waiter(loop);
  loop.RunAfter(milliseconds(0), [&] {
    order.push_back(1);
    // The loop would now wait a minute for this timer, unless the deferred work, which stops
    // it, runs first.
    waiter.Start(milliseconds(60'000), milliseconds(0), [&] { order.push_back(0); });
    loop.Defer([&] {
      order.push_back(3);
      loop.Defer([&] {
        order.push_back(4);
        waiter.Stop();
      });
    });
    order.push_back(2);
  });
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
}

TEST(EventLoop, PostFromAnotherThreadRunsOnTheLoopThread) {
  EventLoop loop;
  Timer keep_alive(loop);
  keep_alive.Start(milliseconds(5000), milliseconds(0), [] {});
  std::atomic<bool> ran_on_loop_thread{false};
  const auto loop_thread = std::this_thread::get_id();
  std::thread worker([&] {
    loop.Post([&] {
      ran_on_loop_thread = std::this_thread::get_id() == loop_thread;
      keep_alive.Stop();
      loop.Stop();
    });
  });
  loop.Run();
  worker.join();
  EXPECT_TRUE(ran_on_loop_thread);
}

TEST(EventLoop, DestroyingATimerInsideItsCallbackIsSafe) {
  EventLoop loop;
  auto timer = std::make_unique<Timer>(loop);
  bool fired = false;
  timer->Start(milliseconds(1), milliseconds(0), [&] {
    fired = true;
    timer.reset();
  });
  loop.Run();
  EXPECT_TRUE(fired);
  EXPECT_EQ(timer, nullptr);
}

}  // namespace
}  // namespace synod

namespace synod {
namespace {

TEST(EventLoop, RunAfterFiresOnceAndOwnsItsTimer) {
  EventLoop loop;
  int fired = 0;
  loop.RunAfter(std::chrono::milliseconds(2), [&] {
    ++fired;
    loop.RunAfter(std::chrono::milliseconds(1), [&] { ++fired; });  // chained from inside
  });
  loop.Run();  // ends when nothing is pending
  EXPECT_EQ(fired, 2);
}

TEST(EventLoop, RunAfterStillPendingAtDestructionNeverRuns) {
  bool ran = false;
  {
    EventLoop loop;
    loop.RunAfter(std::chrono::seconds(60), [&] { ran = true; });
  }  // LeakSanitizer (in the sanitizer build) checks that the timer was freed
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace synod
