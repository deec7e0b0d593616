// Parsing of human durations given on the command line: "1s", "250ms", "2m", "1.5s", "3" (s).
#pragma once

#include <chrono>
#include <string_view>

#include "core/status.h"

namespace synod {

// Returns the duration in milliseconds, or an error naming what was wrong. Rejects negative,
// empty, overflowing and unit-less garbage input.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace synod
