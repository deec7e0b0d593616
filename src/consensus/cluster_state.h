// ClusterState: the deterministic state machine replicated by Raft.
//
// Holds the cluster id, the member records, the master clock choice, the ranks and commands
// (RankState) and the key/value debugging surface. Apply() takes
// one log entry (a serialized CommandBatch) and returns one result per command; it reads no
// clock, draws no random number and does no I/O, so every node that applies the same entries
// ends in the same state. Snapshot()/Restore() serialize the whole state. Malformed entries are
// answered with errors, never trusted. Not thread-safe: the loop thread owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/raft_engine.h"
#include "core/status.h"
#include "proto/consensus.pb.h"
#include "ranks/rank_state.h"

namespace synod {

inline constexpr uint32_t kCommandBatchVersion = 1;
inline constexpr uint32_t kSnapshotVersion = 1;

class ClusterState final : public RaftStateMachine {
 public:
  // Applies one entry; returns one result per command, in order.
  std::vector<wire::CommandResult> Apply(std::string_view entry);
  std::string Snapshot() const;
  Status Restore(std::string_view snapshot);

  // RaftStateMachine: the entry's results travel as a serialized wire::BatchResult.
  std::string ApplyEntry(std::string_view entry) override;
  std::string TakeSnapshot() override { return Snapshot(); }
  Status RestoreSnapshot(std::string_view snapshot) override { return Restore(snapshot); }

  const std::string& cluster_id() const { return cluster_id_; }
  // Members in join order, those that left included.
  std::vector<const wire::MemberRecord*> MembersInJoinOrder() const;
  const wire::MemberRecord* FindMember(const std::string& id) const;
  const wire::MemberRecord* FindMemberByRaftId(uint64_t raft_id) const;
  std::optional<std::string> Get(const std::string& key) const;
  const std::string& master_id() const { return master_id_; }
  const RankState& ranks() const { return ranks_; }
  // Runs after every applied entry and every restored snapshot (never during one), so that
  // modules can act on what changed. Must not apply anything itself.
  void AddChangeListener(std::function<void()> listener) {
    change_listeners_.push_back(std::move(listener));
  }
  // A digest of the whole state, to compare replicas in tests.
  std::string Fingerprint() const { return Snapshot(); }

 private:
  wire::CommandResult ApplyOne(const wire::Command& command);
  wire::CommandResult ApplyRanks(const wire::Command& command);
  void NotifyChange() const;

  std::string cluster_id_;
  std::map<std::string, wire::MemberRecord> members_;  // by node id
  std::map<std::string, std::string> kv_;
  uint64_t next_join_order_ = 0;
  uint64_t commands_applied_ = 0;
  std::string master_id_;
  int64_t master_since_nanos_ = 0;
  RankState ranks_;
  std::vector<std::function<void()>> change_listeners_;
};

// Builds a one-command entry.
std::string EncodeCommands(const std::vector<wire::Command>& commands);

}  // namespace synod
