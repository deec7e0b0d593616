// Scheduler: runs callbacks later, on the one thread that owns a service's state.
//
// The agent's scheduler is its EventLoop (libuv timers, real time). ManualScheduler
// (manual_scheduler.h) runs them when a test moves a ManualClock, so that a service written
// against Scheduler and Clock runs unchanged inside a deterministic simulation. Delays count on
// the monotonic time line. Not thread-safe: callbacks run on the scheduler's thread, and
// everything here is called from it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace synod {

class Scheduler {
 public:
  // A restartable one-shot or repeating callback. Destroying it cancels it; it must not outlive
  // its scheduler.
  class Alarm {
   public:
    virtual ~Alarm() = default;
    // Calls fn after `delay` (a negative one counts as zero), then every `repeat` if it is
    // non-zero. Replaces the previous schedule. fn may restart, stop or destroy the alarm.
    virtual void Start(std::chrono::milliseconds delay, std::chrono::milliseconds repeat,
                       std::function<void()> fn) = 0;
    virtual void Stop() = 0;
  };

  virtual ~Scheduler() = default;

  // Runs fn once after `delay`. One still pending when the scheduler is destroyed is dropped
  // unrun, so fn must not outlive what it captures by reference: capture weak references, or
  // only what lives as long as the scheduler.
  virtual void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  virtual std::unique_ptr<Alarm> NewAlarm() = 0;
};

// An Alarm held by value, for members: `Timer tick_{scheduler};`.
class Timer {
 public:
  explicit Timer(Scheduler& scheduler) : alarm_(scheduler.NewAlarm()) {}

  void Start(std::chrono::milliseconds delay, std::chrono::milliseconds repeat,
             std::function<void()> fn) {
    alarm_->Start(delay, repeat, std::move(fn));
  }
  void Stop() { alarm_->Stop(); }

 private:
  std::unique_ptr<Scheduler::Alarm> alarm_;
};

}  // namespace synod
