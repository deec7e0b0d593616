#include "events/event_log.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

std::vector<uint64_t> Ids(const std::vector<const ClusterEvent*>& events) {
  std::vector<uint64_t> ids;
  for (const ClusterEvent* event : events) ids.push_back(event->id);
  return ids;
}

TEST(EventLog, EventsCarryIdTypeTimeNodeAndFields) {
  EventLog log(1000, "node1");
  const ClusterEvent& event =
      log.Publish("member.dead", 1'500'000'000'000'000'000, {{"member", {{"name", "node2"}}}});
  EXPECT_EQ(event.id, 1000u);
  const std::string head = "id: 1000\nevent: member.dead\ndata: ";
  ASSERT_EQ(event.sse.substr(0, head.size()), head);
  ASSERT_EQ(event.sse.substr(event.sse.size() - 2), "\n\n");
  const nlohmann::json data =
      nlohmann::json::parse(event.sse.substr(head.size(), event.sse.size() - head.size() - 2));
  EXPECT_EQ(data["id"], 1000);
  EXPECT_EQ(data["type"], "member.dead");
  EXPECT_EQ(data["node"], "node1");
  EXPECT_DOUBLE_EQ(data["time"].get<double>(), 1.5e9);
  EXPECT_EQ(data["member"]["name"], "node2");
}

TEST(EventLog, AFieldTakesThePlaceOfABaseKey) {
  EventLog log(1, "seen-by");
  const ClusterEvent& event = log.Publish("member.joined", 0, {{"node", "joiner"}});
  EXPECT_NE(event.sse.find("\"node\":\"joiner\""), std::string::npos) << event.sse;
  EXPECT_EQ(event.sse.find("seen-by"), std::string::npos) << event.sse;
}

TEST(EventLog, TextWithNewlinesStaysOnOneDataLine) {
  EventLog log(1, "n");
  const ClusterEvent& event = log.Publish("command.sent", 0, {{"command", "a\nb\r\nc"}});
  const std::string data_line = event.sse.substr(event.sse.find("data: "));
  EXPECT_EQ(data_line.find('\n'), data_line.size() - 2);
  EXPECT_EQ(data_line.find('\r'), std::string::npos);
}

TEST(EventLog, AfterResumesAndKeepsOnlyTheNewest) {
  EventLog log(10, "n", 3);
  for (int i = 0; i < 5; ++i) log.Publish("t", 0, nlohmann::json::object());
  EXPECT_EQ(log.last_id(), 14u);
  EXPECT_EQ(log.size(), 3u);
  EXPECT_EQ(Ids(log.After(0, 100)), (std::vector<uint64_t>{12, 13, 14}));
  EXPECT_EQ(Ids(log.After(12, 100)), (std::vector<uint64_t>{13, 14}));
  EXPECT_EQ(Ids(log.After(14, 100)), (std::vector<uint64_t>{}));
  EXPECT_EQ(Ids(log.After(0, 1)), (std::vector<uint64_t>{14}));
  // An id from the future (a client of an earlier boot with a clock ahead) gets nothing old.
  EXPECT_TRUE(log.After(1'000'000, 100).empty());
}

TEST(EventLog, SubscribersSeeEachEventOnceAndMayLeaveFromTheCallback) {
  EventLog log(1, "n");
  std::vector<uint64_t> first, second;
  uint64_t first_token = 0;
  first_token = log.Subscribe([&](const ClusterEvent& event) {
    first.push_back(event.id);
    if (first.size() == 2) log.Unsubscribe(first_token);
  });
  log.Subscribe([&](const ClusterEvent& event) { second.push_back(event.id); });
  for (int i = 0; i < 3; ++i) log.Publish("t", 0, nlohmann::json::object());
  EXPECT_EQ(first, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(second, (std::vector<uint64_t>{1, 2, 3}));
}

}  // namespace
}  // namespace synod
