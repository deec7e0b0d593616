#include "timers/schedule.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

namespace synod {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr int64_t kNanosPerMinute = 60 * kNanosPerSecond;
constexpr int64_t kSecondsPerDay = 86'400;
constexpr int64_t kMinutesPerDay = 1'440;
// How far NextAfter looks: 10 years of 365.25 days, rounded up.
constexpr int64_t kSearchDays = 3'653;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date.
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;                                    // [0, 399]
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + doe - 719468;
}

struct CivilDate {
  int64_t year;
  int month;  // 1-12
  int day;    // 1-31
};

// Howard Hinnant's civil_from_days: the inverse of DaysFromCivil.
CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;                                       // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return CivilDate{yoe + era * 400 + (month <= 2), month, day};
}

bool IsLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// 0 = Sunday. 1970-01-01 was a Thursday.
int WeekdayFromDays(int64_t days) { return static_cast<int>((days % 7 + 11) % 7); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads `count` digits at text[at...]; false if any is not a digit or the text is too short.
bool ReadDigits(std::string_view text, size_t at, size_t count, int* value) {
  if (at + count > text.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + count; ++i) {
    if (!IsDigit(text[i])) return false;
    v = v * 10 + (text[i] - '0');
  }
  *value = v;
  return true;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimBlanks(std::string_view text) {
  const char* kBlanks = " \t\r\n\v\f";
  const size_t first = text.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(kBlanks);
  return text.substr(first, last - first + 1);
}

// --- cron fields ---

struct FieldSpec {
  const char* name;
  int min;
  int max;
  const char* const* names;  // names[i] stands for min + i; nullptr if the field has none
  int name_count;
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr FieldSpec kFields[] = {
    {"minute", 0, 59, nullptr, 0},       {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0}, {"month", 1, 12, kMonthNames, 12},
    {"day-of-week", 0, 7, kDayNames, 7},
};

Status FieldError(const FieldSpec& spec, const std::string& why) {
  return Status::Invalid(std::string(spec.name) + ": " + why);
}

std::string RangeText(const FieldSpec& spec) {
  return std::to_string(spec.min) + "-" + std::to_string(spec.max);
}

// One value of a field: a number in the field's range or, where the field has them, a name.
Status ParseValue(const FieldSpec& spec, std::string_view item, std::string_view text, int* value) {
  if (text.empty()) return FieldError(spec, "a value is missing in '" + std::string(item) + "'");
  if (std::all_of(text.begin(), text.end(), IsDigit)) {
    int v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < spec.min || v > spec.max) {
      return FieldError(spec, std::string(text) + " is out of range " + RangeText(spec));
    }
    *value = v;
    return Status::Ok();
  }
  if (spec.names != nullptr) {
    const std::string lower = Lower(text);
    for (int i = 0; i < spec.name_count; ++i) {
      if (lower == spec.names[i]) {
        *value = spec.min + i;
        return Status::Ok();
      }
    }
    return FieldError(
        spec, "'" + std::string(text) + "' is neither a number nor a " +
                  (spec.names == kMonthNames ? "month name (jan-dec)" : "day name (sun-sat)"));
  }
  return FieldError(spec, "'" + std::string(text) + "' is not a number");
}

// Sets the bits of `field` (bit i = value i) that the field text selects.
Status ParseField(const FieldSpec& spec, std::string_view field, uint64_t* bits) {
  *bits = 0;
  size_t start = 0;
  while (true) {
    const size_t comma = field.find(',', start);
    const std::string_view item = field.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) return FieldError(spec, "empty item in list '" + std::string(field) + "'");
    const size_t slash = item.find('/');
    const std::string_view base = item.substr(0, slash);
    int step = 1;
    if (slash != std::string_view::npos) {
      const std::string_view step_text = item.substr(slash + 1);
      const int span = spec.max - spec.min + 1;
      auto [end, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || !std::all_of(step_text.begin(), step_text.end(), IsDigit) ||
          ec != std::errc() || end != step_text.data() + step_text.size() || step < 1 ||
          step > span) {
        return FieldError(spec, "step '" + std::string(step_text) + "' in '" + std::string(item) +
                                    "' must be a number from 1 to " + std::to_string(span));
      }
    }
    int low = 0;
    int high = 0;
    if (base == "*") {
      low = spec.min;
      high = spec.max;
    } else if (const size_t dash = base.find('-'); dash != std::string_view::npos) {
      if (Status s = ParseValue(spec, item, base.substr(0, dash), &low); !s.ok()) return s;
      if (Status s = ParseValue(spec, item, base.substr(dash + 1), &high); !s.ok()) return s;
      if (low > high) {
        return FieldError(spec, "range '" + std::string(base) + "' is backwards");
      }
    } else {
      if (Status s = ParseValue(spec, item, base, &low); !s.ok()) return s;
      high = slash == std::string_view::npos ? low : spec.max;  // "a/n" runs to the maximum
    }
    for (int v = low; v <= high; v += step) *bits |= uint64_t{1} << v;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Status::Ok();
}

// Index of the lowest set bit at or above `from`, or -1.
int NextBit(uint64_t bits, int from) {
  if (from >= 64) return -1;
  const uint64_t rest = bits & (~uint64_t{0} << from);
  return rest == 0 ? -1 : __builtin_ctzll(rest);
}

struct Macro {
  const char* name;
  const char* expansion;
};

constexpr Macro kMacros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

uint64_t SplitMix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

// --- RFC 3339 ---

Result<int64_t> ParseRfc3339(std::string_view text) {
  const std::string prefix = "invalid timestamp '" + std::string(text) + "': ";
  const auto shape_error = [&] {
    return Status::Invalid(prefix +
                           "expected YYYY-MM-DDTHH:MM:SS[.fraction] and Z or an offset like "
                           "+01:00, e.g. 2026-11-29T14:05:00Z");
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(text, 0, 4, &year) || text.size() < 19 || text[4] != '-' ||
      !ReadDigits(text, 5, 2, &month) || text[7] != '-' || !ReadDigits(text, 8, 2, &day) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !ReadDigits(text, 11, 2, &hour) ||
      text[13] != ':' || !ReadDigits(text, 14, 2, &minute) || text[16] != ':' ||
      !ReadDigits(text, 17, 2, &second)) {
    return shape_error();
  }
  size_t at = 19;
  int64_t fraction_nanos = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    const size_t digits_at = at;
    while (at < text.size() && IsDigit(text[at])) ++at;
    const size_t digits = at - digits_at;
    if (digits == 0) return Status::Invalid(prefix + "no digits after the decimal point");
    if (digits > 9) {
      return Status::Invalid(prefix + "more than 9 digits of fractional seconds");
    }
    for (size_t i = 0; i < 9; ++i) {
      fraction_nanos = fraction_nanos * 10 + (i < digits ? text[digits_at + i] - '0' : 0);
    }
  }
  int offset_seconds = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    int offset_hours = 0, offset_minutes = 0;
    if (!ReadDigits(text, at + 1, 2, &offset_hours) || at + 3 >= text.size() ||
        text[at + 3] != ':' || !ReadDigits(text, at + 4, 2, &offset_minutes)) {
      return shape_error();
    }
    if (offset_hours > 23 || offset_minutes > 59) {
      return Status::Invalid(prefix + "offset " + std::string(text.substr(at, 6)) +
                             " is out of range (-23:59 to +23:59)");
    }
    offset_seconds = (offset_hours * 3600 + offset_minutes * 60) * (text[at] == '-' ? -1 : 1);
    at += 6;
  } else {
    return Status::Invalid(prefix + "missing time zone: end with Z or an offset like +01:00");
  }
  if (at != text.size()) {
    return Status::Invalid(prefix + "unexpected '" + std::string(text.substr(at)) +
                           "' after the time zone");
  }
  if (year < 1970) return Status::Invalid(prefix + "year before 1970");
  if (month < 1 || month > 12) {
    return Status::Invalid(prefix + "month " + std::to_string(month) + " is not 1-12");
  }
  if (day < 1 || day > DaysInMonth(year, month)) {
    return Status::Invalid(prefix + "day " + std::to_string(day) + " does not exist in " +
                           std::to_string(year) + "-" + (month < 10 ? "0" : "") +
                           std::to_string(month));
  }
  if (hour > 23) return Status::Invalid(prefix + "hour " + std::to_string(hour) + " is not 0-23");
  if (minute > 59) {
    return Status::Invalid(prefix + "minute " + std::to_string(minute) + " is not 0-59");
  }
  if (second > 59) {
    return Status::Invalid(prefix + "second " + std::to_string(second) +
                           " is not 0-59 (leap seconds are not supported)");
  }
  const int64_t seconds = DaysFromCivil(year, month, day) * kSecondsPerDay + hour * 3600 +
                          minute * 60 + second - offset_seconds;
  int64_t nanos = 0;
  if (__builtin_mul_overflow(seconds, kNanosPerSecond, &nanos) ||
      __builtin_add_overflow(nanos, fraction_nanos, &nanos)) {
    return Status::Invalid(prefix +
                           "after 2262-04-11T23:47:16.854775807Z, the latest time "
                           "that can be represented");
  }
  return nanos;
}

std::string FormatRfc3339(int64_t utc_nanos) {
  int64_t seconds = utc_nanos / kNanosPerSecond;
  int64_t fraction = utc_nanos % kNanosPerSecond;
  if (fraction < 0) {
    fraction += kNanosPerSecond;
    --seconds;
  }
  const int64_t days = FloorDiv(seconds, kSecondsPerDay);
  const int64_t second_of_day = seconds - days * kSecondsPerDay;
  const CivilDate date = CivilFromDays(days);
  char buffer[64];
  int length = std::snprintf(
      buffer, sizeof(buffer), "%04lld-%02d-%02dT%02d:%02d:%02d", static_cast<long long>(date.year),
      date.month, date.day, static_cast<int>(second_of_day / 3600),
      static_cast<int>(second_of_day / 60 % 60), static_cast<int>(second_of_day % 60));
  if (fraction != 0) {
    if (fraction % 1'000'000 == 0) {
      length += std::snprintf(buffer + length, sizeof(buffer) - length, ".%03lld",
                              static_cast<long long>(fraction / 1'000'000));
    } else if (fraction % 1'000 == 0) {
      length += std::snprintf(buffer + length, sizeof(buffer) - length, ".%06lld",
                              static_cast<long long>(fraction / 1'000));
    } else {
      length += std::snprintf(buffer + length, sizeof(buffer) - length, ".%09lld",
                              static_cast<long long>(fraction));
    }
  }
  return std::string(buffer, length) + "Z";
}

// --- cron ---

Result<CronSchedule> CronSchedule::Parse(std::string_view text) {
  const std::string_view trimmed = TrimBlanks(text);
  const std::string prefix = "invalid cron expression '" + std::string(trimmed) + "': ";
  if (trimmed.empty()) return Status::Invalid("empty cron expression");
  std::string_view expression = trimmed;
  if (trimmed.front() == '@') {
    const std::string lower = Lower(trimmed);
    const Macro* found = nullptr;
    for (const Macro& macro : kMacros) {
      if (lower == macro.name) found = &macro;
    }
    if (found == nullptr) {
      return Status::Invalid(prefix +
                             "unknown macro (use @yearly, @annually, @monthly, @weekly, @daily, "
                             "@midnight or @hourly)");
    }
    expression = found->expansion;
  }
  std::vector<std::string_view> fields;
  size_t at = 0;
  while (at < expression.size()) {
    while (at < expression.size() && IsBlank(expression[at])) ++at;
    const size_t start = at;
    while (at < expression.size() && !IsBlank(expression[at])) ++at;
    if (at > start) fields.push_back(expression.substr(start, at - start));
  }
  if (fields.size() != 5) {
    return Status::Invalid(prefix +
                           "expected 5 fields (minute hour day-of-month month day-of-week), got " +
                           std::to_string(fields.size()));
  }
  uint64_t bits[5] = {};
  for (size_t i = 0; i < 5; ++i) {
    if (Status s = ParseField(kFields[i], fields[i], &bits[i]); !s.ok()) {
      return Status::Invalid(prefix + s.message());
    }
  }
  CronSchedule schedule;
  schedule.text_ = std::string(trimmed);
  schedule.minutes_ = bits[0];
  schedule.hours_ = static_cast<uint32_t>(bits[1]);
  schedule.days_ = static_cast<uint32_t>(bits[2]);
  schedule.months_ = static_cast<uint16_t>(bits[3]);
  schedule.weekdays_ = static_cast<uint8_t>((bits[4] | (bits[4] >> 7)) & 0x7f);  // 7 -> Sunday
  schedule.day_of_month_star_ = fields[2].front() == '*';
  schedule.day_of_week_star_ = fields[4].front() == '*';
  return schedule;
}

bool CronSchedule::DayMatches(int day_of_month, int month, int day_of_week) const {
  if ((months_ >> month & 1) == 0) return false;
  const bool dom = (days_ >> day_of_month & 1) != 0;
  const bool dow = (weekdays_ >> day_of_week & 1) != 0;
  if (day_of_month_star_ || day_of_week_star_) return dom && dow;
  return dom || dow;
}

std::optional<int64_t> CronSchedule::NextAfter(int64_t after_nanos) const {
  const int64_t first_minute = FloorDiv(after_nanos, kNanosPerMinute) + 1;
  int64_t day = FloorDiv(first_minute, kMinutesPerDay);
  const int64_t last_day = day + kSearchDays;
  int from_hour = static_cast<int>((first_minute - day * kMinutesPerDay) / 60);
  int from_minute = static_cast<int>((first_minute - day * kMinutesPerDay) % 60);
  while (day <= last_day) {
    const CivilDate date = CivilFromDays(day);
    if ((months_ >> date.month & 1) == 0) {
      // Skip to the first of the next month.
      day += DaysInMonth(date.year, date.month) - date.day + 1;
      from_hour = from_minute = 0;
      continue;
    }
    if (DayMatches(date.day, date.month, WeekdayFromDays(day))) {
      int hour = NextBit(hours_, from_hour);
      int minute = hour == from_hour ? NextBit(minutes_, from_minute) : NextBit(minutes_, 0);
      if (hour >= 0 && minute < 0) {
        hour = NextBit(hours_, hour + 1);
        minute = NextBit(minutes_, 0);
      }
      if (hour >= 0 && minute >= 0) {
        const int64_t minutes = day * kMinutesPerDay + hour * 60 + minute;
        int64_t nanos = 0;
        if (__builtin_mul_overflow(minutes, kNanosPerMinute, &nanos)) return std::nullopt;
        return nanos;
      }
    }
    ++day;
    from_hour = from_minute = 0;
  }
  return std::nullopt;
}

// --- retry backoff ---

int64_t BackoffNanos(const RetryPolicy& policy, uint32_t failed_attempts, uint64_t jitter_seed) {
  constexpr double kFloor = 1e6;  // 1 ms
  // 2^63 as a double; anything at or above it does not fit in int64_t.
  constexpr double kInt64Limit = 9223372036854775808.0;
  const double max_backoff = std::max(static_cast<double>(policy.max_backoff_nanos), kFloor);
  const double initial = std::max(static_cast<double>(policy.initial_backoff_nanos), 0.0);
  const double multiplier = policy.multiplier >= 1.0 ? policy.multiplier : 1.0;  // NaN too
  // The base reaches any int64 value within 64 / log2(1.0...) steps for multipliers that matter;
  // capping the exponent keeps pow finite or a clean infinity, never UB.
  const uint32_t exponent =
      std::min<uint32_t>(failed_attempts == 0 ? 0 : failed_attempts - 1, 2'000);
  double base = initial == 0.0 ? 0.0 : initial * std::pow(multiplier, exponent);
  if (!(base < max_backoff)) base = max_backoff;  // also catches inf and NaN
  const double uniform = static_cast<double>(SplitMix64(jitter_seed) >> 11) * 0x1.0p-53;  // [0,1)
  double delay = base * (0.8 + 0.4 * uniform);
  delay = std::min(delay, max_backoff * 1.2);
  delay = std::max(std::floor(delay), kFloor);
  if (delay >= kInt64Limit) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(delay);
}

Status CheckRetryPolicy(const RetryPolicy& policy) {
  auto seconds = [](int64_t nanos) {
    return std::to_string(static_cast<double>(nanos) / 1e9) + " s";
  };
  if (policy.max_attempts < 1 || policy.max_attempts > 100) {
    return Status::Invalid("retry.max_attempts must be 1 to 100, got " +
                           std::to_string(policy.max_attempts));
  }
  if (policy.initial_backoff_nanos < 1'000'000) {
    return Status::Invalid("retry.initial_backoff must be at least 1 ms, got " +
                           seconds(policy.initial_backoff_nanos));
  }
  if (policy.max_backoff_nanos > 86'400 * kNanosPerSecond) {
    return Status::Invalid("retry.max_backoff must be at most 1 day, got " +
                           seconds(policy.max_backoff_nanos));
  }
  if (policy.max_backoff_nanos < policy.initial_backoff_nanos) {
    return Status::Invalid("retry.max_backoff (" + seconds(policy.max_backoff_nanos) +
                           ") must not be below retry.initial_backoff (" +
                           seconds(policy.initial_backoff_nanos) + ")");
  }
  if (!(policy.multiplier >= 1.0 && policy.multiplier <= 10.0)) {
    return Status::Invalid("retry.multiplier must be 1 to 10, got " +
                           std::to_string(policy.multiplier));
  }
  return Status::Ok();
}

}  // namespace synod
