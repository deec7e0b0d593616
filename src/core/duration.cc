#include "core/duration.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace synod {
namespace {

constexpr double kMaxMillis = 1e12;

struct Unit {
  std::string_view name;
  double millis;
  int rank;  // larger units have larger ranks; parts must have strictly decreasing ranks
};

constexpr Unit kUnits[] = {
    {"ms", 1, 0},       {"s", 1000, 1},      {"m", 60'000, 2},
    {"min", 60'000, 2}, {"h", 3'600'000, 3}, {"d", 86'400'000, 4},
};

const Unit* FindUnit(std::string_view name) {
  for (const Unit& unit : kUnits) {
    if (unit.name == name) return &unit;
  }
  return nullptr;
}

bool IsDigitOrDot(char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; }
bool IsAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)); }

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string shown(text);
  if (text.empty()) return Status::Error("empty duration");
  double total_millis = 0;
  int previous_rank = 1000;  // above every unit
  size_t at = 0;
  while (at < text.size()) {
    const size_t number_at = at;
    while (at < text.size() && IsDigitOrDot(text[at])) ++at;
    double number = 0;
    auto [end, ec] = std::from_chars(text.data() + number_at, text.data() + at, number);
    if (ec == std::errc::result_out_of_range) {
      return Status::Error("invalid duration '" + shown + "': too large");
    }
    if (ec != std::errc() || end != text.data() + at || at == number_at) {
      return Status::Error("invalid duration '" + shown +
                           "': expected a number and a unit, e.g. 1s or 250ms");
    }
    const size_t unit_at = at;
    while (at < text.size() && IsAlpha(text[at])) ++at;
    const std::string_view unit_name = text.substr(unit_at, at - unit_at);
    double millis_per_unit = 0;
    if (unit_name.empty()) {
      if (number_at != 0 || at != text.size()) {
        return Status::Error("invalid duration '" + shown + "': the number '" +
                             std::string(text.substr(number_at, unit_at - number_at)) +
                             "' needs a unit (a bare number is only allowed alone, as seconds)");
      }
      millis_per_unit = 1000;
    } else {
      const Unit* unit = FindUnit(unit_name);
      if (unit == nullptr) {
        return Status::Error("invalid duration '" + shown + "': unknown unit '" +
                             std::string(unit_name) + "' (use ms, s, m, h or d)");
      }
      if (unit->rank == previous_rank) {
        return Status::Error("invalid duration '" + shown + "': unit '" + std::string(unit_name) +
                             "' given twice");
      }
      if (unit->rank > previous_rank) {
        return Status::Error("invalid duration '" + shown + "': unit '" + std::string(unit_name) +
                             "' out of order (write the largest unit first, e.g. 1h30m)");
      }
      previous_rank = unit->rank;
      millis_per_unit = unit->millis;
    }
    total_millis += number * millis_per_unit;
    if (!std::isfinite(total_millis) || total_millis > kMaxMillis) {
      return Status::Error("invalid duration '" + shown + "': too large");
    }
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total_millis)));
}

}  // namespace synod
