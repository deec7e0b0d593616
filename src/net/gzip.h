// Gzip (RFC 1952) with zlib, for HTTP answers worth compressing.
#pragma once

#include <string>
#include <string_view>

namespace synod {

// The gzip member holding `data`; `level` 1 (fast) to 9 (small).
std::string GzipCompress(std::string_view data, int level = 5);

}  // namespace synod
