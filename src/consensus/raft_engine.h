// RaftEngine: the only code that talks to libraft (canonical/raft 0.15, libuv I/O).
//
// Contract:
// - Loop thread only; every callback runs on the loop thread.
// - The state machine is given as a RaftStateMachine; its Apply() result for an entry reaches
//   the proposer's callback (on the node that proposed it; other nodes drop it).
// - Buffers are copied in and out: no caller ever sees raft_malloc/raft_free.
// - Apply() callbacks always run exactly once: with the result, or with an error: kNotLeader
//   (not appended), or kUnknownOutcome (leadership lost or shutting down after the entry was
//   appended: it may still commit).
// Engine features (election and heartbeat timeouts, snapshots, membership changes) are exposed
// as plain values so that the engine could be replaced without touching the features.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/raft_transport.h"
#include "consensus/snapshot_stream.h"
#include "core/event_loop.h"
#include "core/status.h"

struct raft_fsm;
struct raft;

namespace synod {

class RaftStateMachine {
 public:
  virtual ~RaftStateMachine() = default;
  // Applies committed entry `index` (0 where the index is not known); the returned bytes go to
  // the proposer. An error means the entry cannot be applied by this build at all: the engine
  // applies nothing more and reports it as fatal.
  virtual Result<std::string> ApplyEntry(uint64_t index, std::string_view entry) = 0;
  // On the loop: a consistent view, cheap to take; written out on libraft's thread pool.
  virtual std::unique_ptr<SnapshotProducer> CaptureSnapshot() = 0;
  virtual Status RestoreSnapshot(std::string_view snapshot) = 0;
};

enum class RaftRole { kVoter, kStandby, kSpare };
const char* RaftRoleName(RaftRole role);

struct RaftServer {
  uint64_t id = 0;
  std::string address;  // "ip:port"
  RaftRole role = RaftRole::kVoter;
};

struct RaftOptions {
  std::string dir;      // created if missing
  uint64_t id = 0;      // > 0
  std::string address;  // "ip:port", also where it listens
  unsigned election_timeout_ms = 300;
  unsigned heartbeat_timeout_ms = 100;
  unsigned snapshot_threshold = 8192;  // a quarter of it stays in the log after a snapshot
  // The in-memory log's budget: with large entries, snapshots come sooner (SnapshotPacer).
  // 0: the threshold stays fixed.
  size_t log_memory_bytes = 64u << 20;
  unsigned install_snapshot_timeout_ms = 2000;
  RaftTransportOptions transport;
};

// libraft's network encoding assumes every entry payload is a multiple of 8 bytes (it pads
// nothing itself, and a follower decodes a misaligned batch into other entries' bytes). Every
// entry and snapshot therefore travels framed: a 4-byte little-endian length, the 4 bytes
// "SYN1", the payload, zero padding to a multiple of 8.
std::string FrameRaftPayload(std::string_view payload);
// The payload of a framed buffer, or an error for anything that is not one.
Result<std::string_view> UnframeRaftPayload(std::string_view framed);

// What the snapshots taken so far cost.
struct SnapshotStats {
  uint64_t taken = 0;     // written out
  double capture_ms = 0;  // the last one's capture, on the loop
  double write_ms = 0;    // the last one's serialization, on the thread pool
  uint64_t bytes = 0;     // the last one's size
};

// Derives a Raft server id (non-zero) from a node id of hex digits.
uint64_t RaftIdFromNodeId(const std::string& node_id);

// Hears every entry applied to the state machine, with its Raft index, whichever way it came
// (the Raft log, or the leader's feed to spares), and every snapshot restored.
struct AppliedEntryObserver {
  std::function<void(uint64_t index, std::string_view payload)> on_entry;
  // `index` is 0 when it is not known yet (libraft sets it only after the restore).
  std::function<void(uint64_t index)> on_restore;
  // The state machine cannot apply an entry (or restore a snapshot) at all; nothing more is
  // applied. The node must stop: see RaftStateMachine::ApplyEntry.
  std::function<void(const Status& why)> on_fatal;
};

// What the spare feed (SpareFeed) uses of the engine: RaftEngine, or a simulation's stand-in.
class FeedEngine {
 public:
  virtual ~FeedEngine() = default;
  virtual bool started() const = 0;
  virtual bool IsLeader() const = 0;
  virtual std::optional<RaftServer> Leader() const = 0;
  virtual uint64_t term() const = 0;
  // The newest entry the state machine holds: applied from the log or from the feed.
  virtual uint64_t applied_index() const = 0;
  // The role of server `id` in the configuration, if it is in it.
  virtual std::optional<RaftRole> RoleOf(uint64_t id) const = 0;
  // Entries that reach a spare outside Raft, through the leader's feed. They go through the
  // engine so that each index is applied once whichever way it comes: when the log later brings
  // an entry the feed already applied (a spare promoted), it is skipped.
  // Applies committed entry `index`, if it is newer than applied_index().
  virtual void ApplyFed(uint64_t index, std::string_view payload) = 0;
  // Entries up to `index` that change no state (Raft's own) were committed too.
  virtual void FedThrough(uint64_t index) = 0;
  // Replaces the state with the leader's, as of `index`: `install` swaps the new state in.
  virtual Status RestoreFed(uint64_t index, const std::function<Status()>& install) = 0;
};

// What the leader's membership duties (LeaderMembership) use of the engine: the configuration
// and changes to it. RaftEngine, or a simulation's stand-in.
class ConfigurationEngine {
 public:
  using ChangeCallback = std::function<void(Status status)>;

  virtual ~ConfigurationEngine() = default;
  virtual bool IsLeader() const = 0;
  virtual std::vector<RaftServer> Configuration() const = 0;
  // Adds server `id` as a spare; `done` runs once the change is committed, or with why not.
  virtual void Add(uint64_t id, const std::string& address, ChangeCallback done) = 0;
  virtual void Assign(uint64_t id, RaftRole role, ChangeCallback done) = 0;
  virtual void Remove(uint64_t id, ChangeCallback done) = 0;
};

class RaftEngine final : public FeedEngine, public ConfigurationEngine {
 public:
  using ApplyCallback = std::function<void(Result<std::string> result, uint64_t index)>;

  RaftEngine(EventLoop& loop, RaftOptions options, RaftStateMachine& fsm);
  ~RaftEngine() override;

  // Opens the data directory. Errors carry the engine's message (for example an unsupported
  // filesystem).
  Status Open();
  // Makes this node the first and only voter of a new cluster; between Open() and Start().
  // Returns false, without an error, when the directory already holds a cluster.
  Result<bool> BootstrapSelf();
  // Starts replicating: loads what is on disk and listens on the address.
  Status Start();
  // Whether the data directory holds Raft state from an earlier run.
  static bool HasState(const std::string& dir);

  void Apply(std::string payload, ApplyCallback done);
  // ConfigurationEngine.
  void Add(uint64_t id, const std::string& address, ChangeCallback done) override;
  void Assign(uint64_t id, RaftRole role, ChangeCallback done) override;
  void Remove(uint64_t id, ChangeCallback done) override;
  std::vector<RaftServer> Configuration() const override;
  // Commits an entry that changes no state. `done` runs with Ok once it is applied here: this
  // node led after the call, and every entry committed before the call is applied. Errors:
  // kNotLeader, or kUnknownOutcome when leadership was lost meanwhile.
  void Barrier(std::function<void(Status)> done);
  // Hands leadership to `id` (0: any voter). `done` runs when the transfer ends either way.
  void Transfer(uint64_t id, std::function<void()> done);
  // Closes the engine; `done` runs when every resource is released.
  void Close(std::function<void()> done);

  // FeedEngine, and ConfigurationEngine's IsLeader.
  bool started() const override { return started_; }
  bool IsLeader() const override;
  std::optional<RaftServer> Leader() const override;
  uint64_t term() const override;
  uint64_t applied_index() const override;
  std::optional<RaftRole> RoleOf(uint64_t id) const override;
  void ApplyFed(uint64_t index, std::string_view payload) override;
  void FedThrough(uint64_t index) override;
  Status RestoreFed(uint64_t index, const std::function<Status()>& install) override;

  uint64_t commit_index() const;
  const RaftOptions& options() const { return options_; }
  void SetAppliedObserver(AppliedEntryObserver observer);
  SnapshotStats snapshot_stats() const;
  RaftConnectionStats connection_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  RaftOptions options_;
  bool opened_ = false;
  bool started_ = false;
};

// A raft_fsm that drives a RaftStateMachine, for the engine and for tests that use libraft's
// in-memory fixture. The RaftStateMachine must outlive the adapter. Snapshots are asynchronous
// (fsm version 3): captured on the loop, written out on the I/O's worker thread.
class RaftFsmAdapter {
 public:
  explicit RaftFsmAdapter(RaftStateMachine& machine);
  ~RaftFsmAdapter();
  RaftFsmAdapter(const RaftFsmAdapter&) = delete;
  RaftFsmAdapter& operator=(const RaftFsmAdapter&) = delete;
  raft_fsm* get();

  // The server whose entries this applies: it gives each entry its index. Without it, entries
  // have index 0, none is skipped and fed entries cannot be taken.
  void Attach(const struct raft* server);
  // Hears the size of every entry libraft applies (the engine paces its snapshots with it).
  void SetEntrySizeListener(std::function<void(size_t bytes)> listener);
  // As RaftEngine's members of the same names.
  uint64_t applied_index() const;
  void ApplyFed(uint64_t index, std::string_view payload);
  void FedThrough(uint64_t index);
  Status RestoreFed(uint64_t index, const std::function<Status()>& install);
  void SetAppliedObserver(AppliedEntryObserver observer);
  SnapshotStats snapshot_stats() const;
  // Applies nothing more and reports `why` as fatal (AppliedEntryObserver::on_fatal).
  void Halt(const Status& why);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synod
