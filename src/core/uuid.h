// Uuid: a 128-bit identifier in its canonical text form "8-4-4-4-12" lower-case hex digits.
//
// Used where ids are stored by the million (timers): 16 bytes in place of a 36-byte string.
// Value type; thread-compatible.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace synod {

struct Uuid {
  uint64_t high = 0;
  uint64_t low = 0;

  // The canonical 36-character form in any case; nothing else.
  static std::optional<Uuid> Parse(std::string_view text);
  // A random (version 4, variant 1) UUID.
  static Uuid Random(std::mt19937_64& random);
  std::string ToString() const;  // lower case

  auto operator<=>(const Uuid&) const = default;
};

// For CowMap: the same on every machine and build.
uint64_t StableHash(const Uuid& id);

}  // namespace synod
