// SyncService: keeps this node's folder identical to the replicated index (FileIndex), and the
// index up to date with what is written in the folder.
//
// Local changes: the watcher (inotify) reports a path; once the writer is done (a close after
// writing, or a quiet period) the path is looked at and hashed on the thread pool, compared
// with the node's own record (LocalTable), and announced to the index if it moved away from
// what was last synced. A full scan at start (against the record kept in the data dir) finds
// what changed while the node was down; a slow periodic rescan is the safety net, and says so
// in the log if it finds something the watcher missed.
//
// Others' changes: every applied index entry is reconciled (Decide). A file is fetched block by
// block: blocks some local file already holds are copied (the old version of the file, a file
// it was renamed from), the others are asked from the other members, several at once, the
// announcing node first; each block is checked against its SHA-256. The file is assembled in a
// temporary file beside its place, fsynced and renamed in (Folder). Before a file is replaced
// or deleted, content that the index still wants at another path (a conflict copy, a renamed
// file) is copied there first, so nothing is lost and a rename moves no data.
//
// Loop thread only; file I/O runs on the thread pool.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "consensus/consensus_service.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "filesync/file_index.h"
#include "filesync/folder.h"
#include "filesync/folder_watcher.h"
#include "filesync/ignore_rules.h"
#include "filesync/local_table.h"
#include "filesync/reconciler.h"
#include "peer/peer_service.h"

namespace synod {

struct SyncOptions {
  std::string dir;  // the folder
  std::string data_dir;
  std::string self_id;
  std::string self_name;  // in conflict copies' names
  // A path modified but not closed is looked at after this long without further changes.
  std::chrono::milliseconds quiet_period{100};
  std::chrono::seconds rescan_period{300};
  size_t max_writes = 64;          // files being fetched or written at once
  size_t max_block_requests = 64;  // block requests in flight, all peers together
  // Threads verifying received blocks at once: more than the cores would only take the CPU
  // from the loop that keeps the transfers going.
  size_t verifiers = std::max(1u, std::thread::hardware_concurrency());
  // Batches of blocks read for peers at once: a disk reading files that are not in the cache
  // wants a few reads queued; more take threads and CPU from the transfers.
  size_t block_readers = 4;
  size_t max_announcements = 4096;  // proposals in flight
  std::chrono::milliseconds block_timeout{3000};
  EventSink events;  // told of files this node wrote or removed for the cluster, and conflicts
};

// Counters since start, for /v1/sync and /metrics.
struct SyncStats {
  static constexpr std::array<double, 10> kLatencyBounds = {0.005, 0.01, 0.02, 0.05, 0.1,
                                                            0.25,  0.5,  1,    2.5,  10};
  uint64_t announced = 0;
  uint64_t fetched_files = 0;
  uint64_t fetched_bytes = 0;  // block bytes received from peers
  uint64_t reused_bytes = 0;   // block bytes copied from local files
  uint64_t removed = 0;
  uint64_t conflicts = 0;  // conflict copies written here
  uint64_t missed_by_watcher = 0;
  uint64_t blocks_served = 0;
  uint64_t bytes_served = 0;
  uint64_t rejected_blocks = 0;  // a block whose hash did not match
  // Commit of an entry to the file being in place here (entries of other nodes), seconds.
  std::array<uint64_t, kLatencyBounds.size()> latency_buckets{};
  uint64_t latency_count = 0;
  double latency_sum = 0;
};

class SyncService {
 public:
  SyncService(EventLoop& loop, const Clock& clock, ConsensusService& consensus, PeerService& peers,
              FileIndex& index, SyncOptions options);
  ~SyncService();

  // Checks the folder and the data dir (not inside the folder), loads the local record and
  // starts watching and the first scan.
  Status Start();
  void Stop();

  nlohmann::json StatusJson() const;
  const SyncStats& stats() const { return stats_; }
  bool InSync() const;

 private:
  struct Fetch;
  struct Pending {
    size_t files = 0;
    uint64_t bytes = 0;
  };

  // Local changes.
  void OnWatcherChange(const FolderWatcher::Change& change);
  void ObserveLater(const std::string& path, std::chrono::milliseconds delay);
  struct PathToObserve {
    std::string path;
    std::optional<wire::LocalFileRecord> known;  // its hashes are reused if the file is unchanged
  };
  void ObserveDue();
  void ArmObserveTimer(MonoTime due);
  void ObserveBatch(std::vector<PathToObserve> batch);
  void OnObserved(std::vector<std::pair<std::string, Result<wire::LocalFileRecord>>> results);
  void Rescan(const std::string& under, bool initial);
  void OnScanned(const std::string& under, Folder::ScanResult scan, bool initial);
  void LoadIgnoreRules();
  bool Ignored(const std::string& path, bool is_directory) const;

  // Reconciling.
  IndexProgress Progress() const;
  void MarkDirty(const std::string& path);
  void DrainDirty();
  void Reconcile(const std::string& path);
  void Done(const std::string& path);  // the path is no longer busy: look at it again
  void Announce(const std::string& path, const wire::LocalFileRecord* local);
  void OnAnnounced(const std::string& path, const std::string& announced_key,
                   const Result<Committed>& result);
  void StartWrite(const std::string& path);
  void RunWrites();
  void Materialize(const std::string& path);
  void Remove(const std::string& path);
  // Paths (and their entries) that want the content of `local` and do not have it here yet.
  std::vector<wire::FileEntry> PreserveTargets(const wire::LocalFileRecord& local) const;
  void Finished(const std::string& path, Result<wire::LocalFileRecord> outcome,
                std::vector<wire::LocalFileRecord> preserved, uint64_t version);
  // Runs the path again after a delay doubling from 1 s up to `cap` while it keeps failing.
  void RetryLater(const std::string& path, const Status& why,
                  std::chrono::milliseconds cap = std::chrono::seconds(10));
  Pending CountPending() const;

  // Fetching blocks.
  void StartFetch(const std::string& path, const wire::FileEntry& entry,
                  std::optional<wire::LocalFileRecord> expected);
  void RequestBlocks();
  // Which of the fetch's sources to ask for the block next, and notes it as asked; none once
  // every source was.
  static std::optional<size_t> NextSource(Fetch& fetch, const std::string& hash);
  void OnBlock(std::shared_ptr<Fetch> fetch, const std::string& hash, size_t source,
               Result<wire::PeerMessage> response);
  // Gives up the request of a block `source` did not send (or sent wrong): the block goes back
  // to the front of the queue, for the next source, and `source` comes last for the file.
  void AskElsewhere(const std::shared_ptr<Fetch>& fetch, const std::string& hash, size_t source);
  // Verifies received blocks against their hashes, at most `verifiers` batches at once.
  void VerifyBlocks();
  // Writes the blocks the fetch has verified, one batch at a time.
  void WriteBlocks(std::shared_ptr<Fetch> fetch);
  // Makes what the fetch wrote durable, in the background, once there is enough of it.
  void FlushSome(std::shared_ptr<Fetch> fetch);
  void FinishFetch(std::shared_ptr<Fetch> fetch);
  void ServeBlock(const wire::PeerMessage& request, PeerService::Reply reply);
  // Reads the blocks asked for, in batches (one open per file of a batch), at most
  // `block_readers` batches at once, and answers each.
  void ServeQueued();
  std::vector<Ipv4> SourcesFor(const wire::FileEntry& entry) const;

  // Runs `then` once this node has applied the entry at `index` (at once if it has).
  void AfterApplied(uint64_t index, std::function<void()> then);
  void RunApplied(bool all);

  // Runs `work` on the thread pool, then `done` on the loop; neither once Stop() was called.
  void Background(std::function<void()> work, std::function<void()> done);

  void SaveSoon();
  void Save();

  EventLoop& loop_;
  const Clock& clock_;
  ConsensusService& consensus_;
  PeerService& peers_;
  FileIndex& index_;
  SyncOptions options_;
  std::optional<Folder> folder_;
  std::unique_ptr<FolderWatcher> watcher_;
  IgnoreRules ignore_;
  LocalTable local_;
  std::string table_path_;
  std::string table_cluster_id_;  // of the cluster that wrote the table

  bool ready_ = false;  // the first scan is done
  bool stopped_ = false;
  std::map<std::string, MonoTime> observe_due_;
  std::set<std::string> observing_;
  std::set<std::string> observe_again_;
  std::set<std::string> observe_when_done_;  // changed while busy_
  Timer observe_timer_;
  std::optional<MonoTime> observe_armed_;

  std::set<std::string> dirty_;
  bool drain_scheduled_ = false;
  std::set<std::string> busy_;
  std::set<std::string> again_;  // changed while busy
  size_t announcing_ = 0;
  std::deque<std::string> waiting_for_room_;  // changes to announce once fewer are in flight
  std::set<std::string> waiting_room_;
  std::deque<std::string> write_queue_;
  std::set<std::string> write_queued_;
  size_t writing_ = 0;
  std::deque<std::pair<std::shared_ptr<Fetch>, std::string>> block_queue_;
  struct ReceivedBlock {
    std::shared_ptr<Fetch> fetch;
    std::string hash;
    size_t source;  // index in the fetch's sources
    std::string received;
    AlignedBytes data;  // `received`, once verified
    bool matches;
  };
  std::deque<ReceivedBlock> to_verify_;
  size_t verifying_ = 0;
  struct BlockToServe {
    LocalTable::BlockSource source;
    std::optional<wire::LocalFileRecord> hashed_as;  // its file's stat when it was hashed
    std::string hash;
    std::function<void(std::string data, std::string error)> answer;
  };
  std::deque<BlockToServe> to_serve_;
  size_t serving_ = 0;
  size_t block_requests_ = 0;  // requested, or received and not written yet
  uint64_t next_unique_ = 0;

  Timer rescan_timer_;
  Timer save_timer_;
  bool save_scheduled_ = false;
  bool saving_ = false;
  struct TableFiles {
    std::mutex mutex;
    uint64_t saved = 0;  // generation on disk
  };
  std::shared_ptr<TableFiles> table_files_ = std::make_shared<TableFiles>();
  uint64_t table_generation_ = 0;
  std::multimap<uint64_t, std::function<void()>> after_applied_;
  struct PathError {
    std::string message;
    int retries = 0;
  };
  std::map<std::string, PathError> errors_;  // the last error of a path, until it passes
  SyncStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::shared_ptr<std::atomic<bool>> stopping_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace synod
