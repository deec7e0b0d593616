// ManualScheduler: a Scheduler whose callbacks run when a test moves time.
//
// Time is a ManualClock's: Advance() runs every callback that falls due, in the order of its due
// time (then of scheduling), with the clock set to that due time while it runs, and leaves the
// clock at the end of the step. A callback may schedule more, and what falls due within the
// step runs in it too. So a service built on Scheduler and Clock, or several of them sharing one
// ManualScheduler as a simulated cluster, runs deterministically and as fast as the CPU allows.
// Single-threaded; alarms must not outlive the scheduler.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "core/clock.h"
#include "core/scheduler.h"

namespace synod {

class ManualScheduler final : public Scheduler {
 public:
  explicit ManualScheduler(ManualClock& clock) : clock_(clock) {}
  ManualScheduler(const ManualScheduler&) = delete;
  ManualScheduler& operator=(const ManualScheduler&) = delete;

  void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) override;
  std::unique_ptr<Alarm> NewAlarm() override;

  // Moves time forward by `by`, running what falls due on the way.
  void Advance(Nanos by);
  // Runs what is due now (a delay of zero), without moving time.
  void RunDue() { Advance(Nanos(0)); }

  size_t pending() const { return queue_.size(); }
  uint64_t callbacks_run() const { return callbacks_run_; }

 private:
  class ManualAlarm;
  // Due time, then order of scheduling: equal due times run first come, first served.
  using Key = std::pair<MonoTime, uint64_t>;
  struct Task {
    std::function<void()> fn;      // a one-shot's
    ManualAlarm* alarm = nullptr;  // or the alarm to ring
  };

  Key Schedule(std::chrono::milliseconds delay, Task task);
  void Cancel(const Key& key) { queue_.erase(key); }

  ManualClock& clock_;
  std::map<Key, Task> queue_;
  uint64_t next_sequence_ = 0;
  uint64_t callbacks_run_ = 0;
};

}  // namespace synod
