#include "filesync/reconciler.h"

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "filesync/file_index.h"
#include "filesync/folder.h"
#include "filesync/local_table.h"

namespace synod {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kT0 = 1'795'961'100 * kSecond;  // 2026-11-29T14:05:00Z

void SetContent(const std::string& content, std::string* hash,
                google::protobuf::RepeatedPtrField<std::string>* blocks) {
  *hash = Sha256(content);
  blocks->Clear();
  for (size_t at = 0; at < content.size(); at += kFileBlockSize) {
    *blocks->Add() = Sha256(std::string_view(content).substr(at, kFileBlockSize));
  }
}

// The index's state of a file holding `content`.
wire::FileEntry IndexFile(const std::string& path, const std::string& content, uint64_t version,
                          uint32_t mode = 0644) {
  wire::FileEntry entry;
  entry.set_path(path);
  entry.set_kind(wire::KIND_FILE);
  entry.set_version(version);
  entry.set_size(content.size());
  entry.set_mode(mode);
  entry.set_mtime_nanos(kT0);
  SetContent(content, entry.mutable_hash(), entry.mutable_blocks());
  entry.set_origin("node-x");
  return entry;
}

wire::FileEntry IndexTombstone(const std::string& path, uint64_t version) {
  wire::FileEntry entry;
  entry.set_path(path);
  entry.set_deleted(true);
  entry.set_version(version);
  entry.set_origin("node-x");
  return entry;
}

// What a node's disk holds: a file with `content`, not synced yet.
wire::LocalFileRecord DiskFile(const std::string& path, const std::string& content,
                               uint32_t mode = 0644, int64_t mtime = kT0) {
  wire::LocalFileRecord record;
  record.set_path(path);
  record.set_present(true);
  record.set_kind(wire::KIND_FILE);
  record.set_size(content.size());
  record.set_mode(mode);
  record.set_mtime_nanos(mtime);
  record.set_inode(42);
  SetContent(content, record.mutable_hash(), record.mutable_blocks());
  return record;
}

// The record of a path that is no longer on disk.
wire::LocalFileRecord DiskAbsent(const std::string& path) {
  wire::LocalFileRecord record;
  record.set_path(path);
  return record;
}

// `record` synced at `version` (what the disk holds now is what that version holds).
wire::LocalFileRecord Synced(wire::LocalFileRecord record, uint64_t version) {
  MarkSynced(record, version);
  return record;
}

// `now` on disk, after the node had synced `before` at `version`.
wire::LocalFileRecord Changed(const wire::LocalFileRecord& before, uint64_t version,
                              wire::LocalFileRecord now) {
  const wire::LocalFileRecord synced = Synced(before, version);
  now.set_synced_version(synced.synced_version());
  now.set_synced_present(synced.synced_present());
  now.set_synced_key(synced.synced_key());
  return now;
}

std::string Describe(const wire::FileEntry* index, const wire::LocalFileRecord* local) {
  return "index {" + (index == nullptr ? std::string("none") : index->ShortDebugString()) +
         "} local {" + (local == nullptr ? std::string("none") : local->ShortDebugString()) + "}";
}

// An index that has applied every version these tests name, and purged nothing.
constexpr IndexProgress kCurrent{1'000'000, 0};

#define EXPECT_ACTION_AT(expected, index, local, progress)                            \
  EXPECT_EQ(SyncActionName(Decide(index, local, progress)), SyncActionName(expected)) \
      << Describe(index, local)
#define EXPECT_ACTION(expected, index, local) EXPECT_ACTION_AT(expected, index, local, kCurrent)

TEST(Decide, NoEntryAndNoRecordIsNothingToDo) {
  EXPECT_ACTION(SyncAction::kNone, nullptr, nullptr);
  // A record of a path that is gone, and never synced: nothing either.
  const wire::LocalFileRecord absent = DiskAbsent("a");
  EXPECT_ACTION(SyncAction::kNone, nullptr, &absent);
  // A tombstone for a path this node never had.
  const wire::FileEntry tombstone = IndexTombstone("a", 7);
  EXPECT_ACTION(SyncAction::kNone, &tombstone, nullptr);
}

TEST(Decide, AnIndexEntryWithoutRecordIsMaterialized) {
  const wire::FileEntry file = IndexFile("a", "data", 3);
  EXPECT_ACTION(SyncAction::kMaterialize, &file, nullptr);
  wire::FileEntry dir;
  dir.set_path("d");
  dir.set_kind(wire::KIND_DIRECTORY);
  dir.set_mode(0755);
  dir.set_version(4);
  EXPECT_ACTION(SyncAction::kMaterialize, &dir, nullptr);
  wire::FileEntry link;
  link.set_path("l");
  link.set_kind(wire::KIND_SYMLINK);
  link.set_target("a");
  link.set_version(5);
  EXPECT_ACTION(SyncAction::kMaterialize, &link, nullptr);
  // A record of the path being absent, never synced: the same.
  const wire::LocalFileRecord absent = DiskAbsent("a");
  EXPECT_ACTION(SyncAction::kMaterialize, &file, &absent);
}

TEST(Decide, ANewLocalFileIsAnnounced) {
  const wire::LocalFileRecord fresh = DiskFile("a", "new");
  EXPECT_ACTION(SyncAction::kAnnounce, nullptr, &fresh);
  // Over a tombstone too (the node never synced that path).
  const wire::FileEntry tombstone = IndexTombstone("a", 9);
  EXPECT_ACTION(SyncAction::kAnnounce, &tombstone, &fresh);
  // And where the index holds other content the node never synced: the index decides.
  const wire::FileEntry other = IndexFile("a", "other", 9);
  EXPECT_ACTION(SyncAction::kAnnounce, &other, &fresh);
}

TEST(Decide, DiskEqualToTheIndexIsNothingOrMarkSynced) {
  const wire::FileEntry file = IndexFile("a", "data", 5);
  const wire::LocalFileRecord synced = Synced(DiskFile("a", "data"), 5);
  EXPECT_ACTION(SyncAction::kNone, &file, &synced);
  // A joining node that holds the same file: it only records the version.
  const wire::LocalFileRecord unsynced = DiskFile("a", "data");
  EXPECT_ACTION(SyncAction::kMarkSynced, &file, &unsynced);
  // Synced at an older version of the same content (another node announced it again).
  const wire::LocalFileRecord older = Synced(DiskFile("a", "data"), 3);
  EXPECT_ACTION(SyncAction::kMarkSynced, &file, &older);
  // Synced at this version but with other content (changed back meanwhile).
  const wire::LocalFileRecord back = Changed(DiskFile("a", "else"), 5, DiskFile("a", "data"));
  EXPECT_ACTION(SyncAction::kMarkSynced, &file, &back);
  // Only the mtime differs: the same content.
  const wire::LocalFileRecord touched =
      Changed(DiskFile("a", "data"), 5, DiskFile("a", "data", 0644, kT0 + kSecond));
  EXPECT_ACTION(SyncAction::kNone, &file, &touched);
  // A tombstone and an absent path the node had synced present: mark.
  const wire::FileEntry tombstone = IndexTombstone("a", 6);
  const wire::LocalFileRecord gone = Changed(DiskFile("a", "data"), 5, DiskAbsent("a"));
  EXPECT_ACTION(SyncAction::kMarkSynced, &tombstone, &gone);
  const wire::LocalFileRecord gone_synced = Synced(DiskAbsent("a"), 6);
  EXPECT_ACTION(SyncAction::kNone, &tombstone, &gone_synced);
  // No entry, and a record of an absent path synced at 0: nothing.
  const wire::LocalFileRecord nothing = Synced(DiskAbsent("a"), 0);
  EXPECT_ACTION(SyncAction::kNone, nullptr, &nothing);
}

TEST(Decide, ALocalEditIsAnnouncedWhateverTheIndexDid) {
  const wire::LocalFileRecord edited = Changed(DiskFile("a", "v1"), 5, DiskFile("a", "mine"));
  const wire::FileEntry same = IndexFile("a", "v1", 5);
  EXPECT_ACTION(SyncAction::kAnnounce, &same, &edited);
  const wire::FileEntry moved = IndexFile("a", "theirs", 8);
  EXPECT_ACTION(SyncAction::kAnnounce, &moved, &edited);
  const wire::FileEntry deleted = IndexTombstone("a", 8);
  EXPECT_ACTION(SyncAction::kAnnounce, &deleted, &edited);
  EXPECT_ACTION(SyncAction::kAnnounce, nullptr, &edited);
}

TEST(Decide, ALocalDeleteIsAnnounced) {
  const wire::LocalFileRecord deleted = Changed(DiskFile("a", "v1"), 5, DiskAbsent("a"));
  const wire::FileEntry same = IndexFile("a", "v1", 5);
  EXPECT_ACTION(SyncAction::kAnnounce, &same, &deleted);
  // The index moved on meanwhile: announced all the same (and refused by the index).
  const wire::FileEntry moved = IndexFile("a", "theirs", 8);
  EXPECT_ACTION(SyncAction::kAnnounce, &moved, &deleted);
}

TEST(Decide, WhenTheIndexMovedOnTheDiskFollows) {
  const wire::LocalFileRecord synced = Synced(DiskFile("a", "v1"), 5);
  const wire::FileEntry newer = IndexFile("a", "v2", 8);
  EXPECT_ACTION(SyncAction::kMaterialize, &newer, &synced);
  const wire::FileEntry chmod = IndexFile("a", "v1", 8, 0600);
  EXPECT_ACTION(SyncAction::kMaterialize, &chmod, &synced);
  const wire::FileEntry deleted = IndexTombstone("a", 8);
  EXPECT_ACTION(SyncAction::kRemove, &deleted, &synced);
  // A path this node deleted and synced absent, that the index has again.
  const wire::LocalFileRecord absent = Synced(DiskAbsent("a"), 5);
  EXPECT_ACTION(SyncAction::kMaterialize, &newer, &absent);
}

TEST(Decide, WithoutAnIndexEntryASyncedFileIsAnnouncedUnlessPurged) {
  const wire::LocalFileRecord synced = Synced(DiskFile("a", "v1"), 5);
  // An index that lost the path without purging it (reset): the file stays and is offered.
  EXPECT_ACTION(SyncAction::kAnnounce, nullptr, &synced);
  // Deleted, and its tombstone purged: the copy this node kept as synced goes too.
  EXPECT_ACTION_AT(SyncAction::kRemove, nullptr, &synced, (IndexProgress{9, 7}));
  EXPECT_ACTION_AT(SyncAction::kRemove, nullptr, &synced, (IndexProgress{9, 5}));
  // Purged only up to an older version: not this path's deletion.
  EXPECT_ACTION_AT(SyncAction::kAnnounce, nullptr, &synced, (IndexProgress{9, 4}));
  // Changed here since it was synced: a write the delete did not see, kept and announced.
  const wire::LocalFileRecord edited = Changed(DiskFile("a", "v1"), 5, DiskFile("a", "v2"));
  EXPECT_ACTION_AT(SyncAction::kAnnounce, nullptr, &edited, (IndexProgress{9, 7}));
  // Never synced (the cluster never had it): offered, whatever was purged.
  const wire::LocalFileRecord fresh = DiskFile("a", "v1");
  EXPECT_ACTION_AT(SyncAction::kAnnounce, nullptr, &fresh, (IndexProgress{9, 7}));
}

TEST(Decide, AnIndexBehindTheSyncedVersionIsWaitedFor) {
  // Restarted: the index has not replayed the log up to version 5 yet. Announcing the file
  // now would bring it back if it was deleted and purged meanwhile; its entry will come.
  const wire::LocalFileRecord synced = Synced(DiskFile("a", "v1"), 5);
  EXPECT_ACTION_AT(SyncAction::kNone, nullptr, &synced, (IndexProgress{4, 0}));
  EXPECT_ACTION_AT(SyncAction::kNone, nullptr, &synced, (IndexProgress{0, 0}));
  // Deleted here meanwhile: not forgotten either (it is announced once the entry is back).
  const wire::LocalFileRecord deleted = Changed(DiskFile("a", "v1"), 5, DiskAbsent("a"));
  EXPECT_ACTION_AT(SyncAction::kNone, nullptr, &deleted, (IndexProgress{4, 0}));
}

TEST(Decide, AModeChangeAloneIsAnnounced) {
  const wire::LocalFileRecord chmod =
      Changed(DiskFile("a", "v1", 0644), 5, DiskFile("a", "v1", 0755));
  const wire::FileEntry index = IndexFile("a", "v1", 5, 0644);
  EXPECT_ACTION(SyncAction::kAnnounce, &index, &chmod);
}

TEST(Decide, DirectoriesAndLinksCompareByKindModeAndTarget) {
  wire::FileEntry dir;
  dir.set_path("d");
  dir.set_kind(wire::KIND_DIRECTORY);
  dir.set_mode(0755);
  dir.set_version(5);
  wire::LocalFileRecord local_dir;
  local_dir.set_path("d");
  local_dir.set_present(true);
  local_dir.set_kind(wire::KIND_DIRECTORY);
  local_dir.set_mode(0755);
  local_dir.set_mtime_nanos(kT0);
  EXPECT_ACTION(SyncAction::kMarkSynced, &dir, &local_dir);
  const wire::LocalFileRecord synced_dir = Synced(local_dir, 5);
  EXPECT_ACTION(SyncAction::kNone, &dir, &synced_dir);
  // A file where the node had its directory: the index changed the kind.
  const wire::FileEntry file = IndexFile("d", "data", 9);
  EXPECT_ACTION(SyncAction::kMaterialize, &file, &synced_dir);

  wire::FileEntry link;
  link.set_path("l");
  link.set_kind(wire::KIND_SYMLINK);
  link.set_target("new");
  link.set_version(9);
  wire::LocalFileRecord local_link;
  local_link.set_path("l");
  local_link.set_present(true);
  local_link.set_kind(wire::KIND_SYMLINK);
  local_link.set_target("old");
  const wire::LocalFileRecord synced_link = Synced(local_link, 5);
  EXPECT_ACTION(SyncAction::kMaterialize, &link, &synced_link);
  local_link.set_target("mine");
  const wire::LocalFileRecord retargeted = Changed(synced_link, 5, local_link);
  EXPECT_ACTION(SyncAction::kAnnounce, &link, &retargeted);
}

TEST(Decide, MarkSyncedRecordsWhatTheDiskHolds) {
  wire::LocalFileRecord record = DiskFile("a", "data", 0600);
  MarkSynced(record, 12);
  EXPECT_EQ(record.synced_version(), 12u);
  EXPECT_TRUE(record.synced_present());
  EXPECT_EQ(record.synced_key(), ContentKey(record));
  EXPECT_EQ(record.synced_key(), ContentKey(IndexFile("a", "data", 12, 0600)));
  wire::LocalFileRecord absent = DiskAbsent("a");
  MarkSynced(absent, 13);
  EXPECT_EQ(absent.synced_version(), 13u);
  EXPECT_FALSE(absent.synced_present());
  EXPECT_EQ(absent.synced_key(), "");
}

TEST(Decide, ATableFromAnotherClusterNeitherRemovesNorOverwrites) {
  // Written where "a" was synced at version 5 and "b" deleted at 6. This cluster's index has a
  // tombstone for "a" at 8 and another file "b" at 9, and purged through 7.
  LocalTable table;
  table.Put(Synced(DiskFile("a", "mine"), 5));
  table.Put(Synced(DiskAbsent("b"), 6));
  table.Put(Synced(DiskFile("c", "only here"), 3));
  const wire::FileEntry a_deleted = IndexTombstone("a", 8);
  const wire::FileEntry b_theirs = IndexFile("b", "theirs", 9);
  const IndexProgress progress{9, 7};
  EXPECT_ACTION_AT(SyncAction::kRemove, &a_deleted, table.Find("a"), progress);
  EXPECT_ACTION_AT(SyncAction::kRemove, nullptr, table.Find("c"), progress);

  table.ForgetSyncedState();
  EXPECT_ACTION_AT(SyncAction::kAnnounce, &a_deleted, table.Find("a"), progress);
  EXPECT_ACTION_AT(SyncAction::kAnnounce, nullptr, table.Find("c"), progress);
  EXPECT_ACTION_AT(SyncAction::kMaterialize, &b_theirs, table.Find("b"), progress);
  // What the disk holds is kept: its blocks can still be reused.
  EXPECT_TRUE(table.FindBlock(Sha256("mine")).has_value());
  EXPECT_EQ(table.Find("a")->synced_version(), 0u);
}

TEST(Decide, EveryActionHasItsOwnName) {
  std::set<std::string> names;
  for (SyncAction action : {SyncAction::kNone, SyncAction::kMarkSynced, SyncAction::kAnnounce,
                            SyncAction::kMaterialize, SyncAction::kRemove}) {
    names.insert(SyncActionName(action));
  }
  EXPECT_EQ(names.size(), 5u);
  EXPECT_EQ(names.count("?"), 0u);
}

// A deterministic simulation of three nodes sharing one FileIndex, each with a LocalTable and
// an in-memory disk (path -> content), doing what SyncService does with Decide's answers:
// - kAnnounce queues a proposal based on the record's synced version; the log applies queued
//   proposals in a random order; the answer marks the record synced (if the disk still holds
//   what was announced) or, for a refused delete, records the index's version so that the file
//   is fetched back (SyncService::OnAnnounced);
// - kMaterialize and kRemove first copy the old content to every index path that wants it and
//   that the node lacks (SyncService::PreserveTargets), then write or delete;
// - a file is fetched from any disk that holds its content; when none does, the node waits.
// Users write and delete random paths meanwhile, and the leader purges tombstones older than a
// few entries, often before every node removed the file. Once they stop and everything is drained:
// every disk equals the live index, and every content survives somewhere on every disk unless a
// user replaced or deleted it on a node that held it (a sequential change).
class Simulation {
 public:
  explicit Simulation(uint32_t seed) : seed_(seed), random_(seed) {
    for (int i = 0; i < 3; ++i) {
      nodes_.push_back(Node{"node-" + std::to_string(i), "n" + std::to_string(i), {}, {}, {}});
    }
  }

  void Run(int user_steps) {
    for (int step = 0; step < user_steps; ++step) {
      const int roll = Roll(100);
      if (roll < 25) {
        UserChange(nodes_[Roll(3)]);
      } else if (roll < 48 && !pending_.empty()) {
        ApplyOne();
      } else if (roll < 52) {
        Purge();
      } else {
        const std::vector<std::string> paths = AllPaths();
        Reconcile(nodes_[Roll(3)], paths[Roll(static_cast<int>(paths.size()))]);
      }
    }
    for (rounds_ = 0; rounds_ < 200; ++rounds_) {
      bool progress = !pending_.empty();
      while (!pending_.empty()) ApplyOne();
      for (Node& node : nodes_) {
        for (const std::string& path : AllPaths()) progress |= Reconcile(node, path);
      }
      if (!progress) break;
    }
  }

  // Checks the end state; failures name the seed.
  void Check() const {
    SCOPED_TRACE("seed " + std::to_string(seed_));
    ASSERT_LT(rounds_, 200) << "no fixpoint";
    ASSERT_TRUE(pending_.empty());
    // The live index, without entries whose content no disk holds (see below).
    std::map<std::string, std::string> wanted;  // path -> hash
    index_.ForEach([&](const wire::FileEntry& entry) {
      if (entry.deleted()) return;
      ASSERT_EQ(entry.kind(), wire::KIND_FILE);
      const std::string& content = contents_.at(entry.hash());
      if (!OnSomeDisk(content)) {
        // Only content that a user replaced on a node holding it (before any other node got
        // it) may be gone from every disk while the index still names it.
        EXPECT_TRUE(lost_.contains(content))
            << "index path " << entry.path() << " wants \"" << content
            << "\", which no disk holds and no user replaced";
        return;
      }
      wanted[entry.path()] = entry.hash();
    });
    for (const Node& node : nodes_) {
      std::map<std::string, std::string> held;
      for (const auto& [path, content] : node.disk) held[path] = Sha256(content);
      EXPECT_EQ(held, wanted) << node.name << "'s disk differs from the index";
      // Every content written survives on every disk, unless replaced by a sequential change.
      std::set<std::string> has;
      for (const auto& [path, content] : node.disk) has.insert(content);
      for (const std::string& content : written_) {
        if (lost_.contains(content)) continue;
        EXPECT_TRUE(has.contains(content)) << node.name << " lost \"" << content << "\"";
      }
    }
  }

  // What happened, one line per event: printed when a check fails.
  const std::vector<std::string>& history() const { return history_; }
  size_t conflicts() const { return index_.conflicts(); }
  size_t refused() const { return refused_; }
  size_t purged() const { return purged_; }
  size_t written() const { return written_.size(); }

 private:
  struct Node {
    std::string id;
    std::string name;
    std::map<std::string, std::string> disk;
    LocalTable table;
    std::set<std::string> busy;  // an announcement is in flight
  };
  struct Pending {
    Node* node;
    std::string path;
    std::string announced_key;
    Proposal proposal;
  };

  int Roll(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }

  bool OnSomeDisk(const std::string& content) const {
    for (const Node& node : nodes_) {
      for (const auto& [path, there] : node.disk) {
        if (there == content) return true;
      }
    }
    return false;
  }

  std::vector<std::string> AllPaths() const {
    std::set<std::string> paths(kPaths.begin(), kPaths.end());
    index_.ForEach([&](const wire::FileEntry& entry) { paths.insert(entry.path()); });
    for (const Node& node : nodes_) {
      for (const auto& [path, content] : node.disk) paths.insert(path);
      for (const auto& [path, record] : node.table.records()) paths.insert(path);
    }
    return {paths.begin(), paths.end()};
  }

  static wire::LocalFileRecord RecordOf(const std::string& path, const std::string& content) {
    return DiskFile(path, content, 0644, kT0);
  }

  // What the watcher reports: the disk now, with the synced state the node knew.
  void Observe(Node& node, const std::string& path) {
    const wire::LocalFileRecord* known = node.table.Find(path);
    auto it = node.disk.find(path);
    if (it == node.disk.end() && known == nullptr) return;
    wire::LocalFileRecord record =
        it == node.disk.end() ? DiskAbsent(path) : RecordOf(path, it->second);
    if (known != nullptr) {
      record.set_synced_version(known->synced_version());
      record.set_synced_present(known->synced_present());
      record.set_synced_key(known->synced_key());
    }
    node.table.Put(std::move(record));
  }

  void UserChange(Node& node) {
    std::string path = kPaths[Roll(static_cast<int>(kPaths.size()))];
    if (!node.disk.empty() && Roll(4) == 0) {
      auto it = node.disk.begin();
      std::advance(it, Roll(static_cast<int>(node.disk.size())));
      path = it->first;
    }
    auto it = node.disk.find(path);
    if (it != node.disk.end()) lost_.insert(it->second);  // the user saw it and replaced it
    if (it != node.disk.end() && Roll(3) == 0) {
      history_.push_back(node.name + " user deletes " + path + " (held " + it->second + ")");
      node.disk.erase(it);
      return;
    }
    const std::string content =
        "s" + std::to_string(seed_) + "-" + node.name + "-w" + std::to_string(written_.size());
    written_.push_back(content);
    contents_[Sha256(content)] = content;
    history_.push_back(node.name + " user writes " + path + " = " + content +
                       (it != node.disk.end() ? " (held " + it->second + ")" : ""));
    node.disk[path] = content;
  }

  // Copies the content the node is about to replace or delete to every index path that wants it
  // and that this node lacks.
  void Preserve(Node& node, const wire::LocalFileRecord& local) {
    if (!local.present() || local.kind() != wire::KIND_FILE) return;
    const std::string content = node.disk.at(local.path());
    for (const std::string& path : index_.PathsWithHash(local.hash())) {
      if (path == local.path()) continue;
      const wire::FileEntry* entry = index_.Find(path);
      const wire::LocalFileRecord* there = node.table.Find(path);
      if (there != nullptr && ContentKey(*there) == ContentKey(*entry)) continue;
      if (there != nullptr && there->present()) continue;
      if (node.disk.contains(path)) continue;  // Commit with nothing expected refuses
      history_.push_back(node.name + " preserves " + content + " at " + path);
      node.disk[path] = content;
      node.table.Put(Synced(RecordOf(path, content), entry->version()));
    }
  }

  // Observes `path` on `node`, decides and acts; true if anything changed.
  bool Reconcile(Node& node, const std::string& path) {
    if (node.busy.contains(path)) return false;
    Observe(node, path);
    const wire::FileEntry* entry = index_.Find(path);
    const wire::LocalFileRecord* local = node.table.Find(path);
    switch (Decide(entry, local, IndexProgress{log_index_, index_.purged_through()})) {
      case SyncAction::kNone:
        return false;
      case SyncAction::kMarkSynced: {
        wire::LocalFileRecord record = local != nullptr ? *local : DiskAbsent(path);
        MarkSynced(record, entry != nullptr ? entry->version() : 0);
        node.table.Put(std::move(record));
        return true;
      }
      case SyncAction::kAnnounce: {
        EXPECT_NE(local, nullptr);
        wire::FileEntry announced;
        announced.set_path(path);
        if (local->present()) {
          announced.set_kind(local->kind());
          announced.set_size(local->size());
          announced.set_mode(local->mode());
          announced.set_mtime_nanos(local->mtime_nanos());
          announced.set_hash(local->hash());
          *announced.mutable_blocks() = local->blocks();
        } else {
          announced.set_deleted(true);
        }
        announced.set_origin(node.id);
        announced.set_origin_name(node.name);
        history_.push_back(node.name + " announces " + path + " = " +
                           (local->present() ? contents_.at(local->hash()) : "(deleted)") +
                           " base " + std::to_string(local->synced_version()));
        pending_.push_back({&node, path, ContentKey(*local),
                            FileIndex::Announce(announced, local->synced_version())});
        node.busy.insert(path);
        return true;
      }
      case SyncAction::kMaterialize: {
        const wire::FileEntry wanted = *entry;
        auto content = contents_.find(wanted.hash());
        EXPECT_NE(content, contents_.end());
        if (content == contents_.end() || !OnSomeDisk(content->second)) return false;
        if (local != nullptr) Preserve(node, *local);
        history_.push_back(node.name + " materializes " + path + " = " + content->second + " v" +
                           std::to_string(wanted.version()));
        node.disk[path] = content->second;
        node.table.Put(Synced(RecordOf(path, content->second), wanted.version()));
        return true;
      }
      case SyncAction::kRemove:
        Preserve(node, *local);
        history_.push_back(node.name + " removes " + path);
        node.disk.erase(path);
        node.table.Erase(path);
        return true;
    }
    return false;
  }

  void ApplyOne() {
    const size_t pick = static_cast<size_t>(Roll(static_cast<int>(pending_.size())));
    Pending pending = std::move(pending_[pick]);
    pending_.erase(pending_.begin() + static_cast<ptrdiff_t>(pick));
    ++log_index_;
    const int64_t at = kT0 + static_cast<int64_t>(log_index_) * (kSecond / 4);
    Result<std::string> result =
        index_.Apply(ApplyContext{log_index_, at}, pending.proposal.version, pending.proposal.body);
    Node& node = *pending.node;
    wire::FileAnnounceResult answer;
    if (result.ok()) {
      EXPECT_TRUE(answer.ParseFromString(result.value()));
    }
    history_.push_back(
        "log " + std::to_string(log_index_) + ": " + node.name + "'s " + pending.path + ": " +
        (result.ok()
             ? "v" + std::to_string(answer.version()) +
                   (answer.conflict_path().empty() ? "" : " copy at " + answer.conflict_path())
             : result.error()));
    const wire::LocalFileRecord* now = node.table.Find(pending.path);
    if (result.ok()) {
      if (now != nullptr && ContentKey(*now) == pending.announced_key) {
        node.table.Put(Synced(*now, answer.version()));
      }
    } else {
      EXPECT_EQ(result.code(), StatusCode::kConflict) << result.error();
      ++refused_;
      // A delete that lost to a write it had not seen: the file comes back.
      wire::LocalFileRecord record = now != nullptr ? *now : DiskAbsent(pending.path);
      MarkRefusedDelete(record);
      node.table.Put(std::move(record));
    }
    node.busy.erase(pending.path);
  }

  // Drops the tombstones committed more than 0 to 8 entries ago.
  void Purge() {
    ++log_index_;
    const int64_t at = kT0 + static_cast<int64_t>(log_index_) * (kSecond / 4);
    const size_t before = index_.tombstones();
    const Proposal purge = FileIndex::Purge(at - Roll(9) * (kSecond / 4));
    EXPECT_TRUE(index_.Apply(ApplyContext{log_index_, at}, purge.version, purge.body).ok());
    if (index_.tombstones() == before) return;
    purged_ += before - index_.tombstones();
    history_.push_back("log " + std::to_string(log_index_) + ": purged " +
                       std::to_string(before - index_.tombstones()) + " tombstones, through v" +
                       std::to_string(index_.purged_through()));
  }

  inline static const std::vector<std::string> kPaths = {"a.txt", "b.txt", "dir/c"};

  const uint32_t seed_;
  std::mt19937 random_;
  std::vector<Node> nodes_;
  FileIndex index_;
  uint64_t log_index_ = 0;
  std::vector<Pending> pending_;
  std::map<std::string, std::string> contents_;  // hash -> content, of everything written
  std::vector<std::string> written_;
  std::set<std::string> lost_;  // contents a user replaced or deleted on a node that held them
  size_t refused_ = 0;
  size_t purged_ = 0;
  int rounds_ = 0;
  std::vector<std::string> history_;
};

TEST(ReconcilerSimulation, ThreeNodesConvergeWithoutLosingConcurrentWrites) {
  size_t conflicts = 0, refused = 0, written = 0, purged = 0;
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    Simulation simulation(seed);
    simulation.Run(300);
    simulation.Check();
    if (testing::Test::HasFailure()) {
      for (const std::string& line : simulation.history()) std::cerr << line << "\n";
      return;
    }
    conflicts += simulation.conflicts();
    refused += simulation.refused();
    written += simulation.written();
    purged += simulation.purged();
  }
  // The schedule exercised what it is meant to.
  EXPECT_GT(written, 1000u);
  EXPECT_GT(conflicts, 20u);
  EXPECT_GT(refused, 5u);
  EXPECT_GT(purged, 100u);
}

// A refused delete, then a new file written before the other node's edit was fetched back:
// both are kept (the new file was not based on the edit it never saw).
TEST(ReconcilerSimulation, RefusedDeleteThenLocalWriteKeepsTheOtherWrite) {
  FileIndex index;
  uint64_t log = 0;
  auto apply = [&](const wire::LocalFileRecord& local, const std::string& origin) {
    wire::FileEntry entry;
    entry.set_path(local.path());
    if (local.present()) {
      entry.set_kind(local.kind());
      entry.set_size(local.size());
      entry.set_mode(local.mode());
      entry.set_hash(local.hash());
      *entry.mutable_blocks() = local.blocks();
    } else {
      entry.set_deleted(true);
    }
    entry.set_origin(origin);
    entry.set_origin_name(origin);
    const Proposal proposal = FileIndex::Announce(entry, local.synced_version());
    ++log;
    return index.Apply(ApplyContext{log, kT0 + static_cast<int64_t>(log) * kSecond}, 1,
                       proposal.body);
  };
  // Both nodes have "old" at v1.
  ASSERT_TRUE(apply(DiskFile("p", "old"), "a").ok());
  wire::LocalFileRecord b = Synced(DiskFile("p", "old"), 1);
  // a edits it (v2); b, which has not seen that, deletes it: refused.
  ASSERT_TRUE(apply(Changed(DiskFile("p", "old"), 1, DiskFile("p", "a's edit")), "a").ok());
  b = Changed(b, 1, DiskAbsent("p"));
  ASSERT_EQ(Decide(index.Find("p"), &b, IndexProgress{log, 0}), SyncAction::kAnnounce);
  ASSERT_EQ(apply(b, "b").code(), StatusCode::kConflict);
  MarkRefusedDelete(b);
  ASSERT_EQ(Decide(index.Find("p"), &b, IndexProgress{log, 0}), SyncAction::kMaterialize);
  // Before b fetched a's edit, b's user writes the path anew.
  b = Changed(DiskAbsent("p"), b.synced_version(), DiskFile("p", "b's new file"));
  ASSERT_EQ(Decide(index.Find("p"), &b, IndexProgress{log, 0}), SyncAction::kAnnounce);
  Result<std::string> result = apply(b, "b");
  ASSERT_TRUE(result.ok()) << result.error();
  // b's file wins (it was committed later), but a's edit, which b never saw, must be kept.
  EXPECT_EQ(index.Find("p")->hash(), Sha256("b's new file"));
  EXPECT_EQ(index.PathsWithHash(Sha256("a's edit")).size(), 1u)
      << "a's edit is gone from the index";
}

}  // namespace
}  // namespace synod
