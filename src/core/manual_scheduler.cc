#include "core/manual_scheduler.h"

#include <optional>

namespace synod {

class ManualScheduler::ManualAlarm final : public Scheduler::Alarm {
 public:
  explicit ManualAlarm(ManualScheduler& scheduler) : scheduler_(scheduler) {}
  ~ManualAlarm() override { Stop(); }

  void Start(std::chrono::milliseconds delay, std::chrono::milliseconds repeat,
             std::function<void()> fn) override {
    Stop();
    fn_ = std::move(fn);
    repeat_ = repeat;
    key_ = scheduler_.Schedule(delay, Task{{}, this});
  }
  void Stop() override {
    if (key_) scheduler_.Cancel(*key_);
    key_.reset();
  }

  // Its turn came: the scheduler has already taken it off the queue.
  void Ring() {
    key_.reset();
    if (repeat_.count() > 0) key_ = scheduler_.Schedule(repeat_, Task{{}, this});
    // Copy first: fn may restart or destroy this alarm.
    std::function<void()> fn = fn_;
    fn();
  }

 private:
  ManualScheduler& scheduler_;
  std::function<void()> fn_;
  std::chrono::milliseconds repeat_{0};
  std::optional<Key> key_;
};

void ManualScheduler::RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  Schedule(delay, Task{std::move(fn), nullptr});
}

std::unique_ptr<Scheduler::Alarm> ManualScheduler::NewAlarm() {
  return std::make_unique<ManualAlarm>(*this);
}

ManualScheduler::Key ManualScheduler::Schedule(std::chrono::milliseconds delay, Task task) {
  const Key key{clock_.Monotonic() + std::max(delay, std::chrono::milliseconds(0)),
                next_sequence_++};
  queue_.emplace(key, std::move(task));
  return key;
}

void ManualScheduler::Advance(Nanos by) {
  const MonoTime end = clock_.Monotonic() + by;
  while (!queue_.empty() && queue_.begin()->first.first <= end) {
    auto it = queue_.begin();
    clock_.Advance(it->first.first - clock_.Monotonic());
    Task task = std::move(it->second);
    queue_.erase(it);
    ++callbacks_run_;
    if (task.alarm != nullptr) {
      task.alarm->Ring();
    } else {
      task.fn();
    }
  }
  clock_.Advance(end - clock_.Monotonic());
}

}  // namespace synod
