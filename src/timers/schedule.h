// Timer schedules: RFC 3339 timestamps, 5-field cron expressions and retry backoff.
//
// Pure functions of their arguments: no clocks, no I/O, no randomness beyond the seed passed in,
// so the same inputs give the same answer on every node and in every test. All times are UTC
// nanoseconds since the Unix epoch (1970-01-01T00:00:00Z) as int64_t, which covers
// 1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z; calendars are proleptic
// Gregorian with no leap seconds and no time zones other than the fixed offsets of RFC 3339.
// Errors on input (a bad timestamp, a bad cron expression, a policy out of range) come back as
// values whose message says what is wrong and can be shown to a user as is. Everything here is
// safe to call from any thread; a CronSchedule is immutable after Parse.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace synod {

// RFC 3339 timestamp -> UTC nanos. Accepts "2026-11-29T14:05:00Z", lower-case t/z, a space instead
// of T, fractional seconds of 1 to 9 digits, offsets "+01:00"/"-05:30" (hours 00-23, minutes
// 00-59). Rejects anything else (including surrounding whitespace) with a message saying what is
// wrong: a bad month or day (incl. Feb 29 of a non-leap year), hour 24, minute or second 60 (leap
// seconds are not represented), a year before 1970 or after 9999 as written, or an instant that
// does not fit in int64 nanoseconds (after 2262-04-11T23:47:16.854775807Z). A written year of 1970
// with a positive offset can give a (valid) negative result.
Result<int64_t> ParseRfc3339(std::string_view text);

// UTC nanos -> "2026-11-29T14:05:00.123456789Z": the fraction is omitted when zero, otherwise
// trailing zeros are trimmed to 3, 6 or 9 digits. Defined for every int64_t (years 1677-2262);
// ParseRfc3339 reads the output back to the same value for every instant from 1970 on.
std::string FormatRfc3339(int64_t utc_nanos);

// A 5-field cron expression evaluated in UTC: minute hour day-of-month month day-of-week.
//
// Fields are separated by spaces or tabs. Each field is "*", a number, a range "a-b", a step
// "*/n", "a-b/n" or "a/n" (a to the field's maximum), or a comma list of these. Month names
// jan-dec and day names sun-sat are accepted in any case, also in ranges ("mon-fri"). Ranges:
// minute 0-59, hour 0-23, day-of-month 1-31, month 1-12, day-of-week 0-7 where 0 and 7 are both
// Sunday. A step must be between 1 and the size of the field's range.
//
// Vixie semantics for days: if either day field starts with '*' (this includes "*/2"), a day
// must match both fields; if neither does, a day matches if EITHER field matches
// ("0 0 1,15 * mon" fires on the 1st, the 15th and every Monday).
//
// Also the macros @yearly/@annually ("0 0 1 1 *"), @monthly ("0 0 1 * *"), @weekly
// ("0 0 * * 0"), @daily/@midnight ("0 0 * * *") and @hourly ("0 * * * *"), in any case.
class CronSchedule {
 public:
  // The error names the field and says why ("day-of-month: 32 is out of range 1-31").
  static Result<CronSchedule> Parse(std::string_view text);

  // The first matching minute strictly after `after_nanos` (its seconds and below are zero), or
  // nullopt if there is none within the next 10 years (e.g. "0 0 30 2 *" never matches) or the
  // answer would not fit in int64 nanoseconds. Iterates at most over the days of those 10 years.
  std::optional<int64_t> NextAfter(int64_t after_nanos) const;

  // The expression as given, with surrounding whitespace trimmed.
  const std::string& text() const { return text_; }

 private:
  CronSchedule() = default;

  bool DayMatches(int day_of_month, int month, int day_of_week) const;

  std::string text_;
  uint64_t minutes_ = 0;  // bit i: minute i (0-59)
  uint32_t hours_ = 0;    // bit i: hour i (0-23)
  uint32_t days_ = 0;     // bit i: day of month i (1-31)
  uint16_t months_ = 0;   // bit i: month i (1-12)
  uint8_t weekdays_ = 0;  // bit i: day of week i (0-6, 0 = Sunday; 7 is folded into 0)
  bool day_of_month_star_ = false;
  bool day_of_week_star_ = false;
};

// Retry backoff: exponential with full-range deterministic jitter.
struct RetryPolicy {
  uint32_t max_attempts = 10;                     // attempts in all, the first included; 1..100
  int64_t initial_backoff_nanos = 1'000'000'000;  // 1 s; 1 ms..max_backoff_nanos
  int64_t max_backoff_nanos = 300'000'000'000;    // 5 min; initial_backoff_nanos..1 day
  double multiplier = 2.0;                        // 1.0..10.0
};

// The delay before attempt `failed_attempts + 1` after `failed_attempts` (>= 1; 0 counts as 1)
// failed ones: min(max, initial * multiplier^(failed_attempts-1)), then scaled by a factor in
// [0.8, 1.2) drawn from splitmix64(jitter_seed) alone, so the same seed gives the same delay
// (callers that want a different draw per attempt mix the attempt into the seed). The result is
// never above max_backoff_nanos * 1.2 and never below 1 ms. Defined, without overflow, for every
// input, including policies that CheckRetryPolicy rejects.
int64_t BackoffNanos(const RetryPolicy& policy, uint32_t failed_attempts, uint64_t jitter_seed);

// Ok if every field of `policy` is within the range given beside it; otherwise an Invalid status
// naming the field.
Status CheckRetryPolicy(const RetryPolicy& policy);

}  // namespace synod
