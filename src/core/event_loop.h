// EventLoop: the single libuv loop thread that owns all of an agent's state.
//
// Every callback registered through this class (timers, posted functions) runs on the loop
// thread. Post() is the only member that may be called from other threads: it is how worker
// threads hand results back. The loop is the agent's Scheduler, with libuv timers in real time;
// the loop owns their handles, and an Alarm (or a Timer) closes its handle when destroyed, so it
// must be destroyed on the loop thread (or before Run() starts).
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <vector>

#include "core/scheduler.h"

namespace synod {

class EventLoop final : public Scheduler {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  uv_loop_t* raw() { return &loop_; }

  // Runs until Stop() is called and every handle is closed.
  void Run();
  // Stops the loop once the current iteration ends. Loop thread only.
  void Stop();

  // Queues fn to run on the loop thread. Thread-safe.
  void Post(std::function<void()> fn);

  // Scheduler, on libuv timers: callbacks run on the loop thread.
  void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) override;
  std::unique_ptr<Alarm> NewAlarm() override;

  // Runs fn once at the end of this turn of the loop, just before it waits for I/O again (in
  // the order deferred; what fn defers runs in the same turn). Writes deferred this way leave as
  // one write per connection instead of one per message. Loop thread only.
  void Defer(std::function<void()> fn);
  // Runs `work` on libuv's thread pool, then `done` on the loop thread. `work` must touch
  // nothing the loop thread uses; it owns what it captures. The loop does not end while work
  // is queued or running.
  void Work(std::function<void()> work, std::function<void()> done);

 private:
  struct OneShot;
  void DrainPosted();
  void DrainDeferred();
  void CloseOneShot(OneShot* shot);

  uv_loop_t loop_{};
  uv_async_t wakeup_{};
  uv_prepare_t before_poll_{};
  std::vector<std::function<void()>> deferred_;
  std::mutex posted_mutex_;
  std::deque<std::function<void()>> posted_;
  bool stopping_ = false;
  std::set<OneShot*> one_shots_;
};

}  // namespace synod
