#include "filesync/local_table.h"

#include "filesync/sync_path.h"

namespace synod {

const wire::LocalFileRecord* LocalTable::Find(const std::string& path) const {
  auto it = records_.find(path);
  return it == records_.end() ? nullptr : &it->second;
}

void LocalTable::Put(wire::LocalFileRecord record) {
  auto it = records_.find(record.path());
  if (it != records_.end()) {
    UnindexBlocks(it->second);
    it->second = std::move(record);
  } else {
    it = records_.emplace(record.path(), std::move(record)).first;
  }
  IndexBlocks(it->second);
}

void LocalTable::Erase(const std::string& path) {
  auto it = records_.find(path);
  if (it == records_.end()) return;
  UnindexBlocks(it->second);
  records_.erase(it);
}

void LocalTable::ForgetSyncedState() {
  for (auto& [path, record] : records_) {
    record.clear_synced_version();
    record.clear_synced_present();
    record.clear_synced_key();
  }
}

std::optional<LocalTable::BlockSource> LocalTable::FindBlock(const std::string& hash) const {
  auto it = blocks_.find(hash);
  if (it == blocks_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> LocalTable::PathsUnder(const std::string& prefix) const {
  std::vector<std::string> paths;
  for (auto it = records_.lower_bound(prefix); it != records_.end(); ++it) {
    const std::string& path = it->first;
    if (path.compare(0, prefix.size(), prefix) != 0) break;
    if (prefix.empty() || path.size() == prefix.size() || path[prefix.size()] == '/') {
      paths.push_back(path);
    }
  }
  return paths;
}

void LocalTable::IndexBlocks(const wire::LocalFileRecord& record) {
  if (!record.present() || record.kind() != wire::KIND_FILE) return;
  for (int i = 0; i < record.blocks_size(); ++i) {
    blocks_.try_emplace(record.blocks(i), BlockSource{record.path(), static_cast<uint32_t>(i)});
  }
}

void LocalTable::UnindexBlocks(const wire::LocalFileRecord& record) {
  if (!record.present() || record.kind() != wire::KIND_FILE) return;
  for (const std::string& block : record.blocks()) {
    auto it = blocks_.find(block);
    if (it != blocks_.end() && it->second.path == record.path()) blocks_.erase(it);
  }
}

std::string LocalTable::Serialize(const std::string& cluster_id) const {
  wire::LocalFileTable table;
  table.set_cluster_id(cluster_id);
  table.mutable_records()->Reserve(static_cast<int>(records_.size()));
  for (const auto& [path, record] : records_) *table.add_records() = record;
  return table.SerializeAsString();
}

Status LocalTable::Load(std::string_view bytes, std::string* cluster_id) {
  wire::LocalFileTable table;
  if (!table.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Invalid("undecodable");
  }
  records_.clear();
  blocks_.clear();
  for (wire::LocalFileRecord& record : *table.mutable_records()) {
    if (Status bad = CheckSyncPath(record.path()); !bad.ok()) {
      records_.clear();
      blocks_.clear();
      return bad;
    }
    Put(std::move(record));
  }
  *cluster_id = table.cluster_id();
  return Status::Ok();
}

}  // namespace synod
