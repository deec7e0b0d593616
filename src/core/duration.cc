#include "core/duration.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace synod {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string shown(text);
  if (text.empty()) return Status::Error("empty duration");
  size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  double number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + unit_at, number);
  if (ec != std::errc() || end != text.data() + unit_at || unit_at == 0) {
    return Status::Error("invalid duration '" + shown +
                         "': expected a number and a unit, e.g. 1s or 250ms");
  }
  const std::string_view unit = text.substr(unit_at);
  double millis_per_unit = 0;
  if (unit == "ms") {
    millis_per_unit = 1;
  } else if (unit.empty() || unit == "s") {
    millis_per_unit = 1000;
  } else if (unit == "m" || unit == "min") {
    millis_per_unit = 60'000;
  } else if (unit == "h") {
    millis_per_unit = 3'600'000;
  } else {
    return Status::Error("invalid duration '" + shown + "': unknown unit '" + std::string(unit) +
                         "' (use ms, s, m or h)");
  }
  const double millis = number * millis_per_unit;
  if (!std::isfinite(millis) || millis > 1e12) {
    return Status::Error("invalid duration '" + shown + "': too large");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(millis)));
}

}  // namespace synod
