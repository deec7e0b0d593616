#include "filesync/tombstone_purger.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace synod {

TombstonePurger::TombstonePurger(EventLoop& loop, const Clock& clock, ConsensusService& consensus,
                                 const FileIndex& index, std::chrono::milliseconds retention)
    : clock_(clock), consensus_(consensus), index_(index), retention_(retention), timer_(loop) {}

void TombstonePurger::Start() {
  // Tombstones outlive the retention by at most a quarter of it (and a minute).
  const auto period = std::clamp<std::chrono::milliseconds>(
      retention_ / 4, std::chrono::milliseconds(100), std::chrono::minutes(1));
  timer_.Start(period, period, [this] { Check(); });
}

void TombstonePurger::Check() {
  if (proposing_ || !consensus_.IsLeader()) return;
  const std::optional<int64_t> oldest = index_.OldestTombstoneNanos();
  const int64_t before = clock_.WallUtcNanos() -
                         std::chrono::duration_cast<std::chrono::nanoseconds>(retention_).count();
  if (!oldest || *oldest >= before) return;
  proposing_ = true;
  consensus_.Propose(FileIndex::Purge(before), [this, alive = alive_](Result<Committed> result) {
    if (!*alive) return;
    proposing_ = false;
    // Not every member runs a build that knows the purge yet, or no quorum: next time.
    if (!result.ok()) spdlog::debug("filesync: cannot purge tombstones: {}", result.error());
  });
}

}  // namespace synod
