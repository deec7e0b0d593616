// EventLog: the cluster events this node has seen lately, for the event stream (GET /v1/events),
// the dashboard and `synod events`.
//
// Contract:
// - Ids increase strictly. The first is given by the owner: the agent passes the wall-clock time
//   at start in microseconds, so ids keep increasing across a node's restarts and a client that
//   resumes with an id from before a restart is sent the new events rather than nothing.
// - The newest `capacity` events are kept; older ones are forgotten.
// - Each event is rendered once, as JSON and as a Server-Sent Events frame, whoever reads it.
// - Subscribers are called inside Publish(), in the order they subscribed; one may unsubscribe
//   itself (or another) from there.
// Pure: no I/O, no clock. Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace synod {

struct ClusterEvent {
  uint64_t id = 0;
  std::string type;  // "member.dead", "leader.changed", ...
  // "id: ..\nevent: ..\ndata: <json>\n\n", the JSON object holding "id", "type", "time" (unix
  // s), "node" (who saw it) and the fields. Only the text is kept: at thousands of events a
  // second (timers firing), keeping each event's JSON tree too cost as much as making it.
  std::string sse;
};

class EventLog {
 public:
  using Listener = std::function<void(const ClusterEvent&)>;

  // `node` names this node in every event.
  EventLog(uint64_t first_id, std::string node, size_t capacity = 4096);

  // Records an event that happened at `unix_nanos`; `fields` (an object) is merged into it, a
  // field taking the place of a base key ("id", "type", "time", "node") of the same name.
  const ClusterEvent& Publish(const std::string& type, int64_t unix_nanos, nlohmann::json fields);

  // Kept events with an id above `after`, oldest first; at most the newest `limit` of them.
  std::vector<const ClusterEvent*> After(uint64_t after, size_t limit) const;
  uint64_t last_id() const { return next_id_ - 1; }
  size_t size() const { return events_.size(); }

  uint64_t Subscribe(Listener listener);
  void Unsubscribe(uint64_t token);

 private:
  std::string node_;
  size_t capacity_;
  uint64_t next_id_;
  std::deque<ClusterEvent> events_;
  std::map<uint64_t, Listener> listeners_;
  uint64_t next_token_ = 1;
};

// A function features call to publish an event: (type, when in unix nanoseconds, fields). An
// empty one publishes nothing, so a feature works the same without an event log.
using EventSink =
    std::function<void(const std::string& type, int64_t unix_nanos, nlohmann::json fields)>;

}  // namespace synod
