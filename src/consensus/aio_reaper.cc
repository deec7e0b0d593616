#include "consensus/aio_reaper.h"

#include <sys/syscall.h>

#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <deque>
#include <mutex>
#include <thread>

namespace synod {
namespace {

class Reaper {
 public:
  void Add(long context) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_) {
      std::thread([this] { Run(); }).detach();
      started_ = true;
    }
    queue_.push_back(context);
    wake_.notify_one();
  }
  std::atomic<bool> enabled{false};
  std::atomic<bool> disabled{false};
  std::atomic<uint64_t> destroyed{0};

 private:
  void Run();
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<long> queue_;
  bool started_ = false;
};

// Never destroyed: its thread may outlive static destructors at exit.
Reaper& TheReaper() {
  static Reaper* reaper = new Reaper;
  return *reaper;
}

}  // namespace
}  // namespace synod

extern "C" long __real_syscall(long number, ...);

// What libraft (and this program) calls as syscall(). Like glibc's own, it passes on six
// arguments whatever the call has: the system call reads only those it takes.
extern "C" long __wrap_syscall(long number, ...) {
  va_list args;
  va_start(args, number);
  long a[6];
  for (long& arg : a) arg = va_arg(args, long);
  va_end(args);
  synod::Reaper& reaper = synod::TheReaper();
  if (number == SYS_io_destroy && reaper.enabled.load() && !reaper.disabled.load()) {
    reaper.Add(a[0]);
    return 0;
  }
  return __real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

namespace synod {

void Reaper::Run() {
  for (;;) {
    long context = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return !queue_.empty(); });
      context = queue_.front();
      queue_.pop_front();
    }
    __real_syscall(SYS_io_destroy, context);
    destroyed.fetch_add(1);
  }
}

void AioReaper::Enable() { TheReaper().enabled.store(true); }

void AioReaper::Disable() { TheReaper().disabled.store(true); }

uint64_t AioReaper::destroyed() { return TheReaper().destroyed.load(); }

}  // namespace synod
