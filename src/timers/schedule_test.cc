#include "timers/schedule.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>

namespace synod {
namespace {

// Expected instants below were computed independently with Python's datetime module.
constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t k20261129T140500Z = 1'795'961'100 * kSecond;

int64_t Rfc(const char* text) {
  auto parsed = ParseRfc3339(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << parsed.error();
  return parsed.ok() ? parsed.value() : 0;
}

std::string Next(const char* cron, const char* after) {
  auto schedule = CronSchedule::Parse(cron);
  EXPECT_TRUE(schedule.ok()) << cron << ": " << schedule.error();
  if (!schedule.ok()) return "parse error";
  std::optional<int64_t> next = schedule.value().NextAfter(Rfc(after));
  return next ? FormatRfc3339(*next) : "none";
}

// --- RFC 3339 ---

TEST(ScheduleRfc3339, ParsesUtcAndOffsets) {
  EXPECT_EQ(Rfc("2026-11-29T14:05:00Z"), k20261129T140500Z);
  EXPECT_EQ(Rfc("2026-11-29t14:05:00z"), k20261129T140500Z);
  EXPECT_EQ(Rfc("2026-11-29 14:05:00Z"), k20261129T140500Z);
  EXPECT_EQ(Rfc("2026-11-29T15:05:00+01:00"), k20261129T140500Z);
  EXPECT_EQ(Rfc("2026-11-29T08:35:00-05:30"), k20261129T140500Z);
  EXPECT_EQ(Rfc("2026-11-29T14:05:00-00:00"), k20261129T140500Z);
  EXPECT_EQ(Rfc("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Rfc("2024-02-29T00:00:00Z"), 1'709'164'800 * kSecond);
  EXPECT_EQ(Rfc("2000-02-29T00:00:00Z"), 951'782'400 * kSecond);  // divisible by 400: leap
  // An offset may take a 1970 time before the epoch.
  EXPECT_EQ(Rfc("1970-01-01T00:30:00+01:00"), -1800 * kSecond);
  // The latest representable instant.
  EXPECT_EQ(Rfc("2262-04-11T23:47:16.854775807Z"), std::numeric_limits<int64_t>::max());
}

TEST(ScheduleRfc3339, ParsesFractions) {
  EXPECT_EQ(Rfc("2026-11-29T14:05:00.5Z"), k20261129T140500Z + 500'000'000);
  EXPECT_EQ(Rfc("2026-11-29T14:05:00.123Z"), k20261129T140500Z + 123'000'000);
  EXPECT_EQ(Rfc("2026-11-29T14:05:00.000001Z"), k20261129T140500Z + 1'000);
  EXPECT_EQ(Rfc("2026-11-29T14:05:00.123456789Z"), k20261129T140500Z + 123'456'789);
  EXPECT_EQ(Rfc("2026-11-29T15:05:00.25+01:00"), k20261129T140500Z + 250'000'000);
}

TEST(ScheduleRfc3339, Formats) {
  EXPECT_EQ(FormatRfc3339(k20261129T140500Z), "2026-11-29T14:05:00Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(k20261129T140500Z + 500'000'000), "2026-11-29T14:05:00.500Z");
  EXPECT_EQ(FormatRfc3339(k20261129T140500Z + 123'000'000), "2026-11-29T14:05:00.123Z");
  EXPECT_EQ(FormatRfc3339(k20261129T140500Z + 123'400'000), "2026-11-29T14:05:00.123400Z");
  EXPECT_EQ(FormatRfc3339(k20261129T140500Z + 1'000), "2026-11-29T14:05:00.000001Z");
  EXPECT_EQ(FormatRfc3339(k20261129T140500Z + 123'456'789), "2026-11-29T14:05:00.123456789Z");
  EXPECT_EQ(FormatRfc3339(k20261129T140500Z + 10), "2026-11-29T14:05:00.000000010Z");
  EXPECT_EQ(FormatRfc3339(1'709'164'800 * kSecond), "2024-02-29T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(FormatRfc3339(-1800 * kSecond), "1969-12-31T23:30:00Z");
  EXPECT_EQ(FormatRfc3339(std::numeric_limits<int64_t>::max()), "2262-04-11T23:47:16.854775807Z");
  EXPECT_EQ(FormatRfc3339(std::numeric_limits<int64_t>::min()), "1677-09-21T00:12:43.145224192Z");
}

TEST(ScheduleRfc3339, RoundTrips) {
  for (const char* text : {"2026-11-29T14:05:00Z", "2024-02-29T23:59:59.999Z",
                           "1999-12-31T23:59:59.999999Z", "2100-03-01T00:00:00.000000001Z",
                           "1970-01-01T00:00:00.100Z", "2262-04-11T23:47:16.854775807Z"}) {
    EXPECT_EQ(FormatRfc3339(Rfc(text)), text);
  }
  // Every 31'234'567'890'123 ns step from the epoch for about 60 years reads back to itself.
  for (int64_t t = 0; t < 60LL * 366 * 86'400 * kSecond; t += 31'234'567'890'123) {
    auto parsed = ParseRfc3339(FormatRfc3339(t));
    ASSERT_TRUE(parsed.ok()) << FormatRfc3339(t);
    ASSERT_EQ(parsed.value(), t);
  }
}

TEST(ScheduleRfc3339, RejectsWithAReason) {
  struct Case {
    const char* text;
    const char* reason;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "expected YYYY-MM-DD"},
           {"2026-11-29", "expected YYYY-MM-DD"},
           {"2026-11-29T14:05Z", "expected YYYY-MM-DD"},
           {"2026-11-29X14:05:00Z", "expected YYYY-MM-DD"},
           {"2026/11/29T14:05:00Z", "expected YYYY-MM-DD"},
           {"26-11-29T14:05:00Z", "expected YYYY-MM-DD"},
           {"+2026-11-29T14:05:00Z", "expected YYYY-MM-DD"},
           {"2026-11-29T14:05:00", "missing time zone"},
           {"2026-11-29T14:05:00 Z", "missing time zone"},
           {"2026-11-29T14:05:00ZZ", "unexpected 'Z'"},
           {" 2026-11-29T14:05:00Z", "expected YYYY-MM-DD"},
           {"2026-11-29T14:05:00Z ", "unexpected ' '"},
           {"2026-11-29T14:05:00+0100", "expected YYYY-MM-DD"},
           {"2026-11-29T14:05:00+01", "expected YYYY-MM-DD"},
           {"2026-11-29T14:05:00+24:00", "offset +24:00 is out of range"},
           {"2026-11-29T14:05:00+01:60", "offset +01:60 is out of range"},
           {"2026-11-29T14:05:00.Z", "no digits after the decimal point"},
           {"2026-11-29T14:05:00.1234567891Z", "more than 9 digits"},
           {"2026-00-29T14:05:00Z", "month 0 is not 1-12"},
           {"2026-13-29T14:05:00Z", "month 13 is not 1-12"},
           {"2026-11-00T14:05:00Z", "day 0 does not exist in 2026-11"},
           {"2026-11-31T14:05:00Z", "day 31 does not exist in 2026-11"},
           {"2023-02-29T00:00:00Z", "day 29 does not exist in 2023-02"},
           {"1900-02-29T00:00:00Z", "year before 1970"},
           {"2100-02-29T00:00:00Z", "day 29 does not exist in 2100-02"},
           {"2026-11-29T24:00:00Z", "hour 24 is not 0-23"},
           {"2026-11-29T14:60:00Z", "minute 60 is not 0-59"},
           {"2016-12-31T23:59:60Z", "second 60 is not 0-59 (leap seconds"},
           {"1969-12-31T23:59:59Z", "year before 1970"},
           {"2262-04-11T23:47:16.854775808Z", "latest time that can be represented"},
           {"9999-12-31T23:59:59Z", "latest time that can be represented"},
       }) {
    auto parsed = ParseRfc3339(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.code(), StatusCode::kInvalid) << c.text;
    EXPECT_NE(parsed.error().find(c.reason), std::string::npos)
        << c.text << " -> " << parsed.error();
  }
}

// --- cron ---

TEST(ScheduleCron, CrossesMonthEnds) {
  EXPECT_EQ(Next("0 0 31 * *", "2026-04-15T00:00:00Z"), "2026-05-31T00:00:00Z");
  EXPECT_EQ(Next("0 0 31 * *", "2026-05-31T00:00:00Z"), "2026-07-31T00:00:00Z");
  EXPECT_EQ(Next("0 0 1 */3 *", "2026-03-10T00:00:00Z"), "2026-04-01T00:00:00Z");
  EXPECT_EQ(Next("0 0 30 * *", "2026-01-30T00:00:01Z"), "2026-03-30T00:00:00Z");
}

TEST(ScheduleCron, LeapYears) {
  EXPECT_EQ(Next("0 12 29 2 *", "2025-03-01T00:00:00Z"), "2028-02-29T12:00:00Z");
  EXPECT_EQ(Next("0 12 29 2 *", "2028-02-29T12:00:00Z"), "2032-02-29T12:00:00Z");
  // 2100 is not a leap year: the next Feb 29 after 2096 is in 2104, eight years on.
  EXPECT_EQ(Next("0 0 29 2 *", "2096-03-01T00:00:00Z"), "2104-02-29T00:00:00Z");
}

TEST(ScheduleCron, RollsOverTheYear) {
  EXPECT_EQ(Next("0 0 * * *", "2026-12-31T23:59:30Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(Next("30 23 31 12 *", "2026-12-31T23:30:00Z"), "2027-12-31T23:30:00Z");
  EXPECT_EQ(Next("30 23 31 12 *", "2026-12-31T23:29:59.999Z"), "2026-12-31T23:30:00Z");
  EXPECT_EQ(Next("* * * * *", "2026-12-31T23:59:00Z"), "2027-01-01T00:00:00Z");
}

TEST(ScheduleCron, IsStrictlyAfterAndOnWholeMinutes) {
  EXPECT_EQ(Next("* * * * *", "2026-11-29T14:05:00Z"), "2026-11-29T14:06:00Z");
  EXPECT_EQ(Next("* * * * *", "2026-11-29T14:05:59.999999999Z"), "2026-11-29T14:06:00Z");
  EXPECT_EQ(Next("*/15 * * * *", "2026-03-10T10:07:30Z"), "2026-03-10T10:15:00Z");
  EXPECT_EQ(Next("*/15 * * * *", "2026-03-10T10:45:00Z"), "2026-03-10T11:00:00Z");
  // From before the epoch.
  EXPECT_EQ(Next("0 0 * * *", "1970-01-01T00:30:00+01:00"), "1970-01-01T00:00:00Z");
}

TEST(ScheduleCron, DayOfMonthOrDayOfWeek) {
  // Both restricted: the 13th OR a Friday. 2026-01-02 is a Friday.
  EXPECT_EQ(Next("0 9 13 * 5", "2026-01-01T00:00:00Z"), "2026-01-02T09:00:00Z");
  EXPECT_EQ(Next("0 9 13 * fri", "2026-01-09T10:00:00Z"), "2026-01-13T09:00:00Z");
  // Feb 29 OR a Monday in February: 2026-02-02 is the first Monday.
  EXPECT_EQ(Next("0 0 29 2 1", "2025-03-01T00:00:00Z"), "2026-02-02T00:00:00Z");
  // One day field starting with '*' (Vixie): both must match. Odd days that are Fridays:
  // 2026-01-02 is a Friday but even; 2026-01-09 is the first odd Friday.
  EXPECT_EQ(Next("0 9 */2 * 5", "2026-01-01T00:00:00Z"), "2026-01-09T09:00:00Z");
  // Only the weekday restricted: months 1 and 3, weekdays. 2026-03-01 is a Sunday.
  EXPECT_EQ(Next("0 0 * jan-mar/2 mon-fri", "2026-01-31T12:00:00Z"), "2026-03-02T00:00:00Z");
}

TEST(ScheduleCron, StepsRangesAndNames) {
  EXPECT_EQ(Next("10-50/20 8-18/5 * * *", "2026-03-10T18:51:00Z"), "2026-03-11T08:10:00Z");
  EXPECT_EQ(Next("10-50/20 8-18/5 * * *", "2026-03-10T13:30:00Z"), "2026-03-10T13:50:00Z");
  EXPECT_EQ(Next("5/20 * * * *", "2026-03-10T10:46:00Z"), "2026-03-10T11:05:00Z");
  EXPECT_EQ(Next("0,30 6,18 * * *", "2026-03-10T06:30:00Z"), "2026-03-10T18:00:00Z");
  EXPECT_EQ(Next("5 4 * * SUN", "2026-03-10T00:00:00Z"), "2026-03-15T04:05:00Z");
  EXPECT_EQ(Next("0 0 1 Jul *", "2026-03-10T00:00:00Z"), "2026-07-01T00:00:00Z");
  EXPECT_EQ(Next("0 0 1 oct-dec *", "2026-03-10T00:00:00Z"), "2026-10-01T00:00:00Z");
  // Saturday through Sunday (7). 2026-03-10 is a Tuesday, 2026-03-14 a Saturday.
  EXPECT_EQ(Next("0 0 * * 6-7", "2026-03-10T00:00:00Z"), "2026-03-14T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * 6-7", "2026-03-14T00:00:00Z"), "2026-03-15T00:00:00Z");
}

TEST(ScheduleCron, SevenIsSunday) {
  EXPECT_EQ(Next("0 0 * * 7", "2026-03-10T00:00:00Z"), "2026-03-15T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * 0", "2026-03-10T00:00:00Z"), "2026-03-15T00:00:00Z");
  EXPECT_EQ(Next("0 0 * * 7", "2026-03-15T00:00:00Z"), "2026-03-22T00:00:00Z");
}

TEST(ScheduleCron, Macros) {
  EXPECT_EQ(Next("@yearly", "2026-03-10T00:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(Next("@annually", "2026-03-10T00:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(Next("@monthly", "2026-03-10T00:00:00Z"), "2026-04-01T00:00:00Z");
  EXPECT_EQ(Next("@weekly", "2026-03-10T00:00:00Z"), "2026-03-15T00:00:00Z");
  EXPECT_EQ(Next("@daily", "2026-03-10T00:00:00Z"), "2026-03-11T00:00:00Z");
  EXPECT_EQ(Next("@midnight", "2026-03-10T00:00:00Z"), "2026-03-11T00:00:00Z");
  EXPECT_EQ(Next("@hourly", "2026-03-10T10:00:00Z"), "2026-03-10T11:00:00Z");
  EXPECT_EQ(Next("@HOURLY", "2026-03-10T10:00:00Z"), "2026-03-10T11:00:00Z");
}

TEST(ScheduleCron, NeverMatchingGivesNothingQuickly) {
  for (const char* never : {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "* * 31 feb *"}) {
    auto schedule = CronSchedule::Parse(never);
    ASSERT_TRUE(schedule.ok()) << never;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(schedule.value().NextAfter(Rfc("2026-03-10T00:00:00Z")), std::nullopt) << never;
    // Generous for sanitizers and a loaded machine; the scan is a few hundred days.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50)) << never;
  }
  // Past the int64 range.
  auto daily = CronSchedule::Parse("@daily");
  ASSERT_TRUE(daily.ok());
  EXPECT_EQ(daily.value().NextAfter(std::numeric_limits<int64_t>::max()), std::nullopt);
  EXPECT_EQ(daily.value().NextAfter(Rfc("2262-04-11T00:00:00Z")), std::nullopt);
  EXPECT_EQ(FormatRfc3339(*daily.value().NextAfter(Rfc("2262-04-10T00:00:00Z"))),
            "2262-04-11T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(*daily.value().NextAfter(std::numeric_limits<int64_t>::min())),
            "1677-09-22T00:00:00Z");
}

TEST(ScheduleCron, KeepsTheTrimmedText) {
  auto schedule = CronSchedule::Parse("  */5 *\t* * *\n");
  ASSERT_TRUE(schedule.ok());
  EXPECT_EQ(schedule.value().text(), "*/5 *\t* * *");
  EXPECT_EQ(CronSchedule::Parse(" @Daily ").value().text(), "@Daily");
}

TEST(ScheduleCron, RejectsWithAReason) {
  struct Case {
    const char* text;
    const char* reason;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "empty cron expression"},
           {"   ", "empty cron expression"},
           {"0 0 * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
           {"0 0 * *", "got 4"},
           {"60 * * * *", "minute: 60 is out of range 0-59"},
           {"* 24 * * *", "hour: 24 is out of range 0-23"},
           {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
           {"* * 32 * *", "day-of-month: 32 is out of range 1-31"},
           {"* * * 13 *", "month: 13 is out of range 1-12"},
           {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
           {"5-1 * * * *", "minute: range '5-1' is backwards"},
           {"* * * * fri-mon", "day-of-week: range 'fri-mon' is backwards"},
           {"*/0 * * * *", "minute: step '0' in '*/0' must be a number from 1 to 60"},
           {"*/61 * * * *", "must be a number from 1 to 60"},
           {"*/ * * * *", "step '' in '*/'"},
           {"*/x * * * *", "step 'x'"},
           {"1-5/-1 * * * *", "step '-1'"},
           {"abc * * * *", "minute: 'abc' is not a number"},
           {"* * * foo *", "month: 'foo' is neither a number nor a month name (jan-dec)"},
           {"* * * * funday", "day-of-week: 'funday' is neither a number nor a day name"},
           {"* * * * january", "day-of-week: 'january' is neither"},
           {"* * jan * *", "day-of-month: 'jan' is not a number"},
           {"1,,2 * * * *", "minute: empty item in list '1,,2'"},
           {"1, * * * *", "minute: empty item"},
           {"-1 * * * *", "minute: a value is missing in '-1'"},
           {"1- * * * *", "minute: a value is missing in '1-'"},
           {"99999999999 * * * *", "minute: 99999999999 is out of range 0-59"},
           {"** * * * *", "minute: '**' is not a number"},
           {"1-2-3 * * * *", "minute: '2-3' is not a number"},
           {"@reboot", "unknown macro"},
           {"@daily 5", "unknown macro"},
       }) {
    auto parsed = CronSchedule::Parse(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.code(), StatusCode::kInvalid) << c.text;
    EXPECT_NE(parsed.error().find(c.reason), std::string::npos)
        << c.text << " -> " << parsed.error();
  }
}

// --- retry backoff ---

constexpr uint64_t kSeeds = 2000;

TEST(ScheduleBackoff, GrowsExponentiallyWithinTheJitterBand) {
  const RetryPolicy policy;  // 1 s, x2, cap 5 min
  const int64_t bases[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300};
  for (uint32_t failed = 1; failed <= 11; ++failed) {
    const int64_t base = bases[failed - 1] * kSecond;
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
      const int64_t delay = BackoffNanos(policy, failed, seed);
      ASSERT_GE(delay, base * 8 / 10) << failed << " " << seed;
      ASSERT_LE(delay, base * 12 / 10) << failed << " " << seed;
    }
  }
}

TEST(ScheduleBackoff, JitterCoversTheBandAndIsDeterministic) {
  const RetryPolicy policy;
  int64_t low = std::numeric_limits<int64_t>::max();
  int64_t high = 0;
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    const int64_t delay = BackoffNanos(policy, 1, seed);
    EXPECT_EQ(delay, BackoffNanos(policy, 1, seed));
    low = std::min(low, delay);
    high = std::max(high, delay);
  }
  EXPECT_LT(low, 810'000'000);
  EXPECT_GT(high, 1'190'000'000);
  // splitmix64(0) = 0xe220a8397b1dcdaf -> uniform 0.88331... -> factor 1.15332...
  EXPECT_EQ(BackoffNanos(policy, 1, 0), 1'153'324'323);
  EXPECT_EQ(BackoffNanos(policy, 3, 42), 4'386'503'806);
  EXPECT_EQ(BackoffNanos(policy, 20, 7), 286'779'569'806);
}

TEST(ScheduleBackoff, NeverOverflowsOrLeavesTheBounds) {
  RetryPolicy policy;
  for (double multiplier : {1.0, 1.5, 2.0, 10.0}) {
    policy.multiplier = multiplier;
    for (uint32_t failed : {1000u, 100'000u, std::numeric_limits<uint32_t>::max()}) {
      const int64_t delay = BackoffNanos(policy, failed, failed);
      if (multiplier == 1.0) {
        EXPECT_GE(delay, 800'000'000);
        EXPECT_LE(delay, 1'200'000'000);
      } else {
        EXPECT_GE(delay, 240 * kSecond) << multiplier << " " << failed;
        EXPECT_LE(delay, 360 * kSecond) << multiplier << " " << failed;
      }
    }
  }
  // Policies CheckRetryPolicy rejects still give a delay in [1 ms, max * 1.2].
  RetryPolicy wild;
  wild.initial_backoff_nanos = std::numeric_limits<int64_t>::max();
  wild.max_backoff_nanos = std::numeric_limits<int64_t>::max();
  wild.multiplier = 1e300;
  EXPECT_GT(BackoffNanos(wild, 1000, 1), 0);
  wild.initial_backoff_nanos = -5;
  wild.max_backoff_nanos = -5;
  wild.multiplier = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(BackoffNanos(wild, 1000, 1), 1'000'000);
  wild.initial_backoff_nanos = 10;  // 10 ns: floored to 1 ms
  wild.max_backoff_nanos = 20;
  wild.multiplier = 2.0;
  EXPECT_EQ(BackoffNanos(wild, 1, 1), 1'000'000);
  EXPECT_EQ(BackoffNanos(RetryPolicy{}, 0, 0), BackoffNanos(RetryPolicy{}, 1, 0));
}

TEST(ScheduleBackoff, ChecksPolicyRanges) {
  EXPECT_TRUE(CheckRetryPolicy(RetryPolicy{}).ok());
  struct Case {
    RetryPolicy policy;
    const char* field;
  };
  const auto with = [](auto change) {
    RetryPolicy policy;
    change(policy);
    return policy;
  };
  for (const Case& c : std::initializer_list<Case>{
           {with([](RetryPolicy& p) { p.max_attempts = 0; }), "max_attempts"},
           {with([](RetryPolicy& p) { p.max_attempts = 101; }), "max_attempts"},
           {with([](RetryPolicy& p) { p.initial_backoff_nanos = 999'999; }),
            "retry.initial_backoff"},
           {with([](RetryPolicy& p) { p.initial_backoff_nanos = -1; }), "retry.initial_backoff"},
           {with([](RetryPolicy& p) { p.max_backoff_nanos = 500'000'000; }),
            "must not be below retry.initial_backoff"},
           {with([](RetryPolicy& p) { p.max_backoff_nanos = 86'401 * kSecond; }),
            "retry.max_backoff must be at most 1 day"},
           {with([](RetryPolicy& p) { p.multiplier = 0.99; }), "multiplier"},
           {with([](RetryPolicy& p) { p.multiplier = 10.01; }), "multiplier"},
           {with([](RetryPolicy& p) { p.multiplier = std::numeric_limits<double>::quiet_NaN(); }),
            "multiplier"},
       }) {
    const Status status = CheckRetryPolicy(c.policy);
    ASSERT_FALSE(status.ok()) << c.field;
    EXPECT_EQ(status.code(), StatusCode::kInvalid);
    EXPECT_NE(status.message().find(c.field), std::string::npos) << status.message();
  }
  RetryPolicy edges;
  edges.max_attempts = 100;
  edges.initial_backoff_nanos = 1'000'000;
  edges.max_backoff_nanos = 86'400 * kSecond;
  edges.multiplier = 10.0;
  EXPECT_TRUE(CheckRetryPolicy(edges).ok());
  edges.max_attempts = 1;
  edges.max_backoff_nanos = edges.initial_backoff_nanos;
  edges.multiplier = 1.0;
  EXPECT_TRUE(CheckRetryPolicy(edges).ok());
}

}  // namespace
}  // namespace synod
