// The SDSS timestamp exchanged over TCP: UTC seconds since the Unix epoch.
//
// Synod sends an 8-byte big-endian IEEE-754 double. It accepts, from implementations written by
// others: an 8-byte double (big-endian, or little-endian when big-endian gives an implausible
// time), an 8-byte big-endian integer count of s/ms/us/ns, a 4-byte float (big- then
// little-endian), and ASCII decimal text (seconds, or ms/us/ns by magnitude). "Plausible" means
// a time between 2000-01-01 and 2100-01-01.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace synod {

std::string EncodeTimestamp(double utc_seconds);
Result<double> DecodeTimestamp(std::string_view bytes);

}  // namespace synod
