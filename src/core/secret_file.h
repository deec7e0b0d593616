// CreateSecretFile: writes a new file that only its owner may read (keys, tokens). It is created
// with its final mode, so the secret is never readable by others even for a moment, and never
// over an existing file: an existing one is a kConflict error, so a key in use is never replaced.
// Errors name the file, never the content. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace synod {

Status CreateSecretFile(const std::string& path, std::string_view text);

}  // namespace synod
