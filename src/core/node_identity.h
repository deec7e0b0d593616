// NodeIdentity: the stable id of a node, created on first start and kept in its data directory.
//
// The id is 32 lowercase hex digits (128 random bits). Its first 8 characters are the node's
// SDSS NODE_UUID, the "8-character partial UUID" of the discovery protocol.
#pragma once

#include <string>

#include "core/status.h"

namespace synod {

struct NodeIdentity {
  std::string id;
  std::string ShortId() const { return id.substr(0, 8); }
};

// Creates `data_dir` if needed, checks that it is writable, then loads the id stored there or
// creates and durably stores a new one. Errors say which path failed and why.
Result<NodeIdentity> LoadOrCreateIdentity(const std::string& data_dir);

// 32 random lowercase hex digits (128 bits from the OS's entropy source).
std::string RandomHexId();

// Writes `contents` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
Status WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace synod
