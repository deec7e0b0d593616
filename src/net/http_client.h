// A blocking HTTP client for the CLI (libcurl). Not for the agent's loop thread.
#pragma once

#include <chrono>
#include <string>

#include "core/status.h"

namespace synod {

struct HttpReply {
  long status = 0;
  std::string body;
};

// Performs one request. Transport failures (refused, timeout, ...) are errors that name the URL;
// any HTTP status, 4xx and 5xx included, is a reply.
Result<HttpReply> HttpCall(const std::string& method, const std::string& url,
                           const std::string& body = "",
                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace synod
