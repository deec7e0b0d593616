// FileIndex: the "files" state module, the replicated index of the synced folder.
//
// Per path it holds the last committed state (wire::FileEntry): kind, content hash and block
// list, mode, mtime, or a tombstone, with the log index that committed it as its version. Only
// this metadata goes through Raft; nodes fetch the data from each other.
//
// Conflicts are decided here, by log order, identically on every node. An announcement names
// the version it was based on; when the path has moved on since (another node changed it):
// - new content wins over the current content (it was committed later), and the current
//   content, if a file, is kept as a conflict copy "NAME.sync-conflict-<date>-<time>-<node>.EXT"
//   (the node that wrote it, the time of this entry): nothing is lost;
// - a delete never wins over a write it did not see: it is refused (kConflict), and the
//   deleting node fetches the file back;
// - the current version came from the announcing node itself: not a conflict (its later
//   announcement is a later state of its own disk, whatever base it names);
// - content equal to the current one changes nothing (two nodes that made the same change, or a
//   joining node that holds the same file) and answers the current version.
// Tombstones are kept for a retention the leader chooses, then purged (version 2 of the module):
// the index remembers how far it purged, so that a node that missed a delete, finding the path
// gone, removes its copy instead of announcing it again (Decide).
//
// Pure and deterministic; loop thread only. Entries are immutable once stored (shared_ptr), so
// a snapshot copies pointers, not block lists.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "consensus/state_module.h"
#include "core/cow_map.h"
#include "proto/filesync.pb.h"

namespace synod {

// Files are split into blocks of this size for hashing and transfer.
inline constexpr uint64_t kFileBlockSize = 128 * 1024;
inline constexpr size_t kHashBytes = 32;  // SHA-256

// What makes two states of a path the same for syncing: kind, content (hash or link target)
// and permission bits; not mtime. Empty for "absent".
std::string ContentKey(const wire::FileEntry& entry);
std::string ContentKey(const wire::LocalFileRecord& record);  // of what is on disk
// The first problem with an announced entry (hostile input), naming the field.
Status CheckFileEntry(const wire::FileEntry& entry);

class FileIndex final : public StateModule {
 public:
  static constexpr std::string_view kName = "files";
  using EntryPtr = std::shared_ptr<const wire::FileEntry>;

  struct Listener {
    std::function<void(const std::string& path)> on_change;  // after each applied change
    std::function<void()> on_reset;                          // after a snapshot is installed
    // Two writes of `path` were concurrent: the earlier is kept as `copy_path`.
    std::function<void(const std::string& path, const std::string& copy_path, int64_t at_nanos)>
        on_conflict;
  };

  // `entry.version` and `committed_at_nanos` are set when applied.
  static Proposal Announce(const wire::FileEntry& entry, uint64_t base_version);
  // Drops the tombstones committed before `deleted_before_nanos` (the leader's clock).
  static Proposal Purge(int64_t deleted_before_nanos);

  void SetListener(Listener listener) { listener_ = std::move(listener); }
  const wire::FileEntry* Find(const std::string& path) const;
  // Live (not deleted) paths whose file content has this hash.
  std::vector<std::string> PathsWithHash(const std::string& hash) const;
  // Every entry, tombstones included, in no particular order.
  template <typename F>
  void ForEach(F visit) const {
    entries_.ForEach([&](const std::string&, const EntryPtr& entry) { visit(*entry); });
  }
  size_t size() const { return entries_.size(); }
  size_t live() const { return live_; }
  uint64_t conflicts() const { return conflicts_; }
  // The log index of the last command this module applied (0 after a restore).
  uint64_t applied_through() const { return applied_through_; }
  size_t tombstones() const { return tombstones_.size(); }
  // When the oldest tombstone was committed, if there is one.
  std::optional<int64_t> OldestTombstoneNanos() const;
  // The newest version of a tombstone purged so far (0: none): a path synced at this version
  // or an older one that the index no longer holds was deleted and its tombstone purged.
  uint64_t purged_through() const { return purged_through_; }

  // StateModule.
  std::string_view name() const override { return kName; }
  uint32_t version() const override { return 2; }
  // Version 2 (a header with purged_through) once something was purged; version 1 until then.
  uint32_t section_version() const override { return purged_through_ > 0 ? 2 : 1; }
  Result<std::string> Apply(const ApplyContext& context, uint32_t version,
                            std::string_view command) override;
  std::unique_ptr<SectionCapture> Capture() const override;
  std::unique_ptr<SectionLoader> NewLoader(uint32_t version) override;

 private:
  using Map = CowMap<std::string, EntryPtr>;
  Result<wire::FileAnnounceResult> ApplyAnnounce(const ApplyContext& context,
                                                 wire::FileAnnounce& announce);
  void ApplyPurge(const wire::FilePurge& purge);
  void Store(EntryPtr entry);
  void Reindex();

  Map entries_;
  size_t live_ = 0;
  uint64_t applied_through_ = 0;
  uint64_t conflicts_ = 0;  // conflict copies made by the entries this process applied
  uint64_t purged_through_ = 0;
  std::set<std::pair<int64_t, std::string>> tombstones_;       // (committed at, path), oldest first
  std::unordered_multimap<std::string, std::string> by_hash_;  // live files only
  Listener listener_;
};

}  // namespace synod
