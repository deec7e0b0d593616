#include "core/event_loop.h"

#include <cassert>
#include <cstdlib>
#include <memory>
#include <utility>

#include <spdlog/spdlog.h>

namespace synod {
namespace {

// libuv's unsigned milliseconds; a delay already past (negative) means the next turn of the loop,
// not 584 million years.
uint64_t Milliseconds(std::chrono::milliseconds delay) {
  return delay.count() < 0 ? 0 : static_cast<uint64_t>(delay.count());
}

}  // namespace

EventLoop::EventLoop() {
  if (uv_loop_init(&loop_) != 0 || uv_async_init(&loop_, &wakeup_, [](uv_async_t* async) {
                                     static_cast<EventLoop*>(async->data)->DrainPosted();
                                   }) != 0) {
    spdlog::critical("cannot initialise the event loop");
    std::abort();
  }
  wakeup_.data = this;
  // Posting is a way in, not a reason to keep running: the loop lives as long as its handles.
  uv_unref(reinterpret_cast<uv_handle_t*>(&wakeup_));
  uv_prepare_init(&loop_, &before_poll_);
  before_poll_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&before_poll_));
}

void EventLoop::Defer(std::function<void()> fn) {
  // While the loop is destroyed, what its handles' close callbacks defer is dropped.
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&before_poll_))) return;
  if (deferred_.empty()) {
    uv_prepare_start(&before_poll_, [](uv_prepare_t* prepare) {
      static_cast<EventLoop*>(prepare->data)->DrainDeferred();
    });
  }
  deferred_.push_back(std::move(fn));
}

void EventLoop::DrainDeferred() {
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> batch;
    batch.swap(deferred_);
    for (auto& fn : batch) fn();
  }
  uv_prepare_stop(&before_poll_);
}

struct EventLoop::OneShot {
  uv_timer_t timer{};
  EventLoop* loop = nullptr;
  std::function<void()> fn;
};

void EventLoop::CloseOneShot(OneShot* shot) {
  one_shots_.erase(shot);
  uv_timer_stop(&shot->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&shot->timer),
           [](uv_handle_t* h) { delete static_cast<OneShot*>(h->data); });
}

void EventLoop::RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto* shot = new OneShot;
  shot->loop = this;
  shot->fn = std::move(fn);
  uv_timer_init(&loop_, &shot->timer);
  shot->timer.data = shot;
  one_shots_.insert(shot);
  uv_timer_start(
      &shot->timer,
      [](uv_timer_t* t) {
        auto* shot = static_cast<OneShot*>(t->data);
        auto fn = std::move(shot->fn);
        shot->loop->CloseOneShot(shot);
        fn();
      },
      Milliseconds(delay), 0);
}

void EventLoop::Work(std::function<void()> work, std::function<void()> done) {
  struct Request {
    uv_work_t request{};
    std::function<void()> work;
    std::function<void()> done;
  };
  auto* request = new Request{{}, std::move(work), std::move(done)};
  request->request.data = request;
  const int rc = uv_queue_work(
      &loop_, &request->request, [](uv_work_t* r) { static_cast<Request*>(r->data)->work(); },
      [](uv_work_t* r, int) {
        std::unique_ptr<Request> request(static_cast<Request*>(r->data));
        request->done();
      });
  assert(rc == 0 && "uv_queue_work fails only for a null callback");
  (void)rc;
}

EventLoop::~EventLoop() {
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&wakeup_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
  }
  deferred_.clear();
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&before_poll_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&before_poll_), nullptr);
  }
  // One-shots still pending die with the loop, unrun.
  while (!one_shots_.empty()) CloseOneShot(*one_shots_.begin());
  // Let pending close callbacks run so that every handle's memory is released. The first run
  // may only clear a pending Stop().
  for (int i = 0; i < 2 && uv_run(&loop_, UV_RUN_DEFAULT) != 0; ++i) {
  }
  uv_run(&loop_, UV_RUN_NOWAIT);
  if (uv_loop_close(&loop_) != 0) {
    uv_walk(
        &loop_,
        [](uv_handle_t* handle, void*) {
          spdlog::error("event loop closed with a {} handle still open",
                        uv_handle_type_name(uv_handle_get_type(handle)));
        },
        nullptr);
  }
}

void EventLoop::Run() {
  stopping_ = false;
  while (!stopping_ && uv_run(&loop_, UV_RUN_ONCE) != 0) {
  }
}

void EventLoop::Stop() {
  stopping_ = true;
  uv_stop(&loop_);
}

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mutex_);
    posted_.push_back(std::move(fn));
  }
  uv_async_send(&wakeup_);
}

void EventLoop::DrainPosted() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(posted_mutex_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

namespace {

// An Alarm on a libuv timer. Its handle is closed, and freed, asynchronously by the loop.
class LoopAlarm final : public Scheduler::Alarm {
 public:
  explicit LoopAlarm(uv_loop_t* loop) : handle_(new Handle) {
    uv_timer_init(loop, &handle_->timer);
    handle_->timer.data = handle_;
  }
  ~LoopAlarm() override {
    uv_timer_stop(&handle_->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_->timer),
             [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
  }
  LoopAlarm(const LoopAlarm&) = delete;
  LoopAlarm& operator=(const LoopAlarm&) = delete;

  void Start(std::chrono::milliseconds delay, std::chrono::milliseconds repeat,
             std::function<void()> fn) override {
    handle_->fn = std::move(fn);
    uv_timer_start(
        &handle_->timer,
        [](uv_timer_t* t) {
          // Copy first: the callback may restart or destroy this alarm.
          auto fn = static_cast<Handle*>(t->data)->fn;
          fn();
        },
        Milliseconds(delay), Milliseconds(repeat));
  }
  void Stop() override { uv_timer_stop(&handle_->timer); }

 private:
  struct Handle {
    uv_timer_t timer{};
    std::function<void()> fn;
  };
  Handle* handle_;
};

}  // namespace

std::unique_ptr<Scheduler::Alarm> EventLoop::NewAlarm() {
  return std::make_unique<LoopAlarm>(&loop_);
}

}  // namespace synod
