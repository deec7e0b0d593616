#include "filesync/reconciler.h"

#include "filesync/file_index.h"

namespace synod {

const char* SyncActionName(SyncAction action) {
  switch (action) {
    case SyncAction::kNone:
      return "none";
    case SyncAction::kMarkSynced:
      return "mark synced";
    case SyncAction::kAnnounce:
      return "announce";
    case SyncAction::kMaterialize:
      return "materialize";
    case SyncAction::kRemove:
      return "remove";
  }
  return "?";
}

SyncAction Decide(const wire::FileEntry* index, const wire::LocalFileRecord* local,
                  IndexProgress progress) {
  // Synced at a version this copy of the index has not reached (a restart, before the log is
  // replayed): its entry is on the way, and nothing is done about the path until it is here.
  if (index == nullptr && local != nullptr && local->synced_version() > progress.applied) {
    return SyncAction::kNone;
  }
  const std::string wanted = index == nullptr ? "" : ContentKey(*index);
  const std::string on_disk = local == nullptr ? "" : ContentKey(*local);
  const uint64_t index_version = index == nullptr ? 0 : index->version();
  if (wanted == on_disk) {
    if (local == nullptr ||
        (local->synced_version() == index_version && local->synced_key() == on_disk &&
         local->synced_present() == !on_disk.empty())) {
      return SyncAction::kNone;
    }
    return SyncAction::kMarkSynced;
  }
  const std::string synced = local != nullptr && local->synced_present() ? local->synced_key() : "";
  if (on_disk != synced) return SyncAction::kAnnounce;
  // The disk holds what it last synced; the index changed since.
  if (index == nullptr) {
    // Deleted, and the tombstone purged since.
    const uint64_t synced_at = local->synced_version();
    if (synced_at > 0 && synced_at <= progress.purged_through) return SyncAction::kRemove;
    // An index that never saw the path (never synced here, or lost) deletes nothing: the file
    // is offered.
    return SyncAction::kAnnounce;
  }
  return wanted.empty() ? SyncAction::kRemove : SyncAction::kMaterialize;
}

void MarkSynced(wire::LocalFileRecord& record, uint64_t version) {
  record.set_synced_version(version);
  record.set_synced_present(record.present());
  record.set_synced_key(ContentKey(record));
}

void MarkRefusedDelete(wire::LocalFileRecord& record) {
  record.set_synced_present(false);
  record.clear_synced_key();
}

}  // namespace synod
