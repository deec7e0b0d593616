// HttpSender: sends HTTP requests from the loop thread and calls back once each.
//
// AsyncHttpClient is the agent's (libcurl on the libuv loop). A feature that sends requests
// takes this interface, so that a simulation can answer them on virtual time instead. The
// callback runs on the loop thread, with the reply (any HTTP status) or a transport error;
// a sender destroyed with requests in flight drops them without calling back.
#pragma once

#include <functional>

#include "core/status.h"
#include "net/http_client.h"

namespace synod {

class HttpSender {
 public:
  using Callback = std::function<void(Result<HttpReply>)>;

  virtual ~HttpSender() = default;
  virtual void Send(OutgoingHttpRequest request, Callback done) = 0;
};

}  // namespace synod
