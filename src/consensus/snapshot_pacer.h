// SnapshotPacer: keeps libraft's in-memory log within a byte budget.
//
// libraft holds every entry since the last snapshot (plus a trailing quarter) in memory, and
// counts its snapshot threshold in entries. Entries range from a few bytes (one small command)
// to over 100 KB (a batch of a thousand writes), so a fixed count is either too many bytes or
// too many snapshots. The pacer follows the entries' average size and lowers the threshold so
// that threshold * 1.25 entries fit the budget, never above the configured threshold nor below
// a floor. Pure: no I/O, no clock; not thread-safe.
#pragma once

#include <cstddef>
#include <optional>

namespace synod {

class SnapshotPacer {
 public:
  static constexpr unsigned kFloor = 64;
  static constexpr unsigned kSampleEntries = 32;

  SnapshotPacer(size_t budget_bytes, unsigned max_threshold)
      : budget_(budget_bytes), max_(max_threshold), threshold_(max_threshold) {}

  // One entry applied; returns the threshold to set when it should change.
  std::optional<unsigned> OnEntry(size_t bytes);
  unsigned threshold() const { return threshold_; }

 private:
  size_t budget_;
  unsigned max_;
  unsigned threshold_;
  double average_ = 0;  // bytes per entry, smoothed
  size_t sample_bytes_ = 0;
  unsigned sample_entries_ = 0;
};

}  // namespace synod
