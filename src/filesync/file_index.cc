#include "filesync/file_index.h"

#include <algorithm>

#include "filesync/sync_path.h"

namespace synod {
namespace {

constexpr uint32_t kModeBits = 07777;
constexpr size_t kMaxTargetBytes = 4096;
constexpr size_t kMaxNameBytes = 255;
// 1 TiB in 128 KiB blocks: an entry stays far below the peer frame limit (8M hashes would not).
constexpr uint64_t kMaxFileBytes = uint64_t{1} << 40;

std::string Key(wire::FileKind kind, const std::string& content, uint32_t mode) {
  std::string key;
  key.reserve(content.size() + 8);
  key.push_back(static_cast<char>('0' + kind));
  key.append(std::to_string(kind == wire::KIND_SYMLINK ? 0 : (mode & kModeBits)));
  key.push_back(':');
  key.append(content);
  return key;
}

}  // namespace

std::string ContentKey(const wire::FileEntry& entry) {
  if (entry.deleted()) return "";
  return Key(entry.kind(), entry.kind() == wire::KIND_SYMLINK ? entry.target() : entry.hash(),
             entry.mode());
}

std::string ContentKey(const wire::LocalFileRecord& record) {
  if (!record.present()) return "";
  return Key(record.kind(), record.kind() == wire::KIND_SYMLINK ? record.target() : record.hash(),
             record.mode());
}

Status CheckFileEntry(const wire::FileEntry& entry) {
  if (Status bad = CheckSyncPath(entry.path()); !bad.ok()) return bad;
  if (IsSynodInternal(entry.path())) {
    return Status::Invalid("path \"" + entry.path() + "\" is reserved for Synod's own files");
  }
  if (entry.origin().empty() || entry.origin().size() > 64 ||
      entry.origin_name().size() > kMaxNameBytes) {
    return Status::Invalid("origin: a node id of 1-64 bytes and a name of at most 255");
  }
  if (entry.deleted()) return Status::Ok();
  if (entry.mode() > kModeBits) return Status::Invalid("mode: only permission bits (07777)");
  switch (entry.kind()) {
    case wire::KIND_FILE: {
      if (entry.size() > kMaxFileBytes) return Status::Invalid("size: over 1 TiB");
      if (entry.hash().size() != kHashBytes) return Status::Invalid("hash: not a SHA-256");
      const uint64_t blocks = (entry.size() + kFileBlockSize - 1) / kFileBlockSize;
      if (static_cast<uint64_t>(entry.blocks_size()) != blocks) {
        return Status::Invalid("blocks: " + std::to_string(entry.blocks_size()) +
                               " for a size of " + std::to_string(entry.size()) + " bytes (" +
                               std::to_string(blocks) + " expected)");
      }
      for (const std::string& block : entry.blocks()) {
        if (block.size() != kHashBytes) return Status::Invalid("blocks: not SHA-256 hashes");
      }
      if (!entry.target().empty()) return Status::Invalid("target: only for symlinks");
      return Status::Ok();
    }
    case wire::KIND_DIRECTORY:
      if (entry.size() != 0 || !entry.hash().empty() || entry.blocks_size() != 0 ||
          !entry.target().empty()) {
        return Status::Invalid("a directory has no size, hash, blocks or target");
      }
      return Status::Ok();
    case wire::KIND_SYMLINK:
      if (entry.target().empty() || entry.target().size() > kMaxTargetBytes ||
          entry.target().find('\0') != std::string::npos) {
        return Status::Invalid("target: 1-4096 bytes without NUL");
      }
      if (!entry.hash().empty() || entry.blocks_size() != 0) {
        return Status::Invalid("a symlink has no hash or blocks");
      }
      return Status::Ok();
    default:
      return Status::Invalid("kind: unknown (" + std::to_string(entry.kind()) + ")");
  }
}

Proposal FileIndex::Announce(const wire::FileEntry& entry, uint64_t base_version) {
  wire::FileCommand command;
  *command.mutable_announce()->mutable_entry() = entry;
  command.mutable_announce()->set_base_version(base_version);
  return MakeProposal(kName, command);
}

Proposal FileIndex::Purge(int64_t deleted_before_nanos) {
  wire::FileCommand command;
  command.mutable_purge()->set_deleted_before_nanos(deleted_before_nanos);
  return MakeProposal(kName, command, /*version=*/2);
}

std::optional<int64_t> FileIndex::OldestTombstoneNanos() const {
  if (tombstones_.empty()) return std::nullopt;
  return tombstones_.begin()->first;
}

const wire::FileEntry* FileIndex::Find(const std::string& path) const {
  const EntryPtr* entry = entries_.Find(path);
  return entry == nullptr ? nullptr : entry->get();
}

std::vector<std::string> FileIndex::PathsWithHash(const std::string& hash) const {
  std::vector<std::string> paths;
  auto [begin, end] = by_hash_.equal_range(hash);
  for (auto it = begin; it != end; ++it) paths.push_back(it->second);
  return paths;
}

Result<std::string> FileIndex::Apply(const ApplyContext& context, uint32_t version,
                                     std::string_view bytes) {
  applied_through_ = context.index;
  wire::FileCommand command;
  if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Invalid("files: undecodable command");
  }
  if (command.body_case() == wire::FileCommand::kPurge && version >= 2) {
    ApplyPurge(command.purge());
    return std::string();
  }
  if (command.body_case() != wire::FileCommand::kAnnounce) {
    return Status::Invalid("files: unknown command kind");
  }
  Result<wire::FileAnnounceResult> result = ApplyAnnounce(context, *command.mutable_announce());
  if (!result.ok()) return result.status();
  return result.value().SerializeAsString();
}

Result<wire::FileAnnounceResult> FileIndex::ApplyAnnounce(const ApplyContext& context,
                                                          wire::FileAnnounce& announce) {
  wire::FileEntry& entry = *announce.mutable_entry();
  if (Status bad = CheckFileEntry(entry); !bad.ok()) return bad;
  if (entry.deleted()) {
    entry.clear_kind();
    entry.clear_size();
    entry.clear_mode();
    entry.clear_hash();
    entry.clear_blocks();
    entry.clear_target();
  }
  wire::FileAnnounceResult result;
  const wire::FileEntry* current = Find(entry.path());
  const bool current_live = current != nullptr && !current->deleted();
  if (current == nullptr ? entry.deleted() : ContentKey(*current) == ContentKey(entry)) {
    result.set_version(current == nullptr ? 0 : current->version());
    return result;
  }
  // A node's own announcements are successive states of its disk: one based on an older version
  // than the node's own current one (it did not learn that one committed) replaces it.
  const bool concurrent = current != nullptr && current->version() != announce.base_version() &&
                          current->origin() != entry.origin();
  if (concurrent && current_live && entry.deleted()) {
    return Status::Conflict("\"" + entry.path() + "\" was changed (version " +
                            std::to_string(current->version()) +
                            ") after the version this delete was based on (" +
                            std::to_string(announce.base_version()) + ")");
  }
  entry.set_version(context.index);
  entry.set_committed_at_nanos(context.at_nanos);
  if (concurrent && current_live && current->kind() == wire::KIND_FILE) {
    // Both versions are kept: the earlier one under a name no node uses yet.
    std::string copy_path;
    for (int attempt = 1;; ++attempt) {
      const std::string node = attempt == 1
                                   ? current->origin_name()
                                   : current->origin_name() + "-" + std::to_string(attempt);
      copy_path = ConflictPath(current->path(), context.at_nanos, node);
      const wire::FileEntry* taken = Find(copy_path);
      if (taken == nullptr || taken->deleted()) break;
    }
    auto copy = std::make_shared<wire::FileEntry>(*current);
    copy->set_path(copy_path);
    copy->set_version(context.index);
    copy->set_committed_at_nanos(context.at_nanos);
    Store(std::move(copy));
    ++conflicts_;
    result.set_conflict_path(copy_path);
    if (listener_.on_conflict) listener_.on_conflict(current->path(), copy_path, context.at_nanos);
  }
  result.set_version(context.index);
  Store(std::make_shared<wire::FileEntry>(std::move(entry)));
  return result;
}

void FileIndex::ApplyPurge(const wire::FilePurge& purge) {
  std::vector<std::string> purged;
  for (const auto& [committed_at, path] : tombstones_) {
    if (committed_at >= purge.deleted_before_nanos()) break;
    purged.push_back(path);
  }
  for (const std::string& path : purged) {
    const EntryPtr tombstone = *entries_.Find(path);
    purged_through_ = std::max(purged_through_, tombstone->version());
    tombstones_.erase({tombstone->committed_at_nanos(), path});
    entries_.Erase(path);
    if (listener_.on_change) listener_.on_change(path);
  }
}

void FileIndex::Store(EntryPtr entry) {
  const std::string path = entry->path();
  if (const wire::FileEntry* old = Find(path)) {
    if (old->deleted()) tombstones_.erase({old->committed_at_nanos(), path});
    if (!old->deleted()) --live_;
    if (old->kind() == wire::KIND_FILE && !old->deleted()) {
      auto [begin, end] = by_hash_.equal_range(old->hash());
      for (auto it = begin; it != end; ++it) {
        if (it->second == path) {
          by_hash_.erase(it);
          break;
        }
      }
    }
  }
  if (!entry->deleted()) ++live_;
  if (entry->deleted()) tombstones_.emplace(entry->committed_at_nanos(), path);
  if (entry->kind() == wire::KIND_FILE && !entry->deleted()) by_hash_.emplace(entry->hash(), path);
  entries_.Put(path, std::move(entry));
  if (listener_.on_change) listener_.on_change(path);
}

void FileIndex::Reindex() {
  live_ = 0;
  by_hash_.clear();
  tombstones_.clear();
  entries_.ForEach([this](const std::string& path, const EntryPtr& entry) {
    if (entry->deleted()) {
      tombstones_.emplace(entry->committed_at_nanos(), path);
      return;
    }
    ++live_;
    if (entry->kind() == wire::KIND_FILE) by_hash_.emplace(entry->hash(), path);
  });
}

std::unique_ptr<SectionCapture> FileIndex::Capture() const {
  auto entries = CaptureMap(entries_, [](const Map::Entry& entry, std::string& bytes) {
    bytes.clear();
    entry.second->SerializeToString(&bytes);
    return std::string_view(bytes);
  });
  if (section_version() < 2) return entries;
  // The header, then a record per path.
  class WithHeader final : public SectionCapture {
   public:
    WithHeader(std::string header, std::unique_ptr<SectionCapture> entries)
        : header_(std::move(header)), entries_(std::move(entries)) {}
    bool WriteSome(SectionSink& sink, size_t budget) override {
      if (!header_written_) {
        sink.Add(header_);
        header_written_ = true;
      }
      return entries_->WriteSome(sink, budget);
    }

   private:
    std::string header_;
    bool header_written_ = false;
    std::unique_ptr<SectionCapture> entries_;
  };
  wire::FileIndexHeader header;
  header.set_purged_through(purged_through_);
  return std::make_unique<WithHeader>(header.SerializeAsString(), std::move(entries));
}

std::unique_ptr<SectionLoader> FileIndex::NewLoader(uint32_t version) {
  class Loader final : public SectionLoader {
   public:
    // A version 1 section has no header.
    Loader(FileIndex& index, bool header_first) : index_(index), header_first_(header_first) {}
    Status Add(std::string_view bytes) override {
      if (header_first_) {
        header_first_ = false;
        wire::FileIndexHeader header;
        if (!header.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
          return Status::Invalid("files: undecodable header");
        }
        purged_through_ = header.purged_through();
        return Status::Ok();
      }
      auto entry = std::make_shared<wire::FileEntry>();
      if (!entry->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        return Status::Invalid("files: undecodable record");
      }
      if (Status bad = CheckFileEntry(*entry); !bad.ok()) {
        return Status::Invalid("files: " + bad.message());
      }
      std::string path = entry->path();
      if (!entries_.Put(std::move(path), std::move(entry))) {
        return Status::Invalid("files: a path twice");
      }
      return Status::Ok();
    }
    void Install() override {
      std::swap(index_.entries_, entries_);
      index_.applied_through_ = 0;
      index_.purged_through_ = purged_through_;
      index_.Reindex();
      if (index_.listener_.on_reset) index_.listener_.on_reset();
    }

   private:
    FileIndex& index_;
    bool header_first_;
    Map entries_;
    uint64_t purged_through_ = 0;
  };
  return std::make_unique<Loader>(*this, version >= 2);
}

}  // namespace synod
