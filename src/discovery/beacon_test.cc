#include "discovery/beacon.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

TEST(Beacon, FormatsExactlyAsTheSeed) {
  EXPECT_EQ(FormatBeacon(Beacon{"cc89e682", 6758}), "cc89e682 ON 6758");
}

TEST(Beacon, ParsesTheSeedExampleAndRoundTrips) {
  auto parsed = ParseBeacon("1ad640cb ON 8768");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed.value().node_id, "1ad640cb");
  EXPECT_EQ(parsed.value().tcp_port, 8768);
  EXPECT_EQ(FormatBeacon(parsed.value()), "1ad640cb ON 8768");
}

TEST(Beacon, LiberalInHarmlessWays) {
  for (const char* ok : {"abc ON 1\n", "  abc   ON 65535 \r\n", "abc on 42", "ünïcode ON 9"}) {
    EXPECT_TRUE(ParseBeacon(ok).ok()) << ok;
  }
}

TEST(Beacon, RejectsHostileInputWithAReason) {
  struct Case {
    std::string input;
    std::string reason;
  };
  const Case cases[] = {
      {"", "0 tokens"},
      {"abc ON", "2 tokens"},
      {"abc ON 1 extra", "4 tokens"},
      {"abc OFF 1", "expected ON"},
      {"abc ON port", "not a number"},
      {"abc ON -1", "not a number"},
      {"abc ON 0", "out of range"},
      {"abc ON 65536", "out of range"},
      {"abc ON 99999999999999999999", "not a number"},
      {"abc ON 12ab", "not a number"},
      {std::string(600, 'a'), "oversized"},
      {"\xff\xfe ON 1", "UTF-8"},
      {"\xc0\x80 ON 1", "UTF-8"},      // overlong NUL
      {"\xed\xa0\x80 ON 1", "UTF-8"},  // surrogate
      {"ab\xe2\x82 ON 1", "UTF-8"},    // truncated sequence
      {std::string("a\x01"
                   "b ON 1"),
       "control character"},
      {std::string(65, 'x') + " ON 1", "longer than 64"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseBeacon(c.input);
    ASSERT_FALSE(parsed.ok()) << c.input;
    EXPECT_NE(parsed.error().find(c.reason), std::string::npos)
        << c.input << " -> " << parsed.error();
  }
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));   // U+1F600
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

}  // namespace
}  // namespace synod
