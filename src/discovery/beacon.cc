#include "discovery/beacon.h"

#include <charconv>
#include <vector>

namespace synod {

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<uint8_t>(text[i]);
    size_t extra = 0;
    uint32_t code = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      extra = 1;
      code = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      extra = 2;
      code = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      extra = 3;
      code = lead & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinForLength[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

Result<Beacon> ParseBeacon(std::string_view datagram) {
  if (datagram.size() > kMaxBeaconBytes) {
    return Status::Error("oversized beacon (" + std::to_string(datagram.size()) + " bytes, limit " +
                         std::to_string(kMaxBeaconBytes) + ")");
  }
  if (!IsValidUtf8(datagram)) return Status::Error("beacon is not valid UTF-8");
  std::vector<std::string_view> tokens;
  size_t at = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (at < datagram.size()) {
    while (at < datagram.size() && is_space(datagram[at])) ++at;
    size_t end = at;
    while (end < datagram.size() && !is_space(datagram[end])) ++end;
    if (end > at) tokens.push_back(datagram.substr(at, end - at));
    at = end;
  }
  if (tokens.size() != 3) {
    return Status::Error("beacon has " + std::to_string(tokens.size()) +
                         " tokens, expected 3 (<NODE_UUID> ON <TCP_PORT>)");
  }
  if (tokens[1] != "ON" && tokens[1] != "on") {
    return Status::Error("beacon's second token is '" + std::string(tokens[1]) + "', expected ON");
  }
  const std::string_view id = tokens[0];
  if (id.size() > kMaxNodeIdBytes) return Status::Error("beacon node id is longer than 64 bytes");
  for (char c : id) {
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7F) {
      return Status::Error("beacon node id contains a control character");
    }
  }
  const std::string_view port_text = tokens[2];
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size()) {
    return Status::Error("beacon port '" + std::string(port_text) + "' is not a number");
  }
  if (port == 0 || port > 65535) {
    return Status::Error("beacon port " + std::string(port_text) + " is out of range 1-65535");
  }
  return Beacon{std::string(id), static_cast<uint16_t>(port)};
}

std::string FormatBeacon(const Beacon& beacon) {
  return beacon.node_id + " ON " + std::to_string(beacon.tcp_port);
}

}  // namespace synod
