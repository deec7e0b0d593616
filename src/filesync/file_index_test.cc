#include "filesync/file_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "filesync/folder.h"
#include "filesync/sync_path.h"

namespace synod {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kT0 = 1'795'961'100 * kSecond;  // 2026-11-29T14:05:00Z

// A file entry for `content` as a node would announce it.
wire::FileEntry File(const std::string& path, const std::string& content,
                     const std::string& origin = "node-a", uint32_t mode = 0644,
                     int64_t mtime = 7 * kSecond) {
  wire::FileEntry entry;
  entry.set_path(path);
  entry.set_kind(wire::KIND_FILE);
  entry.set_size(content.size());
  entry.set_mode(mode);
  entry.set_mtime_nanos(mtime);
  entry.set_hash(Sha256(content));
  for (size_t at = 0; at < content.size(); at += kFileBlockSize) {
    entry.add_blocks(Sha256(std::string_view(content).substr(at, kFileBlockSize)));
  }
  entry.set_origin(origin);
  entry.set_origin_name(origin.substr(origin.find('-') + 1));  // "node-a" -> "a"
  return entry;
}

wire::FileEntry Dir(const std::string& path, uint32_t mode = 0755,
                    const std::string& origin = "node-a") {
  wire::FileEntry entry;
  entry.set_path(path);
  entry.set_kind(wire::KIND_DIRECTORY);
  entry.set_mode(mode);
  entry.set_origin(origin);
  entry.set_origin_name("a");
  return entry;
}

wire::FileEntry Link(const std::string& path, const std::string& target,
                     const std::string& origin = "node-a") {
  wire::FileEntry entry;
  entry.set_path(path);
  entry.set_kind(wire::KIND_SYMLINK);
  entry.set_target(target);
  entry.set_origin(origin);
  entry.set_origin_name("a");
  return entry;
}

wire::FileEntry Deleted(const std::string& path, const std::string& origin = "node-a") {
  wire::FileEntry entry;
  entry.set_path(path);
  entry.set_deleted(true);
  entry.set_origin(origin);
  entry.set_origin_name(origin.substr(origin.find('-') + 1));
  return entry;
}

class Sink final : public SectionSink {
 public:
  void Add(std::string_view record) override { records.emplace_back(record); }
  std::vector<std::string> records;
};

std::vector<std::string> Dump(const FileIndex& index) {
  Sink sink;
  std::unique_ptr<SectionCapture> capture = index.Capture();
  while (!capture->WriteSome(sink, 100)) {
  }
  return sink.records;
}

std::vector<std::string> Sorted(std::vector<std::string> paths) {
  std::sort(paths.begin(), paths.end());
  return paths;
}

// Every entry of the index, serialized, by path.
std::map<std::string, std::string> Entries(const FileIndex& index) {
  std::map<std::string, std::string> entries;
  index.ForEach(
      [&](const wire::FileEntry& entry) { entries[entry.path()] = entry.SerializeAsString(); });
  return entries;
}

class FileIndexTest : public testing::Test {
 protected:
  // Applies an announcement as log entry `next_index_` at `at` (default: one second per entry).
  Result<wire::FileAnnounceResult> Announce(const wire::FileEntry& entry, uint64_t base,
                                            int64_t at = 0) {
    ++next_index_;
    last_at_ = at != 0 ? at : kT0 + static_cast<int64_t>(next_index_) * kSecond;
    const Proposal proposal = FileIndex::Announce(entry, base);
    EXPECT_EQ(proposal.module, "files");
    Result<std::string> bytes =
        index_.Apply(ApplyContext{next_index_, last_at_}, proposal.version, proposal.body);
    EXPECT_EQ(index_.applied_through(), next_index_);
    if (!bytes.ok()) return bytes.status();
    wire::FileAnnounceResult result;
    EXPECT_TRUE(result.ParseFromString(bytes.value()));
    return result;
  }

  // Applies it and expects success; returns the version it answered.
  uint64_t Put(const wire::FileEntry& entry, uint64_t base, int64_t at = 0) {
    Result<wire::FileAnnounceResult> result = Announce(entry, base, at);
    EXPECT_TRUE(result.ok()) << result.error();
    return result.ok() ? result.value().version() : 0;
  }

  FileIndex index_;
  uint64_t next_index_ = 100;
  int64_t last_at_ = 0;
};

TEST_F(FileIndexTest, NewFileDirectoryAndSymlinkTakeTheirLogIndexAsVersion) {
  Result<wire::FileAnnounceResult> file = Announce(File("docs/a.txt", "hello"), 0);
  ASSERT_TRUE(file.ok()) << file.error();
  EXPECT_EQ(file.value().version(), 101u);
  EXPECT_EQ(file.value().conflict_path(), "");
  const wire::FileEntry* stored = index_.Find("docs/a.txt");
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ(stored->version(), 101u);
  EXPECT_EQ(stored->committed_at_nanos(), last_at_);
  EXPECT_EQ(stored->hash(), Sha256("hello"));
  EXPECT_EQ(stored->size(), 5u);
  EXPECT_EQ(stored->mode(), 0644u);
  EXPECT_EQ(stored->origin(), "node-a");
  EXPECT_FALSE(stored->deleted());

  EXPECT_EQ(Put(Dir("docs"), 0), 102u);
  ASSERT_NE(index_.Find("docs"), nullptr);
  EXPECT_EQ(index_.Find("docs")->kind(), wire::KIND_DIRECTORY);
  EXPECT_EQ(index_.Find("docs")->version(), 102u);
  EXPECT_EQ(index_.Find("docs")->committed_at_nanos(), last_at_);

  EXPECT_EQ(Put(Link("docs/link", "../elsewhere"), 0), 103u);
  ASSERT_NE(index_.Find("docs/link"), nullptr);
  EXPECT_EQ(index_.Find("docs/link")->kind(), wire::KIND_SYMLINK);
  EXPECT_EQ(index_.Find("docs/link")->target(), "../elsewhere");
  EXPECT_EQ(index_.Find("docs/link")->version(), 103u);

  EXPECT_EQ(index_.size(), 3u);
  EXPECT_EQ(index_.live(), 3u);
  EXPECT_EQ(index_.conflicts(), 0u);
  EXPECT_EQ(index_.Find("docs/b.txt"), nullptr);
}

TEST_F(FileIndexTest, SameContentChangesNothingAndAnswersTheCurrentVersion) {
  const uint64_t v1 = Put(File("a.txt", "same", "node-a", 0644, 1 * kSecond), 0);
  const std::string before = index_.Find("a.txt")->SerializeAsString();
  // Another node holds the same file (another mtime), from no base at all.
  Result<wire::FileAnnounceResult> again =
      Announce(File("a.txt", "same", "node-b", 0644, 99 * kSecond), 0);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again.value().version(), v1);
  EXPECT_EQ(again.value().conflict_path(), "");
  EXPECT_EQ(index_.Find("a.txt")->SerializeAsString(), before);
  EXPECT_EQ(index_.size(), 1u);
  EXPECT_EQ(index_.conflicts(), 0u);
  // A directory and a link likewise.
  const uint64_t dir = Put(Dir("d", 0700), 0);
  EXPECT_EQ(Put(Dir("d", 0700, "node-b"), 0), dir);
  const uint64_t link = Put(Link("l", "t"), 0);
  EXPECT_EQ(Put(Link("l", "t", "node-b"), 0), link);
  // A delete of a path the index never had, or of a tombstone, is a no-op too.
  Result<wire::FileAnnounceResult> nothing = Announce(Deleted("never"), 0);
  ASSERT_TRUE(nothing.ok()) << nothing.error();
  EXPECT_EQ(nothing.value().version(), 0u);
  EXPECT_EQ(index_.Find("never"), nullptr);
}

TEST_F(FileIndexTest, ModifyFromTheCurrentVersionIsANewVersionWithoutConflict) {
  const uint64_t v1 = Put(File("a.txt", "one"), 0);
  Result<wire::FileAnnounceResult> two = Announce(File("a.txt", "two", "node-b"), v1);
  ASSERT_TRUE(two.ok()) << two.error();
  EXPECT_EQ(two.value().version(), 102u);
  EXPECT_EQ(two.value().conflict_path(), "");
  EXPECT_EQ(index_.Find("a.txt")->hash(), Sha256("two"));
  EXPECT_EQ(index_.Find("a.txt")->origin(), "node-b");
  EXPECT_EQ(index_.size(), 1u);
  EXPECT_EQ(index_.conflicts(), 0u);
  // A mode change alone is a change.
  const uint64_t v3 = Put(File("a.txt", "two", "node-b", 0600), two.value().version());
  EXPECT_EQ(v3, 103u);
  EXPECT_EQ(index_.Find("a.txt")->mode(), 0600u);
  EXPECT_EQ(index_.size(), 1u);
}

TEST_F(FileIndexTest, ConcurrentWriteWinsAndKeepsTheEarlierContentAsAConflictCopy) {
  const std::string big(kFileBlockSize + 10, 'x');
  const uint64_t base = Put(File("dir/report.txt", "original"), 0);
  const uint64_t a = Put(File("dir/report.txt", big, "node-a"), base);
  const int64_t at = kT0 + 500 * kSecond + 123;
  Result<wire::FileAnnounceResult> b =
      Announce(File("dir/report.txt", "from b", "node-b"), base, at);
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b.value().version(), 103u);
  const std::string copy_path = ConflictPath("dir/report.txt", at, "a");
  EXPECT_EQ(copy_path.rfind("dir/report.sync-conflict-", 0), 0u) << copy_path;
  EXPECT_EQ(b.value().conflict_path(), copy_path);

  const wire::FileEntry* winner = index_.Find("dir/report.txt");
  ASSERT_NE(winner, nullptr);
  EXPECT_EQ(winner->hash(), Sha256("from b"));
  EXPECT_EQ(winner->version(), 103u);
  const wire::FileEntry* copy = index_.Find(copy_path);
  ASSERT_NE(copy, nullptr);
  EXPECT_FALSE(copy->deleted());
  EXPECT_EQ(copy->kind(), wire::KIND_FILE);
  EXPECT_EQ(copy->hash(), Sha256(big));
  EXPECT_EQ(copy->size(), big.size());
  ASSERT_EQ(copy->blocks_size(), 2);
  EXPECT_EQ(copy->blocks(0), Sha256(big.substr(0, kFileBlockSize)));
  EXPECT_EQ(copy->blocks(1), Sha256(big.substr(kFileBlockSize)));
  EXPECT_EQ(copy->origin(), "node-a");
  EXPECT_EQ(copy->version(), 103u);
  EXPECT_EQ(copy->committed_at_nanos(), at);
  EXPECT_EQ(index_.live(), 2u);
  EXPECT_EQ(index_.conflicts(), 1u);
  EXPECT_EQ(Sorted(index_.PathsWithHash(Sha256(big))), std::vector<std::string>{copy_path});
  (void)a;
}

TEST_F(FileIndexTest, ConflictCopiesInTheSameSecondGetDistinctNames) {
  const int64_t second = kT0 + 1000 * kSecond;
  const uint64_t v1 = Put(File("n.txt", "a1", "node-a"), 0, second);
  // b did not see v1: a's content is kept.
  Result<wire::FileAnnounceResult> b1 = Announce(File("n.txt", "b1", "node-b"), 0, second + 1);
  ASSERT_TRUE(b1.ok()) << b1.error();
  const std::string first = ConflictPath("n.txt", second + 1, "a");
  EXPECT_EQ(b1.value().conflict_path(), first);
  // a writes on top of b's version, then c, which saw only v1, writes: a's content loses again,
  // within the same second, and must not overwrite the first copy.
  const uint64_t a2 = Put(File("n.txt", "a2", "node-a"), b1.value().version(), second + 2);
  Result<wire::FileAnnounceResult> c1 = Announce(File("n.txt", "c1", "node-c"), v1, second + 3);
  ASSERT_TRUE(c1.ok()) << c1.error();
  const std::string second_copy = ConflictPath("n.txt", second + 3, "a-2");
  EXPECT_NE(second_copy, first);
  EXPECT_EQ(c1.value().conflict_path(), second_copy);
  ASSERT_NE(index_.Find(first), nullptr);
  ASSERT_NE(index_.Find(second_copy), nullptr);
  EXPECT_EQ(index_.Find(first)->hash(), Sha256("a1"));
  EXPECT_EQ(index_.Find(second_copy)->hash(), Sha256("a2"));
  EXPECT_EQ(index_.Find("n.txt")->hash(), Sha256("c1"));
  EXPECT_EQ(index_.live(), 3u);
  EXPECT_EQ(index_.conflicts(), 2u);
  (void)a2;
}

TEST_F(FileIndexTest, StaleDeleteOfALivePathIsRefusedAndChangesNothing) {
  const uint64_t v1 = Put(File("a.txt", "one"), 0);
  const uint64_t v2 = Put(File("a.txt", "two", "node-b"), v1);
  const std::map<std::string, std::string> before = Entries(index_);
  Result<wire::FileAnnounceResult> stale = Announce(Deleted("a.txt", "node-c"), v1);
  EXPECT_EQ(stale.code(), StatusCode::kConflict);
  EXPECT_EQ(Entries(index_), before);
  EXPECT_EQ(index_.live(), 1u);
  EXPECT_EQ(index_.Find("a.txt")->version(), v2);
  // A delete from no base at all, of a path the node never synced, likewise.
  EXPECT_EQ(Announce(Deleted("a.txt", "node-c"), 0).code(), StatusCode::kConflict);
  EXPECT_EQ(Entries(index_), before);
}

TEST_F(FileIndexTest, DeleteFromTheCurrentVersionLeavesATombstone) {
  const uint64_t v1 = Put(File("a.txt", "one"), 0);
  const uint64_t dir = Put(Dir("d"), 0);
  ASSERT_EQ(index_.live(), 2u);
  Result<wire::FileAnnounceResult> gone = Announce(Deleted("a.txt", "node-b"), v1);
  ASSERT_TRUE(gone.ok()) << gone.error();
  EXPECT_EQ(gone.value().version(), 103u);
  const wire::FileEntry* tombstone = index_.Find("a.txt");
  ASSERT_NE(tombstone, nullptr);
  EXPECT_TRUE(tombstone->deleted());
  EXPECT_EQ(tombstone->version(), 103u);
  EXPECT_EQ(tombstone->hash(), "");
  EXPECT_EQ(tombstone->blocks_size(), 0);
  EXPECT_EQ(index_.live(), 1u);
  EXPECT_EQ(index_.size(), 2u);
  EXPECT_TRUE(index_.PathsWithHash(Sha256("one")).empty());
  EXPECT_TRUE(Put(Deleted("d"), dir) > 0);
  EXPECT_EQ(index_.live(), 0u);
  // Deleting again (from any base) is a no-op answering the tombstone's version.
  Result<wire::FileAnnounceResult> again = Announce(Deleted("a.txt", "node-c"), v1);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again.value().version(), 103u);
}

TEST_F(FileIndexTest, WriteOverATombstoneFromAnOldBaseIsAcceptedWithoutCopy) {
  const uint64_t v1 = Put(File("a.txt", "one"), 0);
  Put(Deleted("a.txt", "node-b"), v1);
  Result<wire::FileAnnounceResult> back = Announce(File("a.txt", "edited", "node-c"), v1);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back.value().conflict_path(), "");
  EXPECT_EQ(back.value().version(), 103u);
  EXPECT_FALSE(index_.Find("a.txt")->deleted());
  EXPECT_EQ(index_.Find("a.txt")->hash(), Sha256("edited"));
  EXPECT_EQ(index_.size(), 1u);
  EXPECT_EQ(index_.live(), 1u);
  EXPECT_EQ(index_.conflicts(), 0u);
}

TEST_F(FileIndexTest, PathsWithHashFollowsUpdatesAndDeletes) {
  const uint64_t a = Put(File("a", "shared"), 0);
  const uint64_t b = Put(File("sub/b", "shared"), 0);
  Put(File("c", "other"), 0);
  Put(Dir("sub"), 0);
  EXPECT_EQ(Sorted(index_.PathsWithHash(Sha256("shared"))),
            (std::vector<std::string>{"a", "sub/b"}));
  Put(File("a", "changed"), a);
  EXPECT_EQ(index_.PathsWithHash(Sha256("shared")), std::vector<std::string>{"sub/b"});
  EXPECT_EQ(index_.PathsWithHash(Sha256("changed")), std::vector<std::string>{"a"});
  Put(Deleted("sub/b"), b);
  EXPECT_TRUE(index_.PathsWithHash(Sha256("shared")).empty());
  EXPECT_EQ(index_.PathsWithHash(Sha256("other")), std::vector<std::string>{"c"});
  EXPECT_TRUE(index_.PathsWithHash("").empty());  // directories have no hash
  // Back again over the tombstone.
  Put(File("sub/b", "shared"), 0);
  EXPECT_EQ(index_.PathsWithHash(Sha256("shared")), std::vector<std::string>{"sub/b"});
}

TEST_F(FileIndexTest, HostileEntriesAreRejectedAndNothingIsStored) {
  Put(File("ok", "fine"), 0);
  const std::map<std::string, std::string> before = Entries(index_);
  std::vector<std::pair<std::string, wire::FileEntry>> hostile;
  for (const std::string& path : std::vector<std::string>{
           "../x", "/abs", "a//b", "a/./b", "a/..", std::string("a\0b", 3), "a\nb", "", "a/",
           ".synod-tmp-x", "d/.synod-tmp-1-f", ".synodignore", std::string("\xff\xfe", 2)}) {
    hostile.emplace_back("path " + path, File(path, "data"));
  }
  wire::FileEntry blocks = File("f", std::string(kFileBlockSize + 1, 'z'));
  blocks.mutable_blocks()->RemoveLast();
  hostile.emplace_back("too few blocks", blocks);
  blocks = File("f", "small");
  *blocks.add_blocks() = Sha256("more");
  hostile.emplace_back("too many blocks", blocks);
  blocks = File("f", "");
  *blocks.add_blocks() = Sha256("");
  hostile.emplace_back("blocks for an empty file", blocks);
  blocks = File("f", "small");
  blocks.set_blocks(0, "short");
  hostile.emplace_back("a block hash of 5 bytes", blocks);
  wire::FileEntry hash = File("f", "data");
  hash.set_hash(std::string(31, 'h'));
  hostile.emplace_back("hash of 31 bytes", hash);
  hash.set_hash("");
  hostile.emplace_back("no hash", hash);
  hostile.emplace_back("link without target", Link("l", ""));
  hostile.emplace_back("link with a NUL", Link("l", std::string("a\0b", 3)));
  hostile.emplace_back("link with a hash", [] {
    wire::FileEntry link = Link("l", "t");
    link.set_hash(Sha256("t"));
    return link;
  }());
  hostile.emplace_back("mode 010000", File("f", "data", "node-a", 010000));
  hostile.emplace_back("directory mode 0100755", Dir("d", 0100755));
  hostile.emplace_back("directory with a size", [] {
    wire::FileEntry dir = Dir("d");
    dir.set_size(1);
    return dir;
  }());
  hostile.emplace_back("file with a target", [] {
    wire::FileEntry file = File("f", "data");
    file.set_target("t");
    return file;
  }());
  wire::FileEntry kind = File("f", "data");
  kind.set_kind(static_cast<wire::FileKind>(7));
  hostile.emplace_back("unknown kind", kind);
  wire::FileEntry origin = File("f", "data");
  origin.set_origin("");
  hostile.emplace_back("no origin", origin);
  origin.set_origin(std::string(65, 'o'));
  hostile.emplace_back("origin of 65 bytes", origin);
  hostile.emplace_back("hostile tombstone path", Deleted("../etc/passwd"));

  for (const auto& [what, entry] : hostile) {
    SCOPED_TRACE(what);
    EXPECT_EQ(CheckFileEntry(entry).code(), StatusCode::kInvalid);
    EXPECT_EQ(Announce(entry, 0).code(), StatusCode::kInvalid);
    EXPECT_EQ(Entries(index_), before);
  }
  // Bytes that are no command, and a command without a body.
  for (const std::string& bytes : std::vector<std::string>{
           std::string("\xff\xff\xff", 3), std::string("\x0a\x05", 2), std::string()}) {
    EXPECT_EQ(index_.Apply(ApplyContext{500, kT0}, 1, bytes).code(), StatusCode::kInvalid);
  }
  EXPECT_EQ(Entries(index_), before);
  EXPECT_EQ(index_.live(), 1u);
  // Valid limits pass: 07777, a 255-byte component, an empty file.
  EXPECT_TRUE(CheckFileEntry(File("f", "data", "node-a", 07777)).ok());
  EXPECT_TRUE(CheckFileEntry(File(std::string(255, 'n'), "data")).ok());
  EXPECT_TRUE(CheckFileEntry(File("empty", "")).ok());
  EXPECT_TRUE(CheckFileEntry(File("exact", std::string(kFileBlockSize, 'e'))).ok());
}

TEST_F(FileIndexTest, ListenerHearsEveryChangedPathIncludingTheConflictCopy) {
  std::vector<std::string> changed;
  int resets = 0;
  std::vector<std::pair<std::string, std::string>> conflicts;
  index_.SetListener({[&](const std::string& path) { changed.push_back(path); }, [&] { ++resets; },
                      [&](const std::string& path, const std::string& copy, int64_t) {
                        conflicts.emplace_back(path, copy);
                      }});
  const uint64_t v1 = Put(File("a.txt", "one"), 0);
  EXPECT_EQ(changed, std::vector<std::string>{"a.txt"});
  changed.clear();
  Put(File("a.txt", "one", "node-b"), 0);  // same content: no change
  EXPECT_TRUE(changed.empty());
  Put(File("a.txt", "two"), v1);
  Result<wire::FileAnnounceResult> concurrent = Announce(File("a.txt", "three", "node-b"), v1);
  ASSERT_TRUE(concurrent.ok());
  ASSERT_FALSE(concurrent.value().conflict_path().empty());
  EXPECT_EQ(Sorted(changed), Sorted({"a.txt", "a.txt", concurrent.value().conflict_path()}));
  using Conflicts = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(conflicts, (Conflicts{{"a.txt", concurrent.value().conflict_path()}}));
  changed.clear();
  EXPECT_FALSE(Announce(Deleted("a.txt"), v1).ok());  // refused
  EXPECT_FALSE(Announce(File("../x", "x"), 0).ok());  // invalid
  EXPECT_TRUE(changed.empty());
  EXPECT_EQ(resets, 0);
}

TEST_F(FileIndexTest, SnapshotRoundTripGivesAnIdenticalIndex) {
  const uint64_t a = Put(File("a.txt", "one"), 0);
  Put(File("a.txt", "two", "node-b"), 0);  // conflict copy of "one"
  Put(Dir("d"), 0);
  Put(File("d/x", std::string(3 * kFileBlockSize, 'q')), 0);
  Put(File("d/y", "one"), 0);
  Put(Link("d/l", "x"), 0);
  const uint64_t purged = Put(File("purged", "p"), 0);
  const uint64_t purged_at = Put(Deleted("purged"), purged);
  const uint64_t gone = Put(File("gone", "g"), 0);
  Put(Deleted("gone"), gone);
  ASSERT_TRUE(index_
                  .Apply(ApplyContext{++next_index_, kT0 + 1000 * kSecond}, 2,
                         FileIndex::Purge(index_.Find("gone")->committed_at_nanos()).body)
                  .ok());
  ASSERT_EQ(index_.purged_through(), purged_at);
  EXPECT_EQ(index_.section_version(), 2u);  // with the header that keeps purged_through
  (void)a;

  FileIndex restored;
  restored.Apply(ApplyContext{1, kT0}, 1, FileIndex::Announce(File("stale", "s"), 0).body);
  int resets = 0;
  restored.SetListener({nullptr, [&] { ++resets; }, nullptr});
  std::unique_ptr<SectionLoader> loader = restored.NewLoader(index_.section_version());
  for (const std::string& record : Dump(index_)) ASSERT_TRUE(loader->Add(record).ok());
  ASSERT_TRUE(loader->Finish().ok());
  EXPECT_NE(restored.Find("stale"), nullptr);  // nothing visible before Install
  loader->Install();
  EXPECT_EQ(resets, 1);

  EXPECT_EQ(Entries(restored), Entries(index_));
  EXPECT_EQ(restored.Find("stale"), nullptr);
  EXPECT_EQ(restored.size(), index_.size());
  EXPECT_EQ(restored.live(), index_.live());
  EXPECT_EQ(restored.live(), 6u);
  EXPECT_EQ(restored.applied_through(), 0u);
  EXPECT_EQ(restored.purged_through(), purged_at);
  EXPECT_EQ(restored.tombstones(), 1u);
  EXPECT_EQ(restored.OldestTombstoneNanos(), index_.Find("gone")->committed_at_nanos());
  index_.ForEach([&](const wire::FileEntry& entry) {
    const wire::FileEntry* there = restored.Find(entry.path());
    ASSERT_NE(there, nullptr) << entry.path();
    EXPECT_EQ(there->SerializeAsString(), entry.SerializeAsString());
    if (!entry.hash().empty()) {
      EXPECT_EQ(Sorted(restored.PathsWithHash(entry.hash())),
                Sorted(index_.PathsWithHash(entry.hash())));
    }
  });
  EXPECT_EQ(Sorted(restored.PathsWithHash(Sha256("one"))).size(), 2u);
  EXPECT_TRUE(restored.PathsWithHash(Sha256("g")).empty());
  // The restored index goes on deciding like the original.
  const uint64_t x = index_.Find("d/y")->version();
  EXPECT_EQ(restored
                .Apply(ApplyContext{900, kT0}, 1,
                       FileIndex::Announce(Deleted("d/y", "node-b"), x - 1).body)
                .code(),
            StatusCode::kConflict);
}

TEST_F(FileIndexTest, LoaderRejectsHostileRecordsAndDuplicatePaths) {
  Put(File("a", "one"), 0);
  Put(File("b", "two"), 0);
  // Nothing purged yet: written as version 1 (no header), which older builds read.
  EXPECT_EQ(index_.section_version(), 1u);
  std::vector<std::string> records = Dump(index_);
  ASSERT_EQ(records.size(), 2u);

  FileIndex other;
  std::unique_ptr<SectionLoader> loader = other.NewLoader(1);
  ASSERT_TRUE(loader->Add(records[0]).ok());
  EXPECT_EQ(loader->Add(records[0]).code(), StatusCode::kInvalid);

  wire::FileEntry bad;
  ASSERT_TRUE(bad.ParseFromString(records[1]));
  bad.set_path("../outside");
  EXPECT_EQ(other.NewLoader(1)->Add(bad.SerializeAsString()).code(), StatusCode::kInvalid);
  bad.set_path("b");
  bad.set_hash("short");
  EXPECT_EQ(other.NewLoader(1)->Add(bad.SerializeAsString()).code(), StatusCode::kInvalid);
  bad = File(".synod-tmp-1-b", "two");
  EXPECT_EQ(other.NewLoader(1)->Add(bad.SerializeAsString()).code(), StatusCode::kInvalid);
  EXPECT_EQ(other.NewLoader(1)->Add(std::string("\xff\xff\xff", 3)).code(), StatusCode::kInvalid);
  EXPECT_EQ(other.size(), 0u);
}

TEST_F(FileIndexTest, PurgeDropsTombstonesOlderThanItsTimeAndRemembersHowFar) {
  const uint64_t a = Put(File("a", "1"), 0);
  const uint64_t b = Put(File("b", "2"), 0);
  const uint64_t a_deleted = Put(Deleted("a"), a);
  const int64_t a_deleted_at = last_at_;
  Put(Deleted("b"), b);
  const int64_t b_deleted_at = last_at_;
  Put(File("c", "3"), 0);
  EXPECT_EQ(index_.tombstones(), 2u);
  EXPECT_EQ(index_.OldestTombstoneNanos(), a_deleted_at);
  std::vector<std::string> changed;
  index_.SetListener({[&](const std::string& path) { changed.push_back(path); }, nullptr, nullptr});

  // A purge is a version 2 command: as version 1 it is refused, and changes nothing.
  const Proposal purge = FileIndex::Purge(b_deleted_at);
  EXPECT_EQ(purge.version, 2u);
  EXPECT_FALSE(index_.Apply(ApplyContext{++next_index_, kT0}, 1, purge.body).ok());
  EXPECT_EQ(index_.tombstones(), 2u);

  // Before b's deletion: only a's tombstone goes.
  ASSERT_TRUE(index_.Apply(ApplyContext{++next_index_, kT0}, 2, purge.body).ok());
  EXPECT_EQ(index_.Find("a"), nullptr);
  ASSERT_NE(index_.Find("b"), nullptr);
  EXPECT_TRUE(index_.Find("b")->deleted());
  EXPECT_NE(index_.Find("c"), nullptr);
  EXPECT_EQ(changed, std::vector<std::string>{"a"});
  EXPECT_EQ(index_.purged_through(), a_deleted);
  EXPECT_EQ(index_.tombstones(), 1u);
  EXPECT_EQ(index_.OldestTombstoneNanos(), b_deleted_at);
  EXPECT_EQ(index_.size(), 2u);
  EXPECT_EQ(index_.live(), 1u);

  // The path can be written again, as a new file.
  EXPECT_EQ(Put(File("a", "new"), 0), next_index_);
  // A later purge takes the rest; the watermark never goes back.
  ASSERT_TRUE(
      index_.Apply(ApplyContext{++next_index_, kT0}, 2, FileIndex::Purge(b_deleted_at + 1).body)
          .ok());
  EXPECT_EQ(index_.tombstones(), 0u);
  EXPECT_FALSE(index_.OldestTombstoneNanos().has_value());
  EXPECT_GT(index_.purged_through(), a_deleted);
}

TEST_F(FileIndexTest, AppliedThroughFollowsTheContextIndex) {
  EXPECT_EQ(index_.applied_through(), 0u);
  Put(File("a", "one"), 0);
  EXPECT_EQ(index_.applied_through(), 101u);
  next_index_ = 250;
  Put(File("a", "one"), 0);  // no change, still applied
  EXPECT_EQ(index_.applied_through(), 251u);
}

// A node whose answer got lost announces its next state with an older base: its own version is
// replaced, with no conflict copy (there was no other writer), and a delete of it is accepted.
TEST_F(FileIndexTest, ANodesOwnVersionIsReplacedWhateverBaseItNames) {
  const uint64_t first = Put(File("p", "first"), 0);
  const uint64_t second = Put(File("p", "second"), 0);
  EXPECT_GT(second, first);
  EXPECT_EQ(index_.conflicts(), 0u);
  EXPECT_EQ(index_.live(), 1u);
  EXPECT_EQ(index_.Find("p")->hash(), Sha256("second"));
  EXPECT_TRUE(Announce(Deleted("p"), first).ok());
  EXPECT_TRUE(index_.Find("p")->deleted());
  // Another node's stale base still conflicts.
  Put(File("q", "a's"), 0);
  Put(File("q", "b's", "node-b"), 0);
  EXPECT_EQ(index_.conflicts(), 1u);
}

}  // namespace
}  // namespace synod
