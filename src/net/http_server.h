// A small HTTP/1.1 server on the agent's event loop: routing, JSON responses, keep-alive, limits.
//
// Contract:
// - Everything runs on the loop thread: handlers are called there, and the HttpResponder a
//   handler receives must be called there, exactly once, now or later (a handler that waits for
//   a Raft commit keeps it). Calling it after the client went away is harmless.
// - Requests on one connection are answered in order; the next is not parsed before the current
//   one is answered.
// - Hostile input is answered, not trusted: malformed requests get 400, oversized headers 431,
//   oversized bodies 413, unknown paths 404, a known path with another method 405 (with Allow),
//   a connection beyond HttpLimits::max_connections 503 (and closed).
//   Every error body is JSON: {"error": "..."}.
// - A handler may answer with a stream (HttpResponse::Stream, for Server-Sent Events): the
//   headers go out at once, the body is whatever the stream writes until either side closes,
//   and the connection serves nothing else. A client that reads too slowly is disconnected
//   rather than buffered for without bound.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/event_loop.h"
#include "core/status.h"
#include "net/ipv4.h"
#include "net/tcp.h"
#include "net/tls.h"

namespace synod {

// The HTTP status for an error code: 400 invalid, 404 not found, 409 conflict, 413 too large,
// 503 for what the cluster cannot do now (no quorum, not committed, unknown outcome), 500 else.
int HttpStatusFor(StatusCode code);

struct HttpRequest {
  std::string method;                              // "GET", "POST", ...
  std::string path;                                // decoded, without the query
  std::map<std::string, std::string> query;        // decoded
  std::map<std::string, std::string> headers;      // names lower-cased
  std::map<std::string, std::string> path_params;  // from {name} segments of the route
  std::string body;
  // Who sent it; 0.0.0.0:0 for a request dispatched inside the node (HttpRouter::Dispatch).
  Ipv4 client_ip;
  uint16_t client_port = 0;
};

// The body of a streamed response, written over time. Loop thread only.
class HttpStream {
 public:
  virtual ~HttpStream() = default;
  // Queues bytes for the client. False, and nothing queued, once the stream is closed; a client
  // with more than HttpLimits::max_stream_backlog bytes unread is disconnected.
  virtual bool Write(std::string bytes) = 0;
  virtual void Close() = 0;
  virtual bool closed() const = 0;
  // `callback` runs once when the stream closes, whichever side closed it.
  virtual void OnClosed(std::function<void()> callback) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse Json(int status, const nlohmann::json& body);
  static HttpResponse Error(int status, const std::string& message);
  // An error status as a response: its code picks the HTTP status (HttpStatusFor), and the body
  // says {"error": message, "code": "not found"}.
  static HttpResponse FromStatus(const Status& status);
  // A streamed response: `open` gets the stream once the headers are out (not at all if the
  // client is gone by then).
  static HttpResponse Stream(std::string content_type,
                             std::function<void(std::shared_ptr<HttpStream>)> open);

  std::function<void(std::shared_ptr<HttpStream>)> open_stream;  // set for streams only
};

// Whether the client said it takes gzip-compressed answers (Accept-Encoding).
bool AcceptsGzip(const HttpRequest& request);

using HttpResponder = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, HttpResponder)>;

// Maps (method, path pattern) to handlers. Patterns are literal segments and {name} segments,
// e.g. "/v1/kv/{key}".
class HttpRouter {
 public:
  void Handle(const std::string& method, const std::string& pattern, HttpHandler handler);
  // Fills path_params and calls the handler, or answers 404/405 itself.
  void Dispatch(HttpRequest& request, HttpResponder respond) const;
  // Every (method, pattern) handled, in the order they were added.
  std::vector<std::pair<std::string, std::string>> Routes() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    HttpHandler handler;
  };
  std::vector<Route> routes_;
};

// Asked about every request received from the network, before it is routed: a response it
// returns is sent instead (e.g. 401 for a request without the token it needs). Requests
// dispatched inside the node, straight through HttpRouter::Dispatch, are not asked. Loop thread.
using HttpGate = std::function<std::optional<HttpResponse>(const HttpRequest&)>;

struct HttpLimits {
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds idle_timeout{60'000};
  size_t max_stream_backlog = 1024 * 1024;
  // A request's headers and body must all arrive within this from its first byte: a client
  // that trickles them (slow-loris) is cut off rather than hold a connection for ever.
  std::chrono::milliseconds request_timeout{10'000};
  // Open connections (each may hold a body of max_body_bytes: this bounds the memory clients
  // can make the server hold). At the limit, a new connection takes the place of the one idle
  // (or trickling a request) the longest, so that idle clients cannot lock others out; only
  // when every connection is busy with a request or a stream is it answered 503 and closed.
  size_t max_connections = 512;
};

class HttpServer {
 public:
  HttpServer(EventLoop& loop, const HttpRouter& router, HttpLimits limits = {});
  ~HttpServer();

  // Set before Listen(); none by default (every request is routed).
  void SetGate(HttpGate gate) { gate_ = std::move(gate); }
  // Set before Listen(): every connection is HTTPS with this server configuration
  // (TlsConfig::ForHttpsServer); clear text gets nothing but a close.
  void SetTls(std::shared_ptr<const TlsConfig> tls) { tls_ = std::move(tls); }
  // Binds and listens. Port 0 picks a free port (see port()).
  Status Listen(Ipv4 address, uint16_t port);
  uint16_t port() const { return listener_.port(); }
  // Connections refused because max_connections were open.
  uint64_t refused_connections() const { return refused_connections_; }
  // Idle connections closed to make room for new ones.
  uint64_t evicted_connections() const { return evicted_connections_; }
  // Stops accepting and closes every connection. Loop thread only.
  void Close();

 private:
  struct Connection;
  friend struct Connection;

  EventLoop& loop_;
  const HttpRouter& router_;
  HttpGate gate_;
  std::shared_ptr<const TlsConfig> tls_;
  HttpLimits limits_;
  TcpListener listener_;
  std::unordered_set<std::shared_ptr<Connection>> connections_;
  uint64_t refused_connections_ = 0;
  uint64_t evicted_connections_ = 0;
};

}  // namespace synod
