#include "discovery/timestamp_codec.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace synod {
namespace {

constexpr double kEarliest = 946684800.0;  // 2000-01-01
constexpr double kLatest = 4102444800.0;   // 2100-01-01

bool Plausible(double seconds) {
  return std::isfinite(seconds) && seconds >= kEarliest && seconds <= kLatest;
}

template <typename Word>
Word ReadBigEndian(std::string_view bytes) {
  Word word = 0;
  for (size_t i = 0; i < sizeof(Word); ++i) word = (word << 8) | static_cast<uint8_t>(bytes[i]);
  return word;
}

template <typename Word>
Word ReadLittleEndian(std::string_view bytes) {
  Word word = 0;
  for (size_t i = sizeof(Word); i-- > 0;) word = (word << 8) | static_cast<uint8_t>(bytes[i]);
  return word;
}

// A count of seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude.
bool ScaleToSeconds(double value, double& seconds) {
  for (double scale : {1.0, 1e3, 1e6, 1e9}) {
    if (Plausible(value / scale)) {
      seconds = value / scale;
      return true;
    }
  }
  return false;
}

bool DecodeText(std::string_view bytes, double& seconds) {
  size_t begin = 0, end = bytes.size();
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0';
  };
  while (begin < end && is_space(bytes[begin])) ++begin;
  while (end > begin && is_space(bytes[end - 1])) --end;
  if (begin == end) return false;
  double value = 0;
  auto [stop, ec] = std::from_chars(bytes.data() + begin, bytes.data() + end, value);
  return ec == std::errc() && stop == bytes.data() + end && ScaleToSeconds(value, seconds);
}

}  // namespace

std::string EncodeTimestamp(double utc_seconds) {
  const auto bits = std::bit_cast<uint64_t>(utc_seconds);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xff);
  return out;
}

Result<double> DecodeTimestamp(std::string_view bytes) {
  double seconds = 0;
  if (bytes.size() == 8) {
    for (uint64_t bits : {ReadBigEndian<uint64_t>(bytes), ReadLittleEndian<uint64_t>(bytes)}) {
      if (double value = std::bit_cast<double>(bits); Plausible(value)) return value;
    }
    if (ScaleToSeconds(static_cast<double>(ReadBigEndian<uint64_t>(bytes)), seconds))
      return seconds;
  } else if (bytes.size() == 4) {
    for (uint32_t bits : {ReadBigEndian<uint32_t>(bytes), ReadLittleEndian<uint32_t>(bytes)}) {
      if (float value = std::bit_cast<float>(bits); Plausible(value))
        return static_cast<double>(value);
    }
  }
  if (DecodeText(bytes, seconds)) return seconds;
  if (bytes.empty()) return Status::Error("peer closed the connection without sending a timestamp");
  return Status::Error("undecodable timestamp of " + std::to_string(bytes.size()) +
                       " bytes (expected an 8-byte double, 4-byte float or decimal text)");
}

}  // namespace synod
