#include "net/sse_parser.h"

#include <gtest/gtest.h>

#include <vector>

namespace synod {
namespace {

struct Collected {
  std::vector<SseEvent> events;
  SseParser parser{[this](const SseEvent& event) { events.push_back(event); }, 64};
};

TEST(SseParser, EventsSplitAnywhereAreReassembled) {
  const std::string stream =
      "retry: 1000\n\n: keep-alive\n\nid: 7\nevent: member.dead\ndata: {\"a\":1}\n\n"
      "id: 8\r\ndata: one\r\ndata: two\r\n\r\ndata: no id\rdata: cr only\r\r";
  for (size_t piece : {1u, 2u, 5u, 1000u}) {
    Collected c;
    for (size_t at = 0; at < stream.size(); at += piece) c.parser.Feed(stream.substr(at, piece));
    ASSERT_EQ(c.events.size(), 3u) << piece;
    EXPECT_EQ(c.events[0].id, "7");
    EXPECT_EQ(c.events[0].event, "member.dead");
    EXPECT_EQ(c.events[0].data, "{\"a\":1}");
    EXPECT_EQ(c.events[1].id, "8");
    EXPECT_EQ(c.events[1].event, "message");
    EXPECT_EQ(c.events[1].data, "one\ntwo");
    EXPECT_EQ(c.events[2].id, "8");  // the id carries over, as Last-Event-ID does
    EXPECT_EQ(c.events[2].data, "no id\ncr only");
    EXPECT_EQ(c.parser.last_id(), "8");
  }
}

TEST(SseParser, AnOverlongLineDropsItsEventOnly) {
  Collected c;
  c.parser.Feed("data: " + std::string(500, 'x') + "\nevent: big\n\ndata: fine\n\n");
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].data, "fine");
  EXPECT_EQ(c.parser.dropped_lines(), 1u);
}

TEST(SseParser, CommentsAndEmptyEventsDeliverNothing) {
  Collected c;
  c.parser.Feed(": hello\n\nevent: nothing\n\n\n\n");
  EXPECT_TRUE(c.events.empty());
}

}  // namespace
}  // namespace synod
