// ReplicatedState: the state machine Raft replicates, as a registry of feature modules.
//
// A log entry (wire::Entry) carries the leader's time and a batch of operations, each naming a
// module, its command version and bytes. Apply() routes each operation to its module, in order,
// and returns one result per operation. An operation with a request id seen recently returns
// the first result instead of being applied again (a retried proposal lands once); the ids kept
// are part of the state and of snapshots, so every node deduplicates alike.
//
// Before anything of an entry is applied, the whole entry is checked: an entry of an unknown
// format, or an operation for a module or version this build does not know, is refused as a
// whole with an kUnsupported error, and the node must stop (applying the rest would diverge
// from nodes that understand it). Snapshots are read the same way.
//
// Snapshots: Capture() takes every module's view on the loop (cheap, see StateModule) and
// returns a producer that writes the stream anywhere, later. Restore() reads a whole stream
// into new module states and installs them only if every section was read.
//
// Loop thread only (the producer returned by Capture() excepted). Modules are not owned and
// must outlive the registry; register them all before the engine starts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/raft_engine.h"
#include "consensus/snapshot_stream.h"
#include "consensus/state_module.h"
#include "core/cow_map.h"
#include "proto/consensus.pb.h"

namespace synod {

inline constexpr uint32_t kEntryFormat = 2;

// Serializes a batch of operations as one log entry.
std::string EncodeEntry(int64_t at_nanos, const std::vector<wire::Op>& ops);
// The operation that carries `proposal` in an entry (its request id as given, maybe empty).
wire::Op OpOf(Proposal proposal);

// A streaming restore: the stream's bytes in pieces, then Commit() installs every module's new
// state at once. Abandoning the session leaves the state as it was.
class RestoreSession {
 public:
  virtual ~RestoreSession() = default;
  virtual Status Feed(std::string_view bytes) = 0;
  // Checks that the stream is complete, then installs it. On error nothing changed.
  virtual Status Commit() = 0;
};

class ReplicatedState final : public RaftStateMachine {
 public:
  static constexpr size_t kKeptRequestIds = 65536;

  ReplicatedState();
  ~ReplicatedState() override;

  // A second module of the same name is a programming error and aborts.
  void Register(StateModule& module);
  // Every registered module and its version, for the member record.
  std::map<std::string, uint32_t> ModuleVersions() const;
  // The version of a module operations may address; nothing for an unknown one.
  std::optional<uint32_t> ProposableVersion(std::string_view module) const;

  // Applies one entry; on an unsupported entry, nothing is applied and the error says why.
  Result<std::vector<wire::OpResult>> Apply(uint64_t index, std::string_view entry);
  std::unique_ptr<SnapshotProducer> Capture() const;
  std::unique_ptr<RestoreSession> BeginRestore();
  // A whole stream at once.
  Status Restore(std::string_view snapshot);

  // RaftStateMachine.
  Result<std::string> ApplyEntry(uint64_t index, std::string_view entry) override;
  std::unique_ptr<SnapshotProducer> CaptureSnapshot() override { return Capture(); }
  Status RestoreSnapshot(std::string_view snapshot) override { return Restore(snapshot); }

  // Runs after every applied entry and every restore (never during one), so that services can
  // act on what changed. Must not apply anything itself. Any number of listeners.
  void AddChangeListener(std::function<void()> listener) {
    change_listeners_.push_back(std::move(listener));
  }
  // How many request ids are kept for deduplication.
  size_t kept_request_ids() const;
  uint64_t entries_applied() const { return entries_applied_; }

 private:
  class Session;
  class RequestLog;  // the registry's own module, "requests"
  void NotifyChange() const;
  // The module that reads `module` at `version` in `where` (an entry, a snapshot); an
  // kUnsupported error if this build has none. The request log takes no commands.
  Result<StateModule*> Reader(const std::string& where, const std::string& module, uint32_t version,
                              bool takes_commands) const;

  std::map<std::string, StateModule*, std::less<>> modules_;
  std::unique_ptr<RequestLog> requests_;
  uint64_t entries_applied_ = 0;
  std::vector<std::function<void()>> change_listeners_;
};

}  // namespace synod
