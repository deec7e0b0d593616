#include "filesync/sync_service.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "filesync/reconciler.h"
#include "filesync/sync_path.h"

namespace synod {
namespace {

constexpr auto kSettleDelay = std::chrono::milliseconds(2);
// Consecutive received blocks written in one request, at most (4 MiB).
constexpr size_t kMaxWriteRunBlocks = 32;
// Received blocks verified in one piece of background work, at most.
constexpr size_t kVerifyBatchBlocks = 8;
// Blocks read for peers in one piece of background work, at most.
constexpr size_t kServeBatchBlocks = 8;
// A large file being received is made durable in steps of this much, beside the writes, rather
// than all at the end: a disk (or the host of a virtual one) flushing 1 GiB takes most of a
// second, which the final fsync before the rename then no longer waits for.
constexpr uint64_t kFlushEveryBytes = 128 << 20;
constexpr auto kRetryDelay = std::chrono::milliseconds(1000);
// A change that could not be committed (no quorum: this node is cut off) is proposed again at
// least this often, so it is in the index soon after the partition heals.
constexpr auto kAnnounceRetryCap = std::chrono::milliseconds(2000);
constexpr auto kSaveDelay = std::chrono::milliseconds(1000);
constexpr size_t kObserveBatch = 256;
constexpr size_t kMaxIgnoreFileBytes = 1 << 20;
constexpr size_t kMaxErrorsShown = 20;

std::string RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) return "";
  return resolved;
}

bool Inside(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

wire::FileEntry EntryFor(const wire::LocalFileRecord& local) {
  wire::FileEntry entry;
  entry.set_path(local.path());
  if (!local.present()) {
    entry.set_deleted(true);
    return entry;
  }
  entry.set_kind(local.kind());
  entry.set_mode(local.mode());
  entry.set_mtime_nanos(local.mtime_nanos());
  if (local.kind() == wire::KIND_FILE) {
    entry.set_size(local.size());
    entry.set_hash(local.hash());
    *entry.mutable_blocks() = local.blocks();
  } else if (local.kind() == wire::KIND_SYMLINK) {
    entry.set_target(local.target());
  }
  return entry;
}

// Copies the file at `from` to `entry.path()` (which must still be as `expected` says).
Result<wire::LocalFileRecord> CopyWithin(const Folder& folder, const std::string& from,
                                         const wire::FileEntry& entry,
                                         const wire::LocalFileRecord* expected, uint64_t unique) {
  Result<Folder::TempFile> temp = folder.CreateTemp(entry.path(), entry.size(), unique);
  if (!temp.ok()) return temp.status();
  for (int i = 0; i < entry.blocks_size(); ++i) {
    const uint64_t offset = static_cast<uint64_t>(i) * kFileBlockSize;
    Result<std::string> data = folder.Read(from, offset, kFileBlockSize);
    Status written = data.ok() ? Status::Ok() : data.status();
    if (written.ok() && Sha256(data.value()) != entry.blocks(i)) {
      written = Status::Conflict("\"" + from + "\" changed before it could be copied");
    }
    if (written.ok()) written = Folder::WriteAt(temp.value(), offset, data.value());
    if (!written.ok()) {
      folder.Discard(temp.value());
      return written;
    }
  }
  return folder.Commit(temp.value(), entry, expected);
}

// Up to `most` items taken from the front of `queue`, in order, for a piece of background work.
template <typename T>
std::shared_ptr<std::vector<T>> TakeFront(std::deque<T>& queue, size_t most) {
  auto batch = std::make_shared<std::vector<T>>();
  while (batch->size() < most && !queue.empty()) {
    batch->push_back(std::move(queue.front()));
    queue.pop_front();
  }
  return batch;
}

}  // namespace

// One file being assembled from local and remote blocks.
struct SyncService::Fetch {
  std::string path;
  wire::FileEntry entry;
  std::optional<wire::LocalFileRecord> expected;
  Folder::TempFile temp;
  std::map<std::string, std::vector<uint32_t>> missing;  // block hash -> where it goes
  std::vector<Ipv4> sources;
  std::map<std::string, std::vector<bool>> asked;  // block hash -> which of `sources` were asked
  std::vector<bool> lacking;  // sources that did not send a block they were asked for
  size_t outstanding = 0;     // requests and writes in progress
  // Blocks verified, to write (hash, data). Blocks are verified as they arrive, several at once;
  // one batch is written at a time, joined into long writes: threads writing one file at once
  // only contend for its inode lock.
  std::vector<std::pair<std::string, AlignedBytes>> verified;
  bool writing = false;
  bool flushing = false;
  uint64_t flushed_bytes = 0;  // of fetched_bytes, made durable
  uint64_t fetched_bytes = 0;
  uint64_t reused_bytes = 0;
  Status failure;
};

SyncService::SyncService(EventLoop& loop, const Clock& clock, ConsensusService& consensus,
                         PeerService& peers, FileIndex& index, SyncOptions options)
    : loop_(loop),
      clock_(clock),
      consensus_(consensus),
      peers_(peers),
      index_(index),
      options_(std::move(options)),
      observe_timer_(loop),
      rescan_timer_(loop),
      save_timer_(loop) {
  index_.SetListener(FileIndex::Listener{
      .on_change = [this](const std::string& path) { MarkDirty(path); },
      .on_reset =
          [this] {
            RunApplied(true);
            index_.ForEach([this](const wire::FileEntry& entry) { MarkDirty(entry.path()); });
            for (const auto& [path, record] : local_.records()) MarkDirty(path);
          },
      .on_conflict =
          [this](const std::string& path, const std::string& copy_path, int64_t at_nanos) {
            if (options_.events) {
              options_.events("file.conflict", at_nanos,
                              {{"path", path}, {"conflict_path", copy_path}});
            }
          },
  });
  consensus_.AddStateListener([this] { RunApplied(false); });
  consensus_.HandleRequests(wire::PeerMessage::kBlockRequest,
                            [this](const wire::PeerMessage& request, PeerService::Reply reply) {
                              ServeBlock(request, std::move(reply));
                            });
}

SyncService::~SyncService() { *alive_ = false; }

Status SyncService::Start() {
  const std::string dir = RealPath(options_.dir);
  if (dir.empty()) return Status::Error("--sync-dir " + options_.dir + ": no such directory");
  const std::string data = RealPath(options_.data_dir);
  if (!data.empty() && Inside(data, dir)) {
    return Status::Invalid("--sync-dir " + dir + " holds the data directory " + data +
                           ": it would sync Synod's own state; choose a data dir outside it");
  }
  Result<Folder> folder = Folder::Open(dir);
  if (!folder.ok()) return Status::Error("--sync-dir: " + folder.status().message());
  folder_.emplace(std::move(folder.value()));
  table_path_ = options_.data_dir + "/filesync.table";
  {
    std::ifstream in(table_path_, std::ios::binary);
    if (in) {
      std::stringstream bytes;
      bytes << in.rdbuf();
      if (Status loaded = local_.Load(bytes.str(), &table_cluster_id_); !loaded.ok()) {
        spdlog::warn("filesync: {} unreadable ({}); every file will be hashed again", table_path_,
                     loaded.message());
      }
    }
  }
  LoadIgnoreRules();
  watcher_ = std::make_unique<FolderWatcher>(
      loop_, dir, [this](const FolderWatcher::Change& change) { OnWatcherChange(change); });
  if (Status watching = watcher_->Start(); !watching.ok()) return watching;
  spdlog::info("filesync: syncing {} ({} paths known from the last run)", dir,
               local_.records().size());
  Rescan("", true);
  rescan_timer_.Start(options_.rescan_period, options_.rescan_period,
                      [this] { Rescan("", false); });
  return Status::Ok();
}

void SyncService::Background(std::function<void()> work, std::function<void()> done) {
  loop_.Work(
      [stopping = stopping_, work = std::move(work)] {
        if (!*stopping) work();
      },
      [alive = alive_, stopping = stopping_, done = std::move(done)] {
        if (*alive && !*stopping) done();
      });
}

void SyncService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  *stopping_ = true;  // queued file work is dropped: the loop can end
  if (watcher_) watcher_->Stop();
  observe_timer_.Stop();
  rescan_timer_.Stop();
  save_timer_.Stop();
  if (ready_) Save();
}

// ---------------------------------------------------------------------------------------------
// Local changes

void SyncService::OnWatcherChange(const FolderWatcher::Change& change) {
  spdlog::debug("filesync: watcher: {} settled={} rescan={}", change.path, change.settled,
                change.rescan);
  if (change.path == ".synodignore") {
    LoadIgnoreRules();
    Rescan("", false);  // paths it no longer ignores are announced, and fetched
    index_.ForEach([this](const wire::FileEntry& entry) { MarkDirty(entry.path()); });
    return;
  }
  if (change.rescan) {
    Rescan(change.path, false);
    return;
  }
  ObserveLater(change.path, change.settled ? kSettleDelay : options_.quiet_period);
}

void SyncService::ObserveLater(const std::string& path, std::chrono::milliseconds delay) {
  if (path.empty() || IsSynodInternal(path)) return;
  const MonoTime due = clock_.Monotonic() + delay;
  auto [it, inserted] = observe_due_.emplace(path, due);
  if (!inserted) it->second = due;  // a writer still at work pushes it back
  if (!observe_armed_ || due < *observe_armed_) ArmObserveTimer(due);
}

void SyncService::ObserveDue() {
  observe_armed_.reset();
  if (stopped_) return;
  const MonoTime now = clock_.Monotonic();
  std::vector<PathToObserve> batch;
  std::optional<MonoTime> next;
  for (auto it = observe_due_.begin(); it != observe_due_.end();) {
    if (it->second > now) {
      if (!next || it->second < *next) next = it->second;
      ++it;
      continue;
    }
    if (observing_.contains(it->first)) {
      observe_again_.insert(it->first);
    } else if (busy_.contains(it->first)) {
      // Most likely this node's own write (a fetched file renamed into place): looked at once
      // that is done and recorded, when its stat matches the record and nothing is read again.
      observe_when_done_.insert(it->first);
    } else {
      const wire::LocalFileRecord* known = local_.Find(it->first);
      batch.push_back({it->first, known ? std::optional(*known) : std::nullopt});
      observing_.insert(it->first);
    }
    it = observe_due_.erase(it);
    if (batch.size() == kObserveBatch) ObserveBatch(std::exchange(batch, {}));
  }
  if (!batch.empty()) ObserveBatch(std::move(batch));
  if (next) ArmObserveTimer(*next);
}

void SyncService::ArmObserveTimer(MonoTime due) {
  observe_armed_ = due;
  observe_timer_.Start(std::chrono::duration_cast<std::chrono::milliseconds>(
                           due - clock_.Monotonic() + std::chrono::microseconds(999)),
                       std::chrono::milliseconds(0), [this] { ObserveDue(); });
}

void SyncService::ObserveBatch(std::vector<PathToObserve> batch) {
  auto work = std::make_shared<std::vector<PathToObserve>>(std::move(batch));
  auto results =
      std::make_shared<std::vector<std::pair<std::string, Result<wire::LocalFileRecord>>>>();
  Background(
      [folder = *folder_, work, results] {
        for (auto& [path, known] : *work) {
          results->emplace_back(path, folder.Observe(path, known ? &*known : nullptr));
        }
      },
      [this, results] { OnObserved(std::move(*results)); });
}

void SyncService::OnObserved(
    std::vector<std::pair<std::string, Result<wire::LocalFileRecord>>> results) {
  for (auto& [path, observed] : results) {
    observing_.erase(path);
    if (observe_again_.erase(path) > 0) {
      ObserveLater(path, kSettleDelay);
      continue;
    }
    if (!observed.ok()) {
      if (observed.status().code() == StatusCode::kBusy) {
        ObserveLater(path, options_.quiet_period);  // still being written
      } else {
        errors_[path].message = observed.status().message();
      }
      continue;
    }
    wire::LocalFileRecord record = std::move(observed.value());
    spdlog::debug("filesync: observed {}: present={} kind={}", path, record.present(),
                  static_cast<int>(record.kind()));
    const wire::LocalFileRecord* known = local_.Find(path);
    if (known == nullptr && !record.present()) continue;
    // The file's own synced attribute counts only if it was written in this cluster (a folder
    // copied from another cluster's node carries that cluster's versions).
    if (record.synced_cluster_id().empty() ||
        record.synced_cluster_id() != consensus_.cluster_id()) {
      record.clear_synced_version();
      record.clear_synced_present();
      record.clear_synced_key();
    }
    record.clear_synced_cluster_id();
    // A newer synced state from the file itself (Folder) wins over a record saved earlier.
    if (known != nullptr && known->synced_version() >= record.synced_version()) {
      record.set_synced_version(known->synced_version());
      record.set_synced_present(known->synced_present());
      record.set_synced_key(known->synced_key());
    }
    if (record.present() && record.kind() == wire::KIND_DIRECTORY && watcher_ &&
        watcher_->WatchDirectory(path)) {
      Rescan(path, false);  // see OnScanned
    }
    local_.Put(std::move(record));
    SaveSoon();
    MarkDirty(path);
  }
}

void SyncService::Rescan(const std::string& under, bool initial) {
  auto result = std::make_shared<Folder::ScanResult>();
  Background([folder = *folder_, result, under, initial] { *result = folder.Scan(under, initial); },
             [this, result, under, initial] { OnScanned(under, std::move(*result), initial); });
}

void SyncService::OnScanned(const std::string& under, Folder::ScanResult scan, bool initial) {
  if (scan.temporaries_removed > 0) {
    spdlog::info("filesync: removed {} unfinished temporary files of an earlier run",
                 scan.temporaries_removed);
  }
  for (const std::string& problem : scan.problems) spdlog::warn("filesync: {}", problem);
  std::set<std::string> seen;
  size_t changed = 0;
  if (!under.empty()) ObserveLater(under, std::chrono::milliseconds(0));  // the directory itself
  for (Folder::ScanEntry& entry : scan.entries) {
    seen.insert(entry.path);
    if (entry.stat.kind() == wire::KIND_DIRECTORY && watcher_ &&
        watcher_->WatchDirectory(entry.path) && !initial) {
      // Made after this scan listed its parent's entries and before it was watched: what was
      // written in it meanwhile is in no event and in no listing yet.
      Rescan(entry.path, false);
    }
    const wire::LocalFileRecord* known = local_.Find(entry.path);
    // A directory's mtime moves with every entry added or removed: not a change of its own.
    const bool same =
        known != nullptr && known->present() && known->kind() == entry.stat.kind() &&
        known->mode() == entry.stat.mode() && known->inode() == entry.stat.inode() &&
        (entry.stat.kind() == wire::KIND_DIRECTORY ||
         (known->size() == entry.stat.size() && known->mtime_nanos() == entry.stat.mtime_nanos()));
    if (!same && !observing_.contains(entry.path) && !observe_due_.contains(entry.path)) {
      ++changed;
      ObserveLater(entry.path, std::chrono::milliseconds(0));
    }
  }
  for (const std::string& path : local_.PathsUnder(under)) {
    const wire::LocalFileRecord* known = local_.Find(path);
    if (known->present() && path != under && !seen.contains(path) && !observing_.contains(path) &&
        !observe_due_.contains(path) && !busy_.contains(path)) {
      ++changed;
      ObserveLater(path, std::chrono::milliseconds(0));
    }
  }
  if (initial) {
    spdlog::info("filesync: first scan: {} entries, {} changed since the last run",
                 scan.entries.size(), changed);
    // Reconciling starts once what changed here while the node was down has been looked at.
    // It holds itself only through the pending retry: a strong self-capture would never be freed.
    auto wait_for_observations = std::make_shared<std::function<void()>>();
    std::weak_ptr<std::function<void()>> retry = wait_for_observations;
    *wait_for_observations = [this, retry] {
      if (stopped_) return;
      // ... and once this node holds the cluster's index: a node restarted a moment ago has
      // not replayed what it missed yet, and would take its old files for new ones.
      const ClusterStatus status = consensus_.GetStatus();
      const bool caught_up =
          status.member && status.leader.has_value() && status.applied_index >= status.commit_index;
      if (!observe_due_.empty() || !observing_.empty() || !caught_up) {
        if (auto again = retry.lock()) {
          loop_.RunAfter(std::chrono::milliseconds(10), [again] { (*again)(); });
        }
        return;
      }
      if (!table_cluster_id_.empty() && table_cluster_id_ != status.cluster_id) {
        // Its synced versions are another cluster's log indexes: trusted, they would remove or
        // overwrite files here that this cluster never synced.
        spdlog::warn(
            "filesync: {} was written in cluster '{}', this is cluster '{}': its {} paths are "
            "offered as a new node's, conflicts kept as copies",
            table_path_, table_cluster_id_, status.cluster_id, local_.records().size());
        local_.ForgetSyncedState();
      }
      folder_->set_cluster_id(status.cluster_id);
      ready_ = true;
      spdlog::info("filesync: ready; {} paths in the index (as of entry {})", index_.live(),
                   status.applied_index);
      index_.ForEach([this](const wire::FileEntry& entry) { MarkDirty(entry.path()); });
      for (const auto& [path, record] : local_.records()) MarkDirty(path);
    };
    (*wait_for_observations)();
  } else if (changed > 0 && under.empty()) {
    stats_.missed_by_watcher += changed;
    spdlog::warn("filesync: the periodic rescan found {} changes the watcher had not reported",
                 changed);
  }
}

void SyncService::LoadIgnoreRules() {
  Result<std::string> text = folder_->Read(".synodignore", 0, kMaxIgnoreFileBytes);
  if (!text.ok()) {
    ignore_ = IgnoreRules();
    return;
  }
  Result<IgnoreRules> rules = IgnoreRules::Parse(text.value());
  if (!rules.ok()) {
    spdlog::error("filesync: .synodignore: {}; ignoring nothing until it is fixed",
                  rules.status().message());
    ignore_ = IgnoreRules();
    return;
  }
  ignore_ = std::move(rules.value());
  spdlog::info("filesync: .synodignore: {} rules", ignore_.size());
}

bool SyncService::Ignored(const std::string& path, bool is_directory) const {
  return path == ".synodignore" || (ignore_.size() > 0 && ignore_.Ignored(path, is_directory));
}

// ---------------------------------------------------------------------------------------------
// Reconciling

void SyncService::MarkDirty(const std::string& path) {
  if (!ready_ || stopped_) return;
  dirty_.insert(path);
  if (drain_scheduled_) return;
  drain_scheduled_ = true;
  loop_.Defer([this] { DrainDirty(); });
}

void SyncService::DrainDirty() {
  drain_scheduled_ = false;
  std::set<std::string> paths;
  std::swap(paths, dirty_);
  // Parents before children (std::set order), so that directories exist first.
  for (const std::string& path : paths) Reconcile(path);
  RunWrites();
}

void SyncService::Reconcile(const std::string& path) {
  if (stopped_) return;
  if (busy_.contains(path) || observing_.contains(path) || observe_due_.contains(path)) {
    again_.insert(path);
    return;
  }
  const wire::FileEntry* entry = index_.Find(path);
  const wire::LocalFileRecord* local = local_.Find(path);
  const bool is_directory = (entry != nullptr && entry->kind() == wire::KIND_DIRECTORY) ||
                            (local != nullptr && local->kind() == wire::KIND_DIRECTORY);
  if (Ignored(path, is_directory)) return;
  switch (Decide(entry, local, Progress())) {
    case SyncAction::kNone:
      errors_.erase(path);
      return;
    case SyncAction::kMarkSynced: {
      if (entry == nullptr && local != nullptr && !local->present()) {
        // Gone here and from the index (its tombstone purged): nothing left to remember.
        local_.Erase(path);
        errors_.erase(path);
        SaveSoon();
        return;
      }
      wire::LocalFileRecord record = local != nullptr ? *local : wire::LocalFileRecord();
      record.set_path(path);
      MarkSynced(record, entry != nullptr ? entry->version() : 0);
      local_.Put(std::move(record));
      errors_.erase(path);
      SaveSoon();
      return;
    }
    case SyncAction::kAnnounce:
      Announce(path, local);
      return;
    case SyncAction::kMaterialize:
    case SyncAction::kRemove:
      StartWrite(path);
      return;
  }
}

void SyncService::Done(const std::string& path) {
  busy_.erase(path);
  again_.erase(path);
  if (observe_when_done_.erase(path) > 0) ObserveLater(path, kSettleDelay);
  MarkDirty(path);
}

void SyncService::Announce(const std::string& path, const wire::LocalFileRecord* local) {
  if (announcing_ >= options_.max_announcements) {
    if (waiting_room_.insert(path).second) waiting_for_room_.push_back(path);
    return;
  }
  wire::FileEntry entry = local != nullptr ? EntryFor(*local) : wire::FileEntry();
  entry.set_path(path);
  if (local == nullptr) entry.set_deleted(true);
  entry.set_origin(options_.self_id);
  entry.set_origin_name(options_.self_name);
  const uint64_t base = local != nullptr ? local->synced_version() : 0;
  const std::string announced_key = local != nullptr ? ContentKey(*local) : "";
  spdlog::debug("filesync: announcing {} base v{} deleted={}", path, base, entry.deleted());
  busy_.insert(path);
  ++announcing_;
  consensus_.Propose(FileIndex::Announce(entry, base), [this, alive = alive_, path,
                                                        announced_key](Result<Committed> result) {
    if (!*alive) return;
    // The answer can come before this node applied the entry: judge the path against an index
    // that holds it (and whatever came before it).
    if (result.ok() && result.value().index > index_.applied_through()) {
      const uint64_t index = result.value().index;
      AfterApplied(index, [this, path, announced_key, result = std::move(result)] {
        OnAnnounced(path, announced_key, result);
      });
      return;
    }
    OnAnnounced(path, announced_key, result);
  });
}

void SyncService::OnAnnounced(const std::string& path, const std::string& announced_key,
                              const Result<Committed>& result) {
  --announcing_;
  {
    const wire::LocalFileRecord* now = local_.Find(path);
    if (result.ok()) {
      wire::FileAnnounceResult answer;
      answer.ParseFromString(result.value().value);
      ++stats_.announced;
      if (now != nullptr && ContentKey(*now) == announced_key) {
        wire::LocalFileRecord record = *now;
        MarkSynced(record, answer.version());
        local_.Put(std::move(record));
        SaveSoon();
      }
      errors_.erase(path);
    } else if (result.status().code() == StatusCode::kConflict) {
      spdlog::info("filesync: {}", result.status().message());
      wire::LocalFileRecord record = now != nullptr ? *now : wire::LocalFileRecord();
      record.set_path(path);
      MarkRefusedDelete(record);
      local_.Put(std::move(record));
    } else {
      // No quorum (a minority partition) or a leader change: the change stays on disk and is
      // announced again.
      RetryLater(path, result.status(), kAnnounceRetryCap);
    }
    if (result.ok() || result.status().code() == StatusCode::kConflict) Done(path);
  }
  // Paths that waited for room, in order, as many as there is room for now.
  for (size_t room = options_.max_announcements - announcing_;
       room > 0 && !waiting_for_room_.empty(); --room) {
    const std::string waiting = std::move(waiting_for_room_.front());
    waiting_for_room_.pop_front();
    waiting_room_.erase(waiting);
    MarkDirty(waiting);
  }
}

void SyncService::AfterApplied(uint64_t index, std::function<void()> then) {
  if (index <= index_.applied_through()) return then();
  after_applied_.emplace(index, std::move(then));
}

void SyncService::RunApplied(bool all) {
  while (!after_applied_.empty() &&
         (all || after_applied_.begin()->first <= index_.applied_through())) {
    auto then = std::move(after_applied_.begin()->second);
    after_applied_.erase(after_applied_.begin());
    then();
  }
}

void SyncService::StartWrite(const std::string& path) {
  if (write_queued_.insert(path).second) write_queue_.push_back(path);
}

void SyncService::RunWrites() {
  while (writing_ < options_.max_writes && !write_queue_.empty()) {
    const std::string path = std::move(write_queue_.front());
    write_queue_.pop_front();
    write_queued_.erase(path);
    if (busy_.contains(path)) continue;
    const SyncAction action = Decide(index_.Find(path), local_.Find(path), Progress());
    if (action == SyncAction::kMaterialize) {
      Materialize(path);
    } else if (action == SyncAction::kRemove) {
      Remove(path);
    } else {
      MarkDirty(path);
    }
  }
}

std::vector<wire::FileEntry> SyncService::PreserveTargets(
    const wire::LocalFileRecord& local) const {
  std::vector<wire::FileEntry> targets;
  if (!local.present() || local.kind() != wire::KIND_FILE) return targets;
  for (const std::string& path : index_.PathsWithHash(local.hash())) {
    if (path == local.path() || Ignored(path, false)) continue;
    const wire::FileEntry* entry = index_.Find(path);
    const wire::LocalFileRecord* there = local_.Find(path);
    if (there != nullptr && ContentKey(*there) == ContentKey(*entry)) continue;
    if (there != nullptr && there->present()) continue;  // never overwrite a file here
    targets.push_back(*entry);
  }
  return targets;
}

void SyncService::Materialize(const std::string& path) {
  const wire::FileEntry entry = *index_.Find(path);
  const wire::LocalFileRecord* local = local_.Find(path);
  std::optional<wire::LocalFileRecord> expected;
  if (local != nullptr) expected = *local;
  if (entry.kind() == wire::KIND_FILE) {
    StartFetch(path, entry, std::move(expected));
    return;
  }
  busy_.insert(path);
  ++writing_;
  auto outcome = std::make_shared<Result<wire::LocalFileRecord>>(Status::Error("not run"));
  auto preserved = std::make_shared<std::vector<wire::LocalFileRecord>>();
  std::vector<wire::FileEntry> targets =
      expected ? PreserveTargets(*expected) : std::vector<wire::FileEntry>();
  const uint64_t unique = ++next_unique_;
  Background(
      [folder = *folder_, entry, expected, targets = std::move(targets), outcome, preserved,
       unique] {
        for (const wire::FileEntry& target : targets) {
          Result<wire::LocalFileRecord> copy =
              CopyWithin(folder, entry.path(), target, nullptr, unique);
          if (copy.ok()) preserved->push_back(std::move(copy.value()));
        }
        const wire::LocalFileRecord* before = expected ? &*expected : nullptr;
        *outcome = entry.kind() == wire::KIND_DIRECTORY ? folder.MakeDirectory(entry, before)
                                                        : folder.MakeSymlink(entry, before, unique);
      },
      [this, path, outcome, preserved, version = entry.version()] {
        Finished(path, std::move(*outcome), std::move(*preserved), version);
      });
}

void SyncService::Remove(const std::string& path) {
  const wire::LocalFileRecord local = *local_.Find(path);
  if (local.kind() == wire::KIND_DIRECTORY) {
    // Its entries go first; each one removed brings the directory back here. What stays (an
    // ignored file, one not announced yet) keeps it.
    for (const std::string& child : local_.PathsUnder(path)) {
      const wire::LocalFileRecord* record = local_.Find(child);
      if (child != path && record->present()) {
        errors_[path].message = "deleted elsewhere, but it holds \"" + child + "\" here";
        return;
      }
    }
  }
  std::vector<wire::FileEntry> targets = PreserveTargets(local);
  for (const wire::FileEntry& target : targets) {
    if (busy_.contains(target.path())) {
      // Being fetched, from this very file perhaps (a rename): remove it once that is done.
      busy_.insert(path);
      loop_.RunAfter(std::chrono::milliseconds(20), [this, alive = alive_, path] {
        if (*alive && !stopped_) Done(path);
      });
      return;
    }
  }
  busy_.insert(path);
  ++writing_;
  const wire::FileEntry* entry = index_.Find(path);
  const uint64_t version = entry != nullptr ? entry->version() : 0;
  auto outcome = std::make_shared<Result<wire::LocalFileRecord>>(Status::Error("not run"));
  auto preserved = std::make_shared<std::vector<wire::LocalFileRecord>>();
  const uint64_t unique = ++next_unique_;
  Background(
      [folder = *folder_, local, targets = std::move(targets), outcome, preserved, unique] {
        for (const wire::FileEntry& target : targets) {
          Result<wire::LocalFileRecord> copy =
              CopyWithin(folder, local.path(), target, nullptr, unique);
          if (copy.ok()) preserved->push_back(std::move(copy.value()));
        }
        if (Status removed = folder.Remove(local.path(), local); !removed.ok()) {
          *outcome = removed;
          return;
        }
        wire::LocalFileRecord gone;
        gone.set_path(local.path());
        *outcome = gone;
      },
      [this, path, outcome, preserved, version] {
        Finished(path, std::move(*outcome), std::move(*preserved), version);
      });
}

void SyncService::Finished(const std::string& path, Result<wire::LocalFileRecord> outcome,
                           std::vector<wire::LocalFileRecord> preserved, uint64_t version) {
  --writing_;
  for (wire::LocalFileRecord& copy : preserved) {
    const wire::FileEntry* entry = index_.Find(copy.path());
    MarkSynced(copy, entry != nullptr ? entry->version() : 0);
    const std::string copy_path = copy.path();
    local_.Put(std::move(copy));
    MarkDirty(copy_path);
  }
  spdlog::debug("filesync: wrote {} v{}: {}", path, version,
                outcome.ok() ? "ok" : outcome.status().message());
  if (outcome.ok()) {
    wire::LocalFileRecord record = std::move(outcome.value());
    MarkSynced(record, version);
    const bool removed = !record.present();
    if (options_.events) {
      nlohmann::json fields = {{"path", path}, {"version", version}};
      if (!removed) fields["size"] = record.size();
      options_.events(removed ? "file.removed" : "file.synced", clock_.WallUtcNanos(),
                      std::move(fields));
    }
    if (removed) {
      ++stats_.removed;
      local_.Erase(path);
      const std::string parent(ParentOf(path));
      if (!parent.empty()) MarkDirty(parent);  // a directory deleted before its files
    } else {
      local_.Put(std::move(record));
    }
    if (const wire::FileEntry* entry = index_.Find(path);
        entry != nullptr && entry->origin() != options_.self_id) {
      const double seconds =
          static_cast<double>(clock_.WallUtcNanos() - entry->committed_at_nanos()) / 1e9;
      if (seconds >= 0) {
        for (size_t i = 0; i < SyncStats::kLatencyBounds.size(); ++i) {
          if (seconds <= SyncStats::kLatencyBounds[i]) ++stats_.latency_buckets[i];
        }
        ++stats_.latency_count;
        stats_.latency_sum += seconds;
      }
    }
    errors_.erase(path);
    SaveSoon();
  } else if (outcome.status().code() == StatusCode::kConflict) {
    // Changed here meanwhile (or a directory not empty yet): look at the disk again.
    ObserveLater(path, kSettleDelay);
  } else {
    busy_.erase(path);
    RetryLater(path, outcome.status());
    RunWrites();
    return;
  }
  Done(path);
  RunWrites();
}

void SyncService::RetryLater(const std::string& path, const Status& why,
                             std::chrono::milliseconds cap) {
  PathError& error = errors_[path];
  if (error.message != why.message()) {  // once per path and reason, not at every retry
    spdlog::warn("filesync: {}: {}; trying again", path, why.message());
    error.message = why.message();
  }
  // 1 s, 2 s, 4 s ... 10 s: content no node holds any more (a conflict copy of a version its
  // writer replaced before anyone fetched it) is asked for now and then, not in a loop.
  const auto delay =
      std::min<std::chrono::milliseconds>(kRetryDelay * (1 << std::min(error.retries, 6)), cap);
  ++error.retries;
  busy_.insert(path);
  loop_.RunAfter(delay, [this, alive = alive_, path] {
    if (*alive && !stopped_) Done(path);
  });
}

// ---------------------------------------------------------------------------------------------
// Fetching blocks

std::vector<Ipv4> SyncService::SourcesFor(const wire::FileEntry& entry) const {
  // The node that announced it first, then the others; members that stopped answering last.
  std::vector<std::pair<int, Ipv4>> ranked;
  for (const wire::MemberRecord* member : consensus_.members().MembersInJoinOrder()) {
    if (member->id() == options_.self_id || member->state() == wire::DEAD ||
        member->state() == wire::LEFT) {
      continue;
    }
    Result<Ipv4> ip = Ipv4::Parse(member->ip());
    if (!ip.ok()) continue;
    const int rank =
        (member->state() == wire::ALIVE ? 0 : 2) + (member->id() == entry.origin() ? 0 : 1);
    ranked.emplace_back(rank, ip.value());
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Ipv4> sources;
  for (const auto& [rank, ip] : ranked) sources.push_back(ip);
  return sources;
}

void SyncService::StartFetch(const std::string& path, const wire::FileEntry& entry,
                             std::optional<wire::LocalFileRecord> expected) {
  spdlog::debug("filesync: fetching {} v{} over {}", path, entry.version(),
                expected ? (expected->present() ? HexOf(expected->hash()).substr(0, 8) : "absent")
                         : "nothing");
  busy_.insert(path);
  ++writing_;
  auto fetch = std::make_shared<Fetch>();
  fetch->path = path;
  fetch->entry = entry;
  fetch->expected = std::move(expected);
  fetch->sources = SourcesFor(entry);
  // Which blocks can be copied from local files.
  std::vector<std::tuple<uint32_t, std::string, uint32_t>> local_blocks;
  for (int i = 0; i < entry.blocks_size(); ++i) {
    if (std::optional<LocalTable::BlockSource> source = local_.FindBlock(entry.blocks(i))) {
      local_blocks.emplace_back(static_cast<uint32_t>(i), source->path, source->index);
    } else {
      fetch->missing[entry.blocks(i)].push_back(static_cast<uint32_t>(i));
    }
  }
  auto status = std::make_shared<Status>();
  const uint64_t unique = ++next_unique_;
  Background(
      [folder = *folder_, fetch, local_blocks = std::move(local_blocks), status, unique] {
        Result<Folder::TempFile> temp = folder.CreateTemp(fetch->path, fetch->entry.size(), unique);
        if (!temp.ok()) {
          *status = temp.status();
          return;
        }
        fetch->temp = temp.value();
        for (const auto& [index, from, from_index] : local_blocks) {
          const std::string& hash = fetch->entry.blocks(static_cast<int>(index));
          Result<std::string> data = folder.ReadBlock(from, from_index, hash, nullptr);
          if (data.ok() &&
              Folder::WriteAt(fetch->temp, static_cast<uint64_t>(index) * kFileBlockSize,
                              data.value())
                  .ok()) {
            fetch->reused_bytes += data.value().size();
          } else {
            fetch->missing[hash].push_back(index);  // the local copy changed: fetch it
          }
        }
      },
      [this, fetch, status] {
        if (!status->ok()) {
          fetch->failure = *status;
          FinishFetch(fetch);
          return;
        }
        if (fetch->missing.empty()) {
          FinishFetch(fetch);
          return;
        }
        if (fetch->sources.empty()) {
          fetch->failure =
              Status::Unavailable("no other member to fetch \"" + fetch->path + "\" from");
          FinishFetch(fetch);
          return;
        }
        // In the file's order: received blocks then join into long writes.
        std::vector<std::pair<uint32_t, const std::string*>> order;
        for (const auto& [hash, indexes] : fetch->missing) order.emplace_back(indexes[0], &hash);
        std::sort(order.begin(), order.end());
        for (const auto& [index, hash] : order) {
          block_queue_.emplace_back(fetch, *hash);
          ++fetch->outstanding;
        }
        RequestBlocks();
      });
}

void SyncService::RequestBlocks() {
  while (block_requests_ < options_.max_block_requests && !block_queue_.empty()) {
    // Named copies, not a structured binding: a lambda below captures them.
    std::shared_ptr<Fetch> fetch = std::move(block_queue_.front().first);
    std::string hash = std::move(block_queue_.front().second);
    block_queue_.pop_front();
    if (!fetch->failure.ok()) {
      if (--fetch->outstanding == 0) FinishFetch(fetch);
      continue;
    }
    const std::optional<size_t> source = NextSource(*fetch, hash);
    if (!source) {
      fetch->failure =
          Status::Unavailable("no member could send a block of \"" + fetch->path + "\"");
      if (--fetch->outstanding == 0) FinishFetch(fetch);
      continue;
    }
    wire::PeerMessage request;
    request.mutable_block_request()->set_hash(hash);
    request.mutable_block_request()->set_path(fetch->path);
    request.mutable_block_request()->set_index(fetch->missing[hash].front());
    ++block_requests_;
    peers_.Call(
        fetch->sources[*source], std::move(request), options_.block_timeout,
        [this, alive = alive_, fetch, hash, source = *source](Result<wire::PeerMessage> response) {
          if (*alive) OnBlock(fetch, hash, source, std::move(response));
        },
        PeerLane::kBulk);
  }
}

std::optional<size_t> SyncService::NextSource(Fetch& fetch, const std::string& hash) {
  const size_t count = fetch.sources.size();
  std::vector<bool>& asked = fetch.asked[hash];
  asked.resize(count);
  fetch.lacking.resize(count);
  // Large files spread their blocks over every source; the first choice of a small one is the
  // node that announced it. Sources that lacked a block of the file come last: most likely
  // they are fetching it too.
  const size_t first = fetch.entry.blocks_size() > 8
                           ? std::hash<std::string>{}(hash) % std::max<size_t>(count, 1)
                           : 0;
  for (const bool lacking : {false, true}) {
    for (size_t k = 0; k < count; ++k) {
      const size_t source = (first + k) % count;
      if (!asked[source] && fetch.lacking[source] == lacking) {
        asked[source] = true;
        return source;
      }
    }
  }
  return std::nullopt;
}

void SyncService::OnBlock(std::shared_ptr<Fetch> fetch, const std::string& hash, size_t source,
                          Result<wire::PeerMessage> response) {
  std::string error;
  if (!response.ok()) {
    error = response.status().message();
  } else if (!response.value().has_block_response()) {
    error = "unexpected answer";
  } else if (!response.value().block_response().error().empty()) {
    error = response.value().block_response().error();
  }
  if (!error.empty()) {
    AskElsewhere(fetch, hash, source);
    RequestBlocks();
    return;
  }
  // Still counted in block_requests_ until written, so that a slow disk holds back requests
  // instead of piling blocks up in memory.
  to_verify_.push_back(
      ReceivedBlock{std::move(fetch), hash, source,
                    std::move(*response.value().mutable_block_response()->mutable_data()),
                    AlignedBytes(), false});
  VerifyBlocks();
}

void SyncService::AskElsewhere(const std::shared_ptr<Fetch>& fetch, const std::string& hash,
                               size_t source) {
  fetch->lacking[source] = true;
  --block_requests_;
  block_queue_.emplace_front(fetch, hash);
}

void SyncService::VerifyBlocks() {
  while (verifying_ < options_.verifiers && !to_verify_.empty()) {
    std::shared_ptr<std::vector<ReceivedBlock>> batch = TakeFront(to_verify_, kVerifyBatchBlocks);
    ++verifying_;
    Background(
        [batch] {
          for (ReceivedBlock& block : *batch) {
            // Copied first, as a direct write wants it (the writer then copies nothing), and
            // hashed from the copy, while it is in the cache.
            block.data = AlignedBytes::CopyOf(block.received);
            block.received = std::string();
            block.matches = Sha256(block.data.view()) == block.hash;
          }
        },
        [this, batch] {
          --verifying_;
          for (ReceivedBlock& block : *batch) {
            std::shared_ptr<Fetch>& fetch = block.fetch;
            if (!block.matches) {
              ++stats_.rejected_blocks;
              spdlog::warn("filesync: a block of \"{}\" did not match its hash", fetch->path);
              AskElsewhere(fetch, block.hash, block.source);
              continue;
            }
            fetch->verified.emplace_back(block.hash, std::move(block.data));
            WriteBlocks(fetch);
          }
          VerifyBlocks();
          RequestBlocks();
        });
  }
}

void SyncService::WriteBlocks(std::shared_ptr<Fetch> fetch) {
  if (fetch->writing || fetch->verified.empty()) return;
  fetch->writing = true;
  struct Block {
    AlignedBytes data;
    std::vector<uint32_t> indexes;
  };
  auto batch = std::make_shared<std::vector<Block>>();
  for (auto& [hash, data] : fetch->verified) {
    batch->push_back(Block{std::move(data), fetch->missing[hash]});
  }
  fetch->verified.clear();
  auto written = std::make_shared<Status>();
  Background(
      [fetch, batch, written] {
        std::vector<std::pair<uint32_t, std::string_view>> pieces;  // by index in the file
        for (const Block& block : *batch) {
          for (uint32_t index : block.indexes) pieces.emplace_back(index, block.data.view());
        }
        std::sort(pieces.begin(), pieces.end());
        std::vector<std::string_view> run;
        for (size_t first = 0; first < pieces.size() && written->ok();) {
          size_t end = first + 1;
          while (end < pieces.size() && end - first < kMaxWriteRunBlocks &&
                 pieces[end].first == pieces[end - 1].first + 1) {
            ++end;
          }
          run.clear();
          for (size_t i = first; i < end; ++i) run.push_back(pieces[i].second);
          *written = Folder::WriteRun(
              fetch->temp, static_cast<uint64_t>(pieces[first].first) * kFileBlockSize, run);
          first = end;
        }
      },
      [this, fetch, batch, written] {
        fetch->writing = false;
        if (!written->ok()) fetch->failure = *written;
        for (const Block& block : *batch) {
          --block_requests_;
          if (written->ok()) fetch->fetched_bytes += block.data.size() * block.indexes.size();
          --fetch->outstanding;
        }
        if (fetch->outstanding == 0) {
          FinishFetch(fetch);
        } else {
          WriteBlocks(fetch);
          FlushSome(fetch);
        }
        RequestBlocks();
      });
}

void SyncService::FlushSome(std::shared_ptr<Fetch> fetch) {
  if (fetch->flushing || fetch->fetched_bytes - fetch->flushed_bytes < kFlushEveryBytes) return;
  fetch->flushing = true;
  const uint64_t written = fetch->fetched_bytes;
  Background([temp = fetch->temp] { Folder::Flush(temp); },
             [fetch, written] {
               fetch->flushing = false;
               fetch->flushed_bytes = written;
             });
}

void SyncService::FinishFetch(std::shared_ptr<Fetch> fetch) {
  stats_.reused_bytes += fetch->reused_bytes;
  stats_.fetched_bytes += fetch->fetched_bytes;
  fetch->reused_bytes = fetch->fetched_bytes = 0;
  if (!fetch->failure.ok()) {
    if (fetch->temp.fd) folder_->Discard(fetch->temp);
    --writing_;
    busy_.erase(fetch->path);
    RetryLater(fetch->path, fetch->failure);
    RunWrites();
    return;
  }
  std::vector<wire::FileEntry> targets =
      fetch->expected ? PreserveTargets(*fetch->expected) : std::vector<wire::FileEntry>();
  for (const wire::FileEntry& target : targets) {
    if (busy_.contains(target.path())) {
      // Another path is being made from the file this one replaces (a conflict copy, the new
      // name of a renamed file): replace it once that is done.
      loop_.RunAfter(std::chrono::milliseconds(20), [this, alive = alive_, fetch] {
        if (*alive && !stopped_) FinishFetch(fetch);
      });
      return;
    }
  }
  auto outcome = std::make_shared<Result<wire::LocalFileRecord>>(Status::Error("not run"));
  auto preserved = std::make_shared<std::vector<wire::LocalFileRecord>>();
  const uint64_t unique = ++next_unique_;
  Background(
      [folder = *folder_, fetch, targets = std::move(targets), outcome, preserved, unique] {
        for (const wire::FileEntry& target : targets) {
          Result<wire::LocalFileRecord> copy =
              CopyWithin(folder, fetch->path, target, nullptr, unique);
          if (copy.ok()) preserved->push_back(std::move(copy.value()));
        }
        *outcome =
            folder.Commit(fetch->temp, fetch->entry, fetch->expected ? &*fetch->expected : nullptr);
      },
      [this, fetch, outcome, preserved] {
        if (outcome->ok()) ++stats_.fetched_files;
        Finished(fetch->path, std::move(*outcome), std::move(*preserved), fetch->entry.version());
      });
}

void SyncService::ServeBlock(const wire::PeerMessage& request, PeerService::Reply reply) {
  const wire::BlockRequest& ask = request.block_request();
  auto answer = [reply = std::move(reply)](std::string data, std::string error) {
    wire::PeerMessage response;
    response.mutable_block_response()->set_data(std::move(data));
    response.mutable_block_response()->set_error(std::move(error));
    reply(std::move(response));
  };
  if (ask.hash().size() != kHashBytes) return answer("", "hash: not a SHA-256");
  std::optional<LocalTable::BlockSource> source;
  if (const wire::LocalFileRecord* hinted = local_.Find(ask.path());
      hinted != nullptr && ask.index() < static_cast<uint64_t>(hinted->blocks_size()) &&
      hinted->blocks(static_cast<int>(ask.index())) == ask.hash()) {
    source = LocalTable::BlockSource{ask.path(), static_cast<uint32_t>(ask.index())};
  } else {
    source = local_.FindBlock(ask.hash());
  }
  if (!source) return answer("", "not found");
  // The stat the file's hashes were computed at (without the hashes: a large file has
  // thousands).
  std::optional<wire::LocalFileRecord> hashed_as;
  if (const wire::LocalFileRecord* record = local_.Find(source->path)) {
    hashed_as = Folder::StatOf(*record);
  }
  to_serve_.push_back(
      BlockToServe{std::move(*source), std::move(hashed_as), ask.hash(), std::move(answer)});
  ServeQueued();
}

void SyncService::ServeQueued() {
  while (serving_ < options_.block_readers && !to_serve_.empty()) {
    std::shared_ptr<std::vector<BlockToServe>> batch = TakeFront(to_serve_, kServeBatchBlocks);
    auto read = std::make_shared<std::vector<Result<std::string>>>();
    ++serving_;
    Background(
        [folder = *folder_, batch, read] {
          std::vector<Folder::BlockWanted> wanted;
          for (size_t first = 0; first < batch->size();) {
            // Blocks of one file, asked for one after the other: one open.
            const BlockToServe& head = (*batch)[first];
            wanted.clear();
            size_t end = first;
            for (; end < batch->size() && (*batch)[end].source.path == head.source.path; ++end) {
              wanted.push_back({(*batch)[end].source.index, (*batch)[end].hash});
            }
            for (Result<std::string>& block : folder.ReadBlocks(
                     head.source.path, wanted, head.hashed_as ? &*head.hashed_as : nullptr)) {
              read->push_back(std::move(block));
            }
            first = end;
          }
        },
        [this, batch, read] {
          --serving_;
          for (size_t i = 0; i < batch->size(); ++i) {
            Result<std::string>& data = (*read)[i];
            if (!data.ok()) {
              (*batch)[i].answer("", "not found: " + data.status().message());
              continue;
            }
            ++stats_.blocks_served;
            stats_.bytes_served += data.value().size();
            (*batch)[i].answer(std::move(data.value()), "");
          }
          ServeQueued();
        });
  }
}

// ---------------------------------------------------------------------------------------------
// State

void SyncService::SaveSoon() {
  if (save_scheduled_) return;
  save_scheduled_ = true;
  save_timer_.Start(kSaveDelay, std::chrono::milliseconds(0), [this] {
    save_scheduled_ = false;
    Save();
  });
}

void SyncService::Save() {
  if (saving_ && !stopped_) {
    SaveSoon();
    return;
  }
  saving_ = true;
  auto bytes = std::make_shared<std::string>(local_.Serialize(consensus_.cluster_id()));
  auto status = std::make_shared<Status>();
  // The last save at stop may run while a background one is still writing: one at a time, and
  // an older one never replaces a newer one.
  auto save = [bytes, status, path = table_path_, files = table_files_,
               generation = ++table_generation_] {
    std::lock_guard<std::mutex> lock(files->mutex);
    if (generation < files->saved) return;
    const std::string temp = path + ".tmp";
    UniqueFd fd(open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    size_t written = 0;
    while (fd.get() >= 0 && written < bytes->size()) {
      const ssize_t n = write(fd.get(), bytes->data() + written, bytes->size() - written);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    if (fd.get() < 0 || written < bytes->size() || fsync(fd.get()) != 0 ||
        rename(temp.c_str(), path.c_str()) != 0) {
      *status = Status::Error(std::string("cannot save ") + path + ": " + std::strerror(errno));
      return;
    }
    files->saved = generation;
  };
  if (stopped_) {  // the loop is closing: write now
    save();
    if (!status->ok()) spdlog::error("filesync: {}", status->message());
    return;
  }
  loop_.Work(save, [this, alive = alive_, status] {
    if (!*alive) return;
    saving_ = false;
    if (!status->ok()) spdlog::error("filesync: {}", status->message());
  });
}

// ---------------------------------------------------------------------------------------------
// Status

IndexProgress SyncService::Progress() const {
  return IndexProgress{consensus_.applied_index(), index_.purged_through()};
}

SyncService::Pending SyncService::CountPending() const {
  Pending pending;
  auto count = [&](const std::string& path) {
    const wire::FileEntry* entry = index_.Find(path);
    const SyncAction action = Decide(entry, local_.Find(path), Progress());
    if (action != SyncAction::kMaterialize && action != SyncAction::kRemove) return;
    if (Ignored(path, entry != nullptr && entry->kind() == wire::KIND_DIRECTORY)) return;
    ++pending.files;
    if (action == SyncAction::kMaterialize) pending.bytes += entry->size();
  };
  index_.ForEach([&](const wire::FileEntry& entry) { count(entry.path()); });
  return pending;
}

bool SyncService::InSync() const {
  return ready_ && observe_due_.empty() && observing_.empty() && busy_.empty() && dirty_.empty() &&
         write_queue_.empty() && CountPending().files == 0;
}

nlohmann::json SyncService::StatusJson() const {
  const Pending pending = CountPending();
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& [path, error] : errors_) {
    if (errors.size() == kMaxErrorsShown) break;
    errors.push_back(path + ": " + error.message);
  }
  return {{"enabled", true},
          {"dir", folder_ ? folder_->root() : options_.dir},
          {"ready", ready_},
          {"in_sync", InSync()},
          {"index_files", index_.live()},
          {"index_tombstones", index_.tombstones()},
          {"index_purged_through", index_.purged_through()},
          {"local_files", local_.records().size()},
          {"pending_files", pending.files},
          {"pending_bytes", pending.bytes},
          {"looking_at", observe_due_.size() + observing_.size()},
          {"busy", busy_.size()},
          {"announcing", announcing_},
          {"writing", writing_},
          {"announced_total", stats_.announced},
          {"fetched_files_total", stats_.fetched_files},
          {"fetched_bytes_total", stats_.fetched_bytes},
          {"reused_bytes_total", stats_.reused_bytes},
          {"removed_total", stats_.removed},
          {"conflicts_total", index_.conflicts()},
          {"missed_by_watcher_total", stats_.missed_by_watcher},
          {"watches", watcher_ ? watcher_->watches() : 0},
          {"errors", errors}};
}

}  // namespace synod
