// HTTP requests with libcurl: HttpCall blocks (for the CLI, never on the agent's loop thread);
// AsyncHttpClient (async_http_client.h) is the agent's. Both prepare requests the same way.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

struct curl_slist;

namespace synod {

struct HttpReply {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>>
      headers;  // of the final answer; names lower-cased

  // The first header named `lower_name`, or null.
  const std::string* Header(std::string_view lower_name) const;
};

struct OutgoingHttpRequest {
  std::string method = "POST";
  std::string url;
  std::string body;
  std::vector<std::string> headers;  // "Name: value"; Content-Type defaults to application/json
  std::chrono::milliseconds timeout{5000};
  // https: trust only the CA certificates (PEM) in this file, and check the server's chain, not
  // its host name (nodes are reached by address). Empty: the system's CAs, and the host name.
  std::string ca_file;
};

// Performs one request. Transport failures (refused, timeout, ...) are errors that name the URL;
// any HTTP status, 4xx and 5xx included, is a reply.
Result<HttpReply> HttpCall(const std::string& method, const std::string& url,
                           const std::string& body = "",
                           std::chrono::milliseconds timeout = std::chrono::seconds(5));
// The same, with the request's own headers.
Result<HttpReply> HttpCall(const OutgoingHttpRequest& request);

// A GET (of `request`'s url, headers and CA file; its method and timeout are ignored) whose
// answer is a stream (Server-Sent Events). While the answer is 200, `on_body` gets
// the body's bytes as they arrive and returns false to stop reading. Returns the reply when the
// stream ends (the server closed it, or `on_body` stopped it); its body holds the answer only if
// the status was not 200. A stream silent for `idle_limit` is a transport error.
Result<HttpReply> HttpGetStream(OutgoingHttpRequest request,
                                const std::function<bool(std::string_view)>& on_body,
                                std::chrono::seconds idle_limit = std::chrono::seconds(45));

// Sets up a libcurl easy handle for `request` as every request of ours is made (JSON content
// type unless given, no proxy, no signals, http and https only, the timeout), collecting the
// answer's body and headers in `reply`. `request` and `reply` must outlive the transfer. Returns
// the header list, which the caller frees with curl_slist_free_all once the transfer is over.
curl_slist* PrepareCurlRequest(void* easy, const OutgoingHttpRequest& request, HttpReply* reply);

}  // namespace synod
