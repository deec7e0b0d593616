// AsyncHttpClient: HTTP requests made from the loop thread without blocking it.
//
// libcurl's multi interface driven by the agent's libuv loop: sockets are watched with uv_poll,
// curl's timeouts with a uv timer, and connections to the same host are reused. Each request's
// callback runs exactly once on the loop thread, with the reply (any HTTP status) or a transport
// error that names the URL; destroying the client cancels what is in flight without calling
// back. Loop thread only; a callback must not destroy the client.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/event_loop.h"
#include "core/status.h"
#include "net/http_client.h"
#include "net/http_sender.h"

namespace synod {

class AsyncHttpClient final : public HttpSender {
 public:
  explicit AsyncHttpClient(EventLoop& loop);
  ~AsyncHttpClient() override;
  AsyncHttpClient(const AsyncHttpClient&) = delete;
  AsyncHttpClient& operator=(const AsyncHttpClient&) = delete;

  void Send(OutgoingHttpRequest request, Callback done) override;
  size_t in_flight() const { return transfers_.size(); }

 private:
  struct Transfer;
  struct Watch;

  static int OnSocket(void* easy, int fd, int what, void* self, void* watch);
  static int OnCurlTimer(void* multi, long timeout_ms, void* self);
  void Drive(int fd, int events);
  void CollectFinished();

  EventLoop& loop_;
  void* multi_;  // CURLM*
  uv_timer_t* timer_;
  std::map<void*, std::unique_ptr<Transfer>> transfers_;  // by CURL*
};

}  // namespace synod
