// Any bytes from a timestamp server: DecodeTimestamp returns a plausible time or an error.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "discovery/timestamp_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto decoded =
      synod::DecodeTimestamp(std::string_view(reinterpret_cast<const char*>(data), size));
  if (decoded.ok() && !(std::isfinite(decoded.value()) && decoded.value() > 9e8)) std::abort();
  return 0;
}
