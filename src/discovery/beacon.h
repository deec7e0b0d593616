// The SDSS broadcast beacon: "<NODE_UUID> ON <TCP_PORT>", UTF-8, single spaces, ON uppercase.
//
// ParseBeacon treats its input as hostile and is liberal where that is harmless: surrounding
// whitespace (a trailing newline), runs of spaces and a lower-case "on" are accepted. Everything
// else (wrong token count, a non-numeric or out-of-range port, an oversized datagram, invalid
// UTF-8, control characters in the id) is an error that says what was wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace synod {

inline constexpr size_t kMaxBeaconBytes = 512;
inline constexpr size_t kMaxNodeIdBytes = 64;

struct Beacon {
  std::string node_id;
  uint16_t tcp_port = 0;
};

Result<Beacon> ParseBeacon(std::string_view datagram);
std::string FormatBeacon(const Beacon& beacon);

bool IsValidUtf8(std::string_view text);

}  // namespace synod
