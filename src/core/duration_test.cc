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

}  // namespace
}  // namespace synod
