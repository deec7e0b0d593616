// Base64 (RFC 4648, with padding), for keys and secrets kept in text files. Decode treats its input
// as hostile: anything but canonical padded base64 is an error. Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace synod {

std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

}  // namespace synod
