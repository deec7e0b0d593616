// TombstonePurger: the leader's duty of dropping the file index's tombstones once they are older
// than the retention (FileIndex::Purge). Every node runs one, whether it syncs a folder or not;
// only the leader's proposes, and only when the oldest tombstone is past the retention. A node
// that missed the delete removes its copy when it finds the path purged (Decide), so a deleted
// file does not come back however long it was down. Loop thread only.
#pragma once

#include <chrono>
#include <memory>

#include "consensus/consensus_service.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "filesync/file_index.h"

namespace synod {

class TombstonePurger {
 public:
  // `clock` is the cluster's (entries are stamped with it); everything must outlive this.
  TombstonePurger(EventLoop& loop, const Clock& clock, ConsensusService& consensus,
                  const FileIndex& index, std::chrono::milliseconds retention);
  ~TombstonePurger() { *alive_ = false; }

  void Start();
  void Stop() { timer_.Stop(); }

 private:
  void Check();

  const Clock& clock_;
  ConsensusService& consensus_;
  const FileIndex& index_;
  std::chrono::milliseconds retention_;
  Timer timer_;
  bool proposing_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace synod
