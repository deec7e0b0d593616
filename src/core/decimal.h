// ParseDecimal: an unsigned decimal number that is the whole text, or nothing. For numbers that
// come from elsewhere (another node, a request): no exception, no partial parse, no sign.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace synod {

inline std::optional<uint64_t> ParseDecimal(std::string_view text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

}  // namespace synod
