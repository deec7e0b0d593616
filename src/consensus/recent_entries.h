// RecentEntries: the latest state-machine entries applied on this node, by Raft index, so that
// a leader can feed spares what they miss without reading the Raft log (libraft offers no way
// to). Bounded in count and bytes; a spare further behind gets a snapshot instead.
// Loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <string_view>

#include "proto/peer.pb.h"

namespace synod {

class RecentEntries {
 public:
  RecentEntries(size_t max_entries, size_t max_bytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // Every entry applied, in index order.
  void Record(uint64_t index, std::string_view payload);
  // The state was replaced by a snapshot as of `index` (0: not known): what came before it
  // can no longer be served.
  void Restored(uint64_t index);
  // Adds to `feed` every entry after `after`, up to `through`. False, and nothing added, when
  // some of them are no longer kept.
  bool Collect(uint64_t after, uint64_t through, wire::EntryFeed& feed) const;

  size_t size() const { return entries_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  static constexpr uint64_t kUnknown = std::numeric_limits<uint64_t>::max();
  struct Entry {
    uint64_t index;
    std::string payload;
  };

  size_t max_entries_;
  size_t max_bytes_;
  std::deque<Entry> entries_;
  size_t bytes_ = 0;
  // Every entry after this index is kept; kUnknown right after a restore of unknown index,
  // until the next entry tells.
  uint64_t complete_after_ = 0;
};

}  // namespace synod
