// RankState: the replicated part of ranks and commands, applied by RankModule.
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
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "proto/ranks.pb.h"

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

  // The whole record, one Delivery per recipient with its state, as readers see it. Builds it:
  // O(recipients). Nullopt once the command is pruned (or if it never existed).
  std::optional<wire::CommandRecord> FindCommand(uint64_t id) const;
  // The same record without its deliveries (id, sender, text, ...). O(log commands).
  const wire::CommandRecord* FindHeader(uint64_t id) const;
  // How many recipients command `id` has (0 if it is unknown). O(log commands).
  size_t RecipientCount(uint64_t id) const;
  // Recipient `index` of command `id` as recorded at commit (key, kind, address, rank); its
  // state is not kept there. Null if there is no such recipient.
  const wire::Delivery* FindRecipient(uint64_t id, uint32_t index) const;
  // Whether `predicate` holds for every recipient of command `id` whose delivery is pending
  // (true if none is, or if there is no such command). Stops at the first that fails it.
  bool AllPendingRecipients(uint64_t id,
                            const std::function<bool(const wire::Delivery&)>& predicate) const;

  // Recipient key -> the deliveries still to make to it: (command id, the recipient's index in
  // that command), ids ascending. A holder keeps its (possibly empty) list while it is ranked,
  // so that applying a command allocates nothing per recipient.
  using PendingDeliveries = std::vector<std::pair<uint64_t, uint32_t>>;
  const std::map<std::string, PendingDeliveries>& pending() const { return pending_; }
  // How many deliveries are pending, to anyone.
  size_t pending_count() const;
  uint64_t last_command_id() const { return next_command_id_ - 1; }
  // Settled commands kept, and commands still being delivered.
  size_t command_count() const { return commands_.size(); }

  void SaveTo(wire::RanksSnapshot& snapshot) const;
  // Replaces the whole state with the snapshot's; the rank list's version becomes
  // `ranks_version`. On error the state is unspecified: load into a fresh RankState.
  Status LoadFrom(const wire::RanksSnapshot& snapshot, uint64_t ranks_version);

  static bool IsSettled(const wire::CommandRecord& record);

 private:
  // The recipients of a command are the holders ranked after its sender when it was committed.
  // Rank lists change rarely and commands are many, so a command shares the list it was sent
  // with (one Delivery per holder, at its rank) and keeps only its recipients' states.
  using Targets = std::vector<wire::Delivery>;
  struct Command {
    wire::CommandRecord header;  // no deliveries
    std::shared_ptr<const Targets> targets;
    uint32_t first = 0;  // recipient i is (*targets)[first + i]
    std::vector<wire::DeliveryState> states;
    std::map<uint32_t, std::string> errors;  // of failed deliveries, by recipient index
    uint32_t pending = 0;
  };

  std::shared_ptr<const Targets> CurrentTargets();
  // Settles one pending delivery (its caller updates pending_); a delivery already settled, or
  // unknown, is left alone.
  void Settle(uint64_t command_id, uint32_t index, bool delivered, const std::string& error);
  void Keep(uint64_t id, Command command);
  // Counts `id` among the settled commands, forgetting the oldest beyond kKeptSettledCommands.
  void MarkSettled(uint64_t id);

  std::vector<wire::RankHolder> holders_;
  uint64_t ranks_version_ = 0;
  std::shared_ptr<const Targets> targets_;  // for holders_, built when a command needs it
  uint64_t targets_version_ = 0;
  std::map<uint64_t, Command> commands_;
  std::set<uint64_t> settled_;  // ids in commands_ that are settled
  std::map<std::string, PendingDeliveries> pending_;
  std::map<std::string, uint64_t> by_request_;
  std::deque<std::pair<uint64_t, std::string>> request_order_;  // ascending command id
  uint64_t next_command_id_ = 1;
};

}  // namespace synod
