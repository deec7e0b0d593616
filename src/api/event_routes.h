// GET /v1/events: the node's EventLog as Server-Sent Events.
//
// A client first gets the kept events after the id it resumes from (the Last-Event-ID header, or
// ?since=ID; without either, the newest 200), then (unless ?follow=false, which ends the stream
// there) every new event as it is published, each
// as "id: N / event: TYPE / data: JSON". A comment line every 15 s keeps proxies and dead-client
// detection honest. Bad ids are answered 400 and nothing is streamed. Loop thread only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/event_loop.h"
#include "events/event_log.h"
#include "net/http_server.h"

namespace synod {

class EventStreams {
 public:
  // `log` must outlive this; this must outlive the HTTP server that serves its route.
  EventStreams(EventLoop& loop, EventLog& log);
  ~EventStreams();

  void AddRoutes(HttpRouter& router);
  // Closes every stream and stops the keep-alive timer (the loop can then end).
  void Stop();
  size_t open_streams() const { return streams_.size(); }
  // Closes the streams whose request's Authorization header (null: none) `allowed` refuses now:
  // after the API's tokens were reloaded, a revoked token stops receiving events at once, not
  // whenever its client reconnects.
  void CloseUnless(const std::function<bool(const std::string* authorization)>& allowed);

 private:
  void Serve(const HttpRequest& request, HttpResponder respond);
  void Broadcast(const ClusterEvent& event);

  EventLog& log_;
  uint64_t subscription_;
  Timer keep_alive_;
  // Each live stream, with the Authorization header it was opened with.
  std::map<std::shared_ptr<HttpStream>, std::optional<std::string>> streams_;
};

}  // namespace synod
