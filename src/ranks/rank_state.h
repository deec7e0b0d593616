// RankState: the replicated part of ranks and commands, applied by ClusterState.
//
// Holds the rank list (rank = position; 0 joined first; when a holder leaves, the ones behind
// move up) and the commands sent through it: each command targets every holder ranked after
// its sender when it is committed, and records per recipient whether it was delivered. A
// command is "settled" once no delivery is pending. Settled commands are kept for reading (the
// last kKeptSettledCommands), and request ids for deduplicating retried sends (the last
// kKeptRequestIds). Pure and deterministic: time comes in as arguments, there is no I/O, and
// what is pruned depends only on the state. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "proto/consensus.pb.h"

namespace synod {

// An external client's address as a rank key: "host:port", accepting an http:// or https://
// scheme and one trailing slash, as seed clients send them. Errors say what is wrong.
Result<std::string> NormalizeExternalAddress(const std::string& address);

class RankState {
 public:
  static constexpr size_t kKeptSettledCommands = 1000;
  static constexpr size_t kKeptRequestIds = 16384;
  static constexpr size_t kMaxCommandBytes = 64 * 1024;

  // Ranks `key` last, or, if it is ranked already, keeps its rank and updates its address.
  // Returns its rank.
  uint32_t Assign(wire::RankKind kind, const std::string& key, const std::string& address,
                  int64_t at_nanos);
  // Unranks `key`: the holders behind it move up and its pending deliveries fail with
  // `reason`. False if it was not ranked.
  bool Unassign(const std::string& key, const std::string& reason);
  std::optional<uint32_t> RankOf(const std::string& key) const;
  const std::vector<wire::RankHolder>& holders() const { return holders_; }
  // Changes whenever the rank list does.
  uint64_t ranks_version() const { return ranks_version_; }

  // Records a command from `sender` to every holder ranked after it. A request id seen before
  // returns the command it created.
  Result<uint64_t> AddCommand(const std::string& request_id, const std::string& sender,
                              const std::string& text, int64_t at_nanos);
  // Settles every delivery to `recipient` still pending up to command `through` as delivered.
  void DeliveredThrough(const std::string& recipient, uint64_t through);
  const wire::CommandRecord* FindCommand(uint64_t id) const;
  // Recipient key -> ids of the commands still to deliver to it, ascending.
  const std::map<std::string, std::set<uint64_t>>& pending() const { return pending_; }
  uint64_t last_command_id() const { return next_command_id_ - 1; }
  // Settled commands kept, and commands still being delivered, by id.
  const std::map<uint64_t, wire::CommandRecord>& commands() const { return commands_; }

  void SaveTo(wire::ClusterSnapshot& snapshot) const;
  Status LoadFrom(const wire::ClusterSnapshot& snapshot);

  static bool IsSettled(const wire::CommandRecord& record);

 private:
  // Settles one pending delivery; a delivery already settled, or unknown, is left alone.
  void Settle(uint64_t command_id, const std::string& recipient, bool delivered,
              const std::string& error);
  void MarkSettledIfDone(const wire::CommandRecord& record);

  std::vector<wire::RankHolder> holders_;
  uint64_t ranks_version_ = 0;
  std::map<uint64_t, wire::CommandRecord> commands_;
  std::set<uint64_t> settled_;  // ids in commands_ that are settled
  std::map<std::string, std::set<uint64_t>> pending_;
  std::map<std::string, uint64_t> by_request_;
  std::deque<std::pair<uint64_t, std::string>> request_order_;  // ascending command id
  uint64_t next_command_id_ = 1;
};

}  // namespace synod
