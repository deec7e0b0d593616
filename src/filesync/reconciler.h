// Reconciler: what a node must do about one path, from the index's state of it and its own
// record (LocalTable) of what its disk holds and which version that matched.
//
// - The disk matches the index: nothing, or note the version as synced.
// - The disk moved away from the state it last synced (written, deleted, chmod-ed here, or a
//   path the cluster has never seen): announce it, based on the synced version; the index
//   decides conflicts (FileIndex).
// - Otherwise the index moved on: make the disk match it (fetch the file, make the directory
//   or link), or remove the path. A path the index no longer holds at all was deleted and its
//   tombstone purged (FileIndex): the copy is removed if the index has purged past the version
//   it was synced at; if the node's index has not even reached that version yet (a restart,
//   before the log is replayed), nothing is done until it has.
// Pure; the decision depends only on its arguments, so every case is a unit test.
#pragma once

#include <string>

#include "proto/filesync.pb.h"

namespace synod {

enum class SyncAction {
  kNone,
  kMarkSynced,   // the disk already matches the index: record its version
  kAnnounce,     // propose the disk's state (or its absence) to the index
  kMaterialize,  // write the index's state to disk (file, directory, symlink)
  kRemove,       // delete the path from disk
};

const char* SyncActionName(SyncAction action);

// How far this node's copy of the index is.
struct IndexProgress {
  uint64_t applied = 0;         // the newest log index it reflects
  uint64_t purged_through = 0;  // FileIndex::purged_through()
};

// `index` and `local` may be null (no entry, no record).
SyncAction Decide(const wire::FileEntry* index, const wire::LocalFileRecord* local,
                  IndexProgress progress);

// The record's synced state set to `version` holding what the disk holds now.
void MarkSynced(wire::LocalFileRecord& record, uint64_t version);
// After the index refused the record's delete (a write it had not seen won): the node holds
// nothing of the path, still as of the version the delete was based on. So the file is fetched
// back, and a file written here before that is announced as concurrent with the write it did
// not see (both kept), never as an edit of it.
void MarkRefusedDelete(wire::LocalFileRecord& record);

}  // namespace synod
