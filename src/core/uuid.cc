#include "core/uuid.h"

#include "core/cow_map.h"

namespace synod {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<Uuid> Uuid::Parse(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  Uuid id;
  int digits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      continue;
    }
    const int value = HexValue(text[i]);
    if (value < 0) return std::nullopt;
    uint64_t& half = digits < 16 ? id.high : id.low;
    half = half << 4 | static_cast<uint64_t>(value);
    ++digits;
  }
  return id;
}

Uuid Uuid::Random(std::mt19937_64& random) {
  Uuid id{random(), random()};
  id.high = (id.high & ~0xF000ull) | 0x4000ull;                // version 4
  id.low = (id.low & ~(0xC000ull << 48)) | (0x8000ull << 48);  // variant 1
  return id;
}

std::string Uuid::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text(36, '-');
  size_t at = 0;
  for (int digit = 0; digit < 32; ++digit) {
    if (at == 8 || at == 13 || at == 18 || at == 23) ++at;
    const uint64_t half = digit < 16 ? high : low;
    text[at++] = kHex[(half >> (60 - 4 * (digit % 16))) & 0xF];
  }
  return text;
}

uint64_t StableHash(const Uuid& id) { return StableHash(id.high ^ StableHash(id.low)); }

}  // namespace synod
