#include "core/duration.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, AcceptsUnitsAndBareSeconds) {
  EXPECT_EQ(ParseDuration("1s").value(), milliseconds(1000));
  EXPECT_EQ(ParseDuration("250ms").value(), milliseconds(250));
  EXPECT_EQ(ParseDuration("1.5s").value(), milliseconds(1500));
  EXPECT_EQ(ParseDuration("2m").value(), milliseconds(120'000));
  EXPECT_EQ(ParseDuration("1h").value(), milliseconds(3'600'000));
  EXPECT_EQ(ParseDuration("3").value(), milliseconds(3000));
}

TEST(ParseDuration, RejectsGarbageWithAReason) {
  for (const char* bad : {"", "s", "-1s", "5q", "1s2", "abc", "1e400s", ".s"}) {
    auto parsed = ParseDuration(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
  }
  EXPECT_NE(ParseDuration("5q").error().find("unknown unit 'q'"), std::string::npos);
  EXPECT_NE(ParseDuration("99999999999h").error().find("too large"), std::string::npos);
}

TEST(ParseDuration, AcceptsDaysAndCompoundForms) {
  EXPECT_EQ(ParseDuration("1d").value(), milliseconds(86'400'000));
  EXPECT_EQ(ParseDuration("1h30m").value(), milliseconds(5'400'000));
  EXPECT_EQ(ParseDuration("1h30m15s").value(), milliseconds(5'415'000));
  EXPECT_EQ(ParseDuration("2d3h").value(), milliseconds(183'600'000));
  EXPECT_EQ(ParseDuration("1m30s500ms").value(), milliseconds(90'500));
  EXPECT_EQ(ParseDuration("1d1h1m1s1ms").value(), milliseconds(90'061'001));
  EXPECT_EQ(ParseDuration("2min5s").value(), milliseconds(125'000));
  EXPECT_EQ(ParseDuration("1h0.5m").value(), milliseconds(3'630'000));
  EXPECT_EQ(ParseDuration("0s").value(), milliseconds(0));
}

TEST(ParseDuration, RejectsMalformedCompoundForms) {
  for (const char* bad : {"1h1h", "30m1h", "1h-5m", "h", "1.5.2s", "1h30", "1h30m ", " 1h",
                          "1h 30m", "1m1min", "1s1m", "500ms1s", "1d2", "1h30mx", "d1"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  EXPECT_NE(ParseDuration("1h1h").error().find("given twice"), std::string::npos);
  EXPECT_NE(ParseDuration("30m1h").error().find("out of order"), std::string::npos);
  EXPECT_NE(ParseDuration("1h30").error().find("needs a unit"), std::string::npos);
  EXPECT_NE(ParseDuration("1h-5m").error().find("expected a number"), std::string::npos);
  EXPECT_NE(ParseDuration("1x").error().find("use ms, s, m, h or d"), std::string::npos);
}

TEST(ParseDuration, LimitsTheTotal) {
  // 11574d is 999'993'600'000 ms, just under the 1e12 ms limit; two more hours or one more day push
  // it over.
  EXPECT_EQ(ParseDuration("11574d").value(), milliseconds(999'993'600'000));
  EXPECT_NE(ParseDuration("11574d2h").error().find("too large"), std::string::npos);
  EXPECT_NE(ParseDuration("11575d").error().find("too large"), std::string::npos);
  EXPECT_NE(ParseDuration("11000d99999999999ms").error().find("too large"), std::string::npos);
}

}  // namespace
}  // namespace synod
