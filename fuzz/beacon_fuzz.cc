// Any datagram: ParseBeacon must answer with a beacon or an error, and a beacon it accepts must
// survive a format/parse round trip.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "discovery/beacon.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = synod::ParseBeacon(input);
  if (parsed.ok()) {
    auto again = synod::ParseBeacon(synod::FormatBeacon(parsed.value()));
    if (!again.ok() || again.value().node_id != parsed.value().node_id ||
        again.value().tcp_port != parsed.value().tcp_port) {
      std::abort();
    }
  }
  return 0;
}
