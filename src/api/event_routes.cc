#include "api/event_routes.h"

#include <optional>
#include <string>
#include <vector>

#include "core/decimal.h"

namespace synod {
namespace {

constexpr size_t kDefaultReplay = 200;
constexpr auto kKeepAlive = std::chrono::seconds(15);

}  // namespace

EventStreams::EventStreams(EventLoop& loop, EventLog& log)
    : log_(log),
      subscription_(log.Subscribe([this](const ClusterEvent& event) { Broadcast(event); })),
      keep_alive_(loop) {
  keep_alive_.Start(kKeepAlive, kKeepAlive, [this] {
    auto streams = streams_;  // a failed write closes the stream, which leaves the map
    for (const auto& [stream, authorization] : streams) stream->Write(": keep-alive\n\n");
  });
}

EventStreams::~EventStreams() {
  log_.Unsubscribe(subscription_);
  Stop();
}

void EventStreams::Stop() {
  keep_alive_.Stop();
  auto streams = std::move(streams_);
  streams_.clear();
  for (const auto& [stream, authorization] : streams) stream->Close();
}

void EventStreams::CloseUnless(
    const std::function<bool(const std::string* authorization)>& allowed) {
  std::vector<std::shared_ptr<HttpStream>> revoked;
  for (const auto& [stream, authorization] : streams_) {
    if (!allowed(authorization ? &*authorization : nullptr)) revoked.push_back(stream);
  }
  for (const auto& stream : revoked) stream->Close();  // which takes it out of the map
}

void EventStreams::AddRoutes(HttpRouter& router) {
  router.Handle("GET", "/v1/events", [this](const HttpRequest& request, HttpResponder respond) {
    Serve(request, std::move(respond));
  });
}

void EventStreams::Serve(const HttpRequest& request, HttpResponder respond) {
  std::optional<uint64_t> after;
  if (auto header = request.headers.find("last-event-id"); header != request.headers.end()) {
    after = ParseDecimal(header->second);
    if (!after) {
      return respond(HttpResponse::Error(400,
                                         "Last-Event-ID must be an event id (a decimal "
                                         "number), not \"" +
                                             header->second + "\""));
    }
  } else if (auto since = request.query.find("since"); since != request.query.end()) {
    after = ParseDecimal(since->second);
    if (!after) {
      return respond(HttpResponse::Error(
          400, "since must be an event id (a decimal number), not \"" + since->second + "\""));
    }
  }
  const auto follow = request.query.find("follow");
  if (follow != request.query.end() && follow->second != "true" && follow->second != "false") {
    return respond(
        HttpResponse::Error(400, "follow must be true or false, not \"" + follow->second + "\""));
  }
  const bool live = follow == request.query.end() || follow->second == "true";
  const std::vector<const ClusterEvent*> backlog =
      after ? log_.After(*after, log_.size()) : log_.After(0, kDefaultReplay);
  std::optional<std::string> authorization;
  if (auto header = request.headers.find("authorization"); header != request.headers.end()) {
    authorization = header->second;
  }
  std::string first = "retry: 1000\n\n";
  for (const ClusterEvent* event : backlog) first += event->sse;
  HttpResponse response = HttpResponse::Stream(
      "text/event-stream",
      [this, live, first = std::move(first),
       authorization = std::move(authorization)](std::shared_ptr<HttpStream> stream) {
        if (!stream->Write(first)) return;
        if (!live) return stream->Close();
        streams_.emplace(stream, authorization);
        std::weak_ptr<HttpStream> weak = stream;
        stream->OnClosed([this, weak] {
          if (auto closed = weak.lock()) streams_.erase(closed);
        });
      });
  response.headers.emplace_back("X-Accel-Buffering", "no");
  respond(std::move(response));
}

void EventStreams::Broadcast(const ClusterEvent& event) {
  auto streams = streams_;  // a failed write closes the stream, which leaves the map
  for (const auto& [stream, authorization] : streams) stream->Write(event.sse);
}

}  // namespace synod
