#include "events/event_log.h"

#include <algorithm>
#include <cassert>

namespace synod {

EventLog::EventLog(uint64_t first_id, std::string node, size_t capacity)
    : node_(std::move(node)),
      capacity_(std::max<size_t>(capacity, 1)),
      next_id_(std::max<uint64_t>(first_id, 1)) {}

const ClusterEvent& EventLog::Publish(const std::string& type, int64_t unix_nanos,
                                      nlohmann::json fields) {
  ClusterEvent event;
  event.id = next_id_++;
  event.type = type;
  nlohmann::json object = fields.is_object() ? std::move(fields) : nlohmann::json::object();
  object.emplace("id", event.id);  // emplace: a field of the same name stays
  object.emplace("type", type);
  object.emplace("time", static_cast<double>(unix_nanos) / 1e9);
  object.emplace("node", node_);
  // A JSON dump without indentation holds no newline, which would end the SSE data line.
  const std::string data = object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  event.sse = "id: " + std::to_string(event.id) + "\nevent: " + type + "\ndata: " + data + "\n\n";
  if (events_.size() == capacity_) events_.pop_front();
  events_.push_back(std::move(event));
  const ClusterEvent& published = events_.back();
  // A listener may unsubscribe while we iterate: walk by token.
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    const uint64_t token = it->first;
    Listener listener = it->second;
    listener(published);
    it = listeners_.upper_bound(token);
  }
  return published;
}

std::vector<const ClusterEvent*> EventLog::After(uint64_t after, size_t limit) const {
  auto first =
      std::upper_bound(events_.begin(), events_.end(), after,
                       [](uint64_t id, const ClusterEvent& event) { return id < event.id; });
  const size_t available = static_cast<size_t>(events_.end() - first);
  if (available > limit) first += static_cast<std::ptrdiff_t>(available - limit);
  std::vector<const ClusterEvent*> out;
  out.reserve(std::min(available, limit));
  for (auto it = first; it != events_.end(); ++it) out.push_back(&*it);
  return out;
}

uint64_t EventLog::Subscribe(Listener listener) {
  assert(listener);
  const uint64_t token = next_token_++;
  listeners_.emplace(token, std::move(listener));
  return token;
}

void EventLog::Unsubscribe(uint64_t token) { listeners_.erase(token); }

}  // namespace synod
