// Parsing of human durations given on the command line: "1s", "250ms", "2m", "1.5s", "3" (s),
// and compound forms such as "1h30m", "2d3h" or "1m30s500ms".
#pragma once

#include <chrono>
#include <string_view>

#include "core/status.h"

namespace synod {

// Returns the duration in milliseconds, or an error naming what was wrong.
//
// The text is either a bare number of seconds ("3", "1.5") or one or more parts, each a number
// (digits with an optional fraction) followed by a unit: ms, s, m or min, h, d. Each unit may
// appear at most once and the units must go from the largest to the smallest ("1h30m", not
// "30m1h"); a number without a unit is accepted only as the whole text. The parts are summed and
// rounded to the nearest millisecond. Rejects empty, negative, repeated or out-of-order units,
// trailing junk, and totals above 1e12 ms (about 31 years).
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace synod
