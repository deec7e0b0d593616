// LocalTable: what one node knows of its own folder, per path: what its disk held when it last
// looked (kind, size, mode, mtime, inode, content hash and block hashes) and which index version
// that matched when it was last in sync. It is how a node tells its own changes (the disk moved
// away from the synced state) from other nodes' (the index moved away), also across restarts:
// it is saved in the data directory.
//
// It also answers where a block can be read locally (any file that holds it), so that fetching
// a file reuses what the node already has. Pure; loop thread only.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "proto/filesync.pb.h"

namespace synod {

class LocalTable {
 public:
  struct BlockSource {
    std::string path;
    uint32_t index = 0;
  };

  const wire::LocalFileRecord* Find(const std::string& path) const;
  // Replaces the record of `record.path()`.
  void Put(wire::LocalFileRecord record);
  void Erase(const std::string& path);
  // A local file that held this block when it was last hashed (the caller verifies it).
  std::optional<BlockSource> FindBlock(const std::string& hash) const;
  // Paths equal to `prefix` or below it (prefix "a" gives "a", "a/b", not "ab"); every path for
  // the folder itself ("").
  std::vector<std::string> PathsUnder(const std::string& prefix) const;
  const std::map<std::string, wire::LocalFileRecord>& records() const { return records_; }
  // Every record as if its path had never been synced, its disk facts kept: for a table another
  // cluster wrote, whose versions mean nothing in this one. Its files are then offered as a
  // joining node's are (kept, and concurrent with whatever the index holds), never removed or
  // overwritten as "synced and changed since".
  void ForgetSyncedState();

  std::string Serialize(const std::string& cluster_id) const;
  // Replaces the content; an error names what is wrong (the caller then starts empty).
  Status Load(std::string_view bytes, std::string* cluster_id);

 private:
  void IndexBlocks(const wire::LocalFileRecord& record);
  void UnindexBlocks(const wire::LocalFileRecord& record);

  std::map<std::string, wire::LocalFileRecord> records_;
  std::unordered_map<std::string, BlockSource> blocks_;
};

}  // namespace synod
