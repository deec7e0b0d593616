// TimerOwnership: which node fires which timer.
//
// Rendezvous hashing over the nodes eligible to fire: each timer goes to the node with the
// highest hash of (node, timer), and its backup is the node with the second highest. Every node
// computes the same owner from the same member list, the load is even, and when a node dies or
// leaves only its own timers move (to the others, evenly); when it comes back it takes its share
// back. Pure; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/uuid.h"
#include "proto/consensus.pb.h"

namespace synod {

class TimerOwnership {
 public:
  // The nodes that fire timers: the members that run the timers module and are alive; if none
  // is, those not dead or gone; so a timer always has an owner while the cluster has members.
  static std::vector<std::string> EligibleNodes(
      const std::vector<const wire::MemberRecord*>& members);

  // Replaces the node list; returns whether it changed.
  bool SetNodes(std::vector<std::string> node_ids);
  const std::vector<std::string>& nodes() const { return nodes_; }
  // The owner's and the backup's indexes in nodes(); -1 where there are too few nodes.
  std::pair<int, int> OwnerAndBackupOf(const Uuid& timer) const;
  int OwnerOf(const Uuid& timer) const { return OwnerAndBackupOf(timer).first; }

 private:
  std::vector<std::string> nodes_;  // sorted
  std::vector<uint64_t> node_hashes_;
};

}  // namespace synod
