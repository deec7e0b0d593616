#include "filesync/folder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "filesync/file_index.h"
#include "filesync/sync_path.h"

namespace synod {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMtime = 1'795'961'100'123'456'789;  // 2026-11-29T14:05:00.123456789Z

// A temporary directory holding "folder" (the synced folder) and "outside" (what no Folder call
// may touch); removed at the end.
class FolderTest : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/synod-folder-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr) << std::strerror(errno);
    base_ = pattern;
    root_ = base_ + "/folder";
    outside_ = base_ + "/outside";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
    Result<Folder> folder = Folder::Open(root_);
    ASSERT_TRUE(folder.ok()) << folder.error();
    folder_.emplace(std::move(folder.value()));
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(base_, ignored);
  }

  std::string At(const std::string& path) const { return root_ + "/" + path; }

  void Write(const std::string& path, const std::string& content, mode_t mode = 0644) {
    const std::string full = At(path);
    fs::create_directories(fs::path(full).parent_path());
    std::ofstream(full, std::ios::binary | std::ios::trunc) << content;
    ASSERT_EQ(chmod(full.c_str(), mode), 0);
  }

  static std::string Slurp(const std::string& full) {
    std::ifstream in(full, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

  static bool Exists(const std::string& full) {
    struct stat st {};
    return lstat(full.c_str(), &st) == 0;
  }

  static struct stat Lstat(const std::string& full) {
    struct stat st {};
    EXPECT_EQ(lstat(full.c_str(), &st), 0) << full;
    return st;
  }

  // Every path below `dir` with its content (files) or target (links), links not followed.
  static std::map<std::string, std::string> Tree(const std::string& dir) {
    std::map<std::string, std::string> tree;
    for (const fs::directory_entry& item : fs::recursive_directory_iterator(dir)) {
      const std::string relative = fs::relative(item.path(), dir).string();
      if (item.is_symlink()) {
        tree[relative] = "-> " + fs::read_symlink(item.path()).string();
      } else if (item.is_directory()) {
        tree[relative] = "dir";
      } else {
        tree[relative] = Slurp(item.path().string());
      }
    }
    return tree;
  }

  // The entry an index would hold for `content` at `path`.
  static wire::FileEntry Entry(const std::string& path, const std::string& content,
                               uint32_t mode = 0640, uint64_t version = 17) {
    wire::FileEntry entry;
    entry.set_path(path);
    entry.set_kind(wire::KIND_FILE);
    entry.set_version(version);
    entry.set_size(content.size());
    entry.set_mode(mode);
    entry.set_mtime_nanos(kMtime);
    entry.set_hash(Sha256(content));
    for (size_t at = 0; at < content.size(); at += kFileBlockSize) {
      entry.add_blocks(Sha256(std::string_view(content).substr(at, kFileBlockSize)));
    }
    entry.set_origin("node-a");
    return entry;
  }

  // Writes `content` through CreateTemp, WriteAt (block by block) and Commit.
  Result<wire::LocalFileRecord> Put(const wire::FileEntry& entry, const std::string& content,
                                    const wire::LocalFileRecord* expected, uint64_t unique = 1) {
    Result<Folder::TempFile> temp = folder_->CreateTemp(entry.path(), content.size(), unique);
    if (!temp.ok()) return temp.status();
    for (size_t at = 0; at < content.size(); at += kFileBlockSize) {
      Status written =
          Folder::WriteAt(temp.value(), at, std::string_view(content).substr(at, kFileBlockSize));
      if (!written.ok()) return written;
    }
    return folder_->Commit(temp.value(), entry, expected);
  }

  std::string base_, root_, outside_;
  std::optional<Folder> folder_;
};

TEST_F(FolderTest, ObserveHashesAFileInBlocksOf128KiB) {
  // From 8 MiB, the file is read ahead and hashed on two threads: sizes on both sides of that,
  // one a whole number of its 1 MiB chunks, one ending in a part of a chunk and of a block.
  for (const size_t size : {size_t{0}, size_t{1}, kFileBlockSize, kFileBlockSize + 1,
                            (size_t{8} << 20) - 1, size_t{8} << 20, (size_t{9} << 20) + 3}) {
    SCOPED_TRACE(size);
    // No two blocks alike, so that a block hashed in the wrong place shows.
    std::string content(size, '\0');
    uint32_t state = static_cast<uint32_t>(size) | 1;
    for (char& byte : content) {
      state = state * 1664525u + 1013904223u;
      byte = static_cast<char>(state >> 24);
    }
    Write("f", content, 0640);
    Result<wire::LocalFileRecord> record = folder_->Observe("f", nullptr);
    ASSERT_TRUE(record.ok()) << record.error();
    const struct stat st = Lstat(At("f"));
    EXPECT_EQ(record.value().path(), "f");
    EXPECT_TRUE(record.value().present());
    EXPECT_EQ(record.value().kind(), wire::KIND_FILE);
    EXPECT_EQ(record.value().size(), size);
    EXPECT_EQ(record.value().mode(), 0640u);
    EXPECT_EQ(record.value().inode(), st.st_ino);
    EXPECT_EQ(record.value().mtime_nanos(),
              int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec);
    EXPECT_EQ(record.value().hash(), Sha256(content));
    const size_t blocks = (size + kFileBlockSize - 1) / kFileBlockSize;
    ASSERT_EQ(static_cast<size_t>(record.value().blocks_size()), blocks);
    for (size_t i = 0; i < blocks; ++i) {
      EXPECT_EQ(record.value().blocks(static_cast<int>(i)),
                Sha256(std::string_view(content).substr(i * kFileBlockSize, kFileBlockSize)));
    }
    EXPECT_EQ(record.value().synced_version(), 0u);
    ASSERT_EQ(unlink(At("f").c_str()), 0);
  }
  EXPECT_EQ(Sha256("").size(), kHashBytes);
  EXPECT_EQ(HexOf(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(FolderTest, ObserveDirectoryLinkAndAbsentPath) {
  ASSERT_EQ(mkdir(At("d").c_str(), 0700), 0);
  ASSERT_EQ(chmod(At("d").c_str(), 0750), 0);
  Result<wire::LocalFileRecord> dir = folder_->Observe("d", nullptr);
  ASSERT_TRUE(dir.ok()) << dir.error();
  EXPECT_TRUE(dir.value().present());
  EXPECT_EQ(dir.value().kind(), wire::KIND_DIRECTORY);
  EXPECT_EQ(dir.value().mode(), 0750u);
  EXPECT_EQ(dir.value().size(), 0u);
  EXPECT_EQ(dir.value().hash(), "");

  // A link is read as a link, never followed.
  ASSERT_EQ(symlink("/etc/passwd", At("d/passwd").c_str()), 0);
  Result<wire::LocalFileRecord> link = folder_->Observe("d/passwd", nullptr);
  ASSERT_TRUE(link.ok()) << link.error();
  EXPECT_TRUE(link.value().present());
  EXPECT_EQ(link.value().kind(), wire::KIND_SYMLINK);
  EXPECT_EQ(link.value().target(), "/etc/passwd");
  EXPECT_EQ(link.value().mode(), 0u);
  EXPECT_EQ(link.value().hash(), "");
  EXPECT_EQ(link.value().blocks_size(), 0);
  ASSERT_EQ(symlink("missing", At("dangling").c_str()), 0);
  Result<wire::LocalFileRecord> dangling = folder_->Observe("dangling", nullptr);
  ASSERT_TRUE(dangling.ok()) << dangling.error();
  EXPECT_EQ(dangling.value().kind(), wire::KIND_SYMLINK);
  EXPECT_EQ(dangling.value().target(), "missing");

  for (const std::string& path :
       std::vector<std::string>{"absent", "d/absent", "nodir/x", "d/passwd/x"}) {
    Result<wire::LocalFileRecord> absent = folder_->Observe(path, nullptr);
    ASSERT_TRUE(absent.ok()) << path << ": " << absent.error();
    EXPECT_FALSE(absent.value().present()) << path;
    EXPECT_EQ(absent.value().path(), path);
  }

  ASSERT_EQ(mkfifo(At("fifo").c_str(), 0600), 0);
  EXPECT_EQ(folder_->Observe("fifo", nullptr).code(), StatusCode::kUnsupported);
}

TEST_F(FolderTest, ObserveReusesHashesOfAnUnchangedFile) {
  Write("f", "content", 0644);
  Result<wire::LocalFileRecord> first = folder_->Observe("f", nullptr);
  ASSERT_TRUE(first.ok()) << first.error();
  // A previous record with the same inode, size, mtime and mode: its hashes are taken as they
  // are (the file is not read again).
  wire::LocalFileRecord previous = first.value();
  previous.set_hash(std::string(kHashBytes, 'H'));
  previous.set_blocks(0, std::string(kHashBytes, 'B'));
  Result<wire::LocalFileRecord> reused = folder_->Observe("f", &previous);
  ASSERT_TRUE(reused.ok()) << reused.error();
  EXPECT_EQ(reused.value().hash(), std::string(kHashBytes, 'H'));
  ASSERT_EQ(reused.value().blocks_size(), 1);
  EXPECT_EQ(reused.value().blocks(0), std::string(kHashBytes, 'B'));

  // Any of them different: hashed again.
  wire::LocalFileRecord other_mode = previous;
  other_mode.set_mode(0600);
  EXPECT_EQ(folder_->Observe("f", &other_mode).value().hash(), Sha256("content"));
  wire::LocalFileRecord other_inode = previous;
  other_inode.set_inode(previous.inode() + 1);
  EXPECT_EQ(folder_->Observe("f", &other_inode).value().hash(), Sha256("content"));
  const struct timespec times[2] = {{0, UTIME_OMIT}, {1'000'000, 5}};
  ASSERT_EQ(utimensat(AT_FDCWD, At("f").c_str(), times, 0), 0);
  Result<wire::LocalFileRecord> touched = folder_->Observe("f", &previous);
  ASSERT_TRUE(touched.ok()) << touched.error();
  EXPECT_EQ(touched.value().hash(), Sha256("content"));
  EXPECT_EQ(touched.value().blocks(0), Sha256("content"));
  EXPECT_EQ(touched.value().mtime_nanos(), 1'000'000'000'000'005);
}

TEST_F(FolderTest, CommitPutsContentModeAndMtimeInPlace) {
  std::string content(kFileBlockSize + 5, 'a');
  content.back() = 'z';
  const wire::FileEntry entry = Entry("sub/deeper/new.bin", content, 0640);
  Result<Folder::TempFile> temp = folder_->CreateTemp(entry.path(), content.size(), 0xab);
  ASSERT_TRUE(temp.ok()) << temp.error();
  EXPECT_EQ(temp.value().path, TempPathFor(entry.path(), 0xab));
  EXPECT_TRUE(IsSynodInternal(temp.value().path));
  EXPECT_TRUE(Exists(At(temp.value().path)));
  EXPECT_FALSE(Exists(At(entry.path())));  // nothing in place before Commit
  // Blocks written out of order.
  ASSERT_TRUE(Folder::WriteAt(temp.value(), kFileBlockSize, content.substr(kFileBlockSize)).ok());
  EXPECT_FALSE(Exists(At(entry.path())));
  ASSERT_TRUE(Folder::WriteAt(temp.value(), 0, content.substr(0, kFileBlockSize)).ok());
  Result<wire::LocalFileRecord> committed = folder_->Commit(temp.value(), entry, nullptr);
  ASSERT_TRUE(committed.ok()) << committed.error();

  EXPECT_EQ(Slurp(At(entry.path())), content);
  EXPECT_FALSE(Exists(At(temp.value().path)));
  const struct stat st = Lstat(At(entry.path()));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec, kMtime);
  const wire::LocalFileRecord& record = committed.value();
  EXPECT_EQ(record.path(), entry.path());
  EXPECT_TRUE(record.present());
  EXPECT_EQ(record.kind(), wire::KIND_FILE);
  EXPECT_EQ(record.size(), content.size());
  EXPECT_EQ(record.mode(), 0640u);
  EXPECT_EQ(record.mtime_nanos(), kMtime);
  EXPECT_EQ(record.inode(), st.st_ino);
  EXPECT_EQ(record.hash(), Sha256(content));
  EXPECT_EQ(record.blocks_size(), 2);
  // What Commit answers is what Observe sees.
  Result<wire::LocalFileRecord> observed = folder_->Observe(entry.path(), nullptr);
  ASSERT_TRUE(observed.ok());
  EXPECT_EQ(ContentKey(observed.value()), ContentKey(record));
  EXPECT_EQ(ContentKey(observed.value()), ContentKey(entry));
  EXPECT_EQ(observed.value().mtime_nanos(), record.mtime_nanos());
  EXPECT_EQ(observed.value().inode(), record.inode());

  // Replacing it, as the record describes it: a new inode, the new content.
  const wire::FileEntry next = Entry(entry.path(), "second", 0600, 18);
  Result<wire::LocalFileRecord> replaced = Put(next, "second", &record, 2);
  ASSERT_TRUE(replaced.ok()) << replaced.error();
  EXPECT_EQ(Slurp(At(entry.path())), "second");
  EXPECT_EQ(Lstat(At(entry.path())).st_mode & 07777, 0600u);
  // No temporary left anywhere.
  for (const auto& [path, what] : Tree(root_)) {
    EXPECT_EQ(path.find(".synod-tmp-"), std::string::npos) << path;
  }
  // An empty file.
  Result<wire::LocalFileRecord> empty = Put(Entry("empty", ""), "", nullptr, 3);
  ASSERT_TRUE(empty.ok()) << empty.error();
  EXPECT_EQ(Lstat(At("empty")).st_size, 0);
  EXPECT_EQ(empty.value().hash(), Sha256(""));
}

TEST_F(FolderTest, CommitRefusesWhenTheTargetChangedAndLeavesItAlone) {
  Write("a.txt", "old", 0644);
  Result<wire::LocalFileRecord> expected = folder_->Observe("a.txt", nullptr);
  ASSERT_TRUE(expected.ok());
  // A local edit meanwhile (another size).
  Write("a.txt", "edited here", 0644);
  const wire::FileEntry entry = Entry("a.txt", "from the index");
  Result<Folder::TempFile> temp = folder_->CreateTemp("a.txt", entry.size(), 5);
  ASSERT_TRUE(temp.ok());
  ASSERT_TRUE(Folder::WriteAt(temp.value(), 0, "from the index").ok());
  EXPECT_EQ(folder_->Commit(temp.value(), entry, &expected.value()).code(), StatusCode::kConflict);
  EXPECT_EQ(Slurp(At("a.txt")), "edited here");
  EXPECT_FALSE(Exists(At(temp.value().path)));

  // Same size, other mtime (a chmod-free edit in place).
  Result<wire::LocalFileRecord> now = folder_->Observe("a.txt", nullptr);
  ASSERT_TRUE(now.ok());
  const struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, At("a.txt").c_str(), times, 0), 0);
  EXPECT_EQ(Put(entry, "from the index", &now.value(), 6).code(), StatusCode::kConflict);
  EXPECT_EQ(Slurp(At("a.txt")), "edited here");

  // Expected absent, but a file appeared; expected present, but it is gone.
  EXPECT_EQ(Put(entry, "from the index", nullptr, 7).code(), StatusCode::kConflict);
  EXPECT_EQ(Slurp(At("a.txt")), "edited here");
  const wire::FileEntry other = Entry("b.txt", "b");
  Result<wire::LocalFileRecord> gone = folder_->Observe("a.txt", nullptr);
  gone.value().set_path("b.txt");
  EXPECT_EQ(Put(other, "b", &gone.value(), 8).code(), StatusCode::kConflict);
  EXPECT_FALSE(Exists(At("b.txt")));
  // A chmod alone is a change too.
  Result<wire::LocalFileRecord> before_chmod = folder_->Observe("a.txt", nullptr);
  ASSERT_EQ(chmod(At("a.txt").c_str(), 0600), 0);
  EXPECT_EQ(Put(entry, "from the index", &before_chmod.value(), 9).code(), StatusCode::kConflict);
  EXPECT_EQ(Slurp(At("a.txt")), "edited here");

  for (const auto& [path, what] : Tree(root_)) {
    EXPECT_EQ(path.find(".synod-tmp-"), std::string::npos) << path;
  }
}

TEST_F(FolderTest, AParentSwappedForALinkOutsideReachesNothingOutside) {
  Write("../outside/keep.txt", "precious", 0644);
  ASSERT_EQ(mkdir((outside_ + "/dir").c_str(), 0755), 0);
  ASSERT_EQ(symlink(outside_.c_str(), At("link").c_str()), 0);
  const std::map<std::string, std::string> before = Tree(outside_);
  ASSERT_EQ(before.size(), 2u);

  // Writing a file below the link: refused at CreateTemp.
  EXPECT_FALSE(folder_->CreateTemp("link/x", 3, 1).ok());
  EXPECT_FALSE(folder_->CreateTemp("link/new/x", 3, 1).ok());
  // A temporary made while "sub" was a directory, committed after "sub" became the link.
  ASSERT_EQ(mkdir(At("sub").c_str(), 0755), 0);
  const wire::FileEntry entry = Entry("sub/x", "bad");
  Result<Folder::TempFile> temp = folder_->CreateTemp("sub/x", 3, 2);
  ASSERT_TRUE(temp.ok()) << temp.error();
  ASSERT_TRUE(Folder::WriteAt(temp.value(), 0, "bad").ok());
  ASSERT_EQ(rename(At("sub").c_str(), At("moved").c_str()), 0);
  ASSERT_EQ(symlink(outside_.c_str(), At("sub").c_str()), 0);
  EXPECT_FALSE(folder_->Commit(temp.value(), entry, nullptr).ok());
  // Overwriting a file outside, with the right expectation of it.
  wire::LocalFileRecord keep;
  keep.set_path("link/keep.txt");
  keep.set_present(true);
  keep.set_kind(wire::KIND_FILE);
  const struct stat keep_stat = Lstat(outside_ + "/keep.txt");
  keep.set_size(static_cast<uint64_t>(keep_stat.st_size));
  keep.set_mode(keep_stat.st_mode & 07777);
  keep.set_mtime_nanos(int64_t{keep_stat.st_mtim.tv_sec} * 1'000'000'000 +
                       keep_stat.st_mtim.tv_nsec);
  keep.set_inode(keep_stat.st_ino);
  EXPECT_FALSE(Put(Entry("link/keep.txt", "owned"), "owned", &keep, 3).ok());

  wire::FileEntry dir;
  dir.set_path("link/d");
  dir.set_kind(wire::KIND_DIRECTORY);
  dir.set_mode(0755);
  dir.set_origin("node-a");
  EXPECT_FALSE(folder_->MakeDirectory(dir, nullptr).ok());
  dir.set_path("link/d/e");
  EXPECT_FALSE(folder_->MakeDirectory(dir, nullptr).ok());
  wire::FileEntry link;
  link.set_path("link/s");
  link.set_kind(wire::KIND_SYMLINK);
  link.set_target("/etc/passwd");
  link.set_origin("node-a");
  EXPECT_FALSE(folder_->MakeSymlink(link, nullptr, 4).ok());

  // Deleting through the link.
  EXPECT_FALSE(folder_->Remove("link/keep.txt", keep).ok());
  wire::LocalFileRecord outside_dir;
  outside_dir.set_path("link/dir");
  outside_dir.set_present(true);
  outside_dir.set_kind(wire::KIND_DIRECTORY);
  EXPECT_FALSE(folder_->Remove("link/dir", outside_dir).ok());

  // Reading and observing through it.
  EXPECT_FALSE(folder_->Read("link/keep.txt", 0, 100).ok());
  Result<wire::LocalFileRecord> observed = folder_->Observe("link/keep.txt", nullptr);
  ASSERT_TRUE(observed.ok());
  EXPECT_FALSE(observed.value().present());

  EXPECT_EQ(Tree(outside_), before);
  // The links themselves are untouched, and "sub/x" was not written in the old directory
  // either.
  EXPECT_EQ(fs::read_symlink(At("link")).string(), outside_);
  EXPECT_FALSE(Exists(At("moved/x")));
}

TEST_F(FolderTest, MakeDirectoryAndSymlinkInsideTheFolder) {
  wire::FileEntry dir;
  dir.set_path("a/b/c");
  dir.set_kind(wire::KIND_DIRECTORY);
  dir.set_mode(0750);
  Result<wire::LocalFileRecord> made = folder_->MakeDirectory(dir, nullptr);
  ASSERT_TRUE(made.ok()) << made.error();
  EXPECT_EQ(Lstat(At("a/b/c")).st_mode & 07777, 0750u);  // not masked by the umask
  EXPECT_EQ(made.value().kind(), wire::KIND_DIRECTORY);
  EXPECT_EQ(made.value().mode(), 0750u);

  wire::FileEntry link;
  link.set_path("a/l");
  link.set_kind(wire::KIND_SYMLINK);
  link.set_target("b/c");
  Result<wire::LocalFileRecord> linked = folder_->MakeSymlink(link, nullptr, 9);
  ASSERT_TRUE(linked.ok()) << linked.error();
  EXPECT_EQ(fs::read_symlink(At("a/l")).string(), "b/c");
  EXPECT_EQ(linked.value().kind(), wire::KIND_SYMLINK);
  EXPECT_EQ(linked.value().target(), "b/c");
  // Retargeting it, as expected.
  link.set_target("elsewhere");
  Result<wire::LocalFileRecord> retargeted = folder_->MakeSymlink(link, &linked.value(), 10);
  ASSERT_TRUE(retargeted.ok()) << retargeted.error();
  EXPECT_EQ(fs::read_symlink(At("a/l")).string(), "elsewhere");
  // Not when a link appeared where none was expected.
  link.set_target("third");
  EXPECT_EQ(folder_->MakeSymlink(link, nullptr, 11).code(), StatusCode::kConflict);
  EXPECT_EQ(fs::read_symlink(At("a/l")).string(), "elsewhere");
  for (const auto& [path, what] : Tree(root_)) {
    EXPECT_EQ(path.find(".synod-tmp-"), std::string::npos) << path;
  }
}

TEST_F(FolderTest, RemoveDeletesWhatIsExpectedAndRefusesANonEmptyDirectory) {
  Write("d/f", "data");
  Result<wire::LocalFileRecord> dir = folder_->Observe("d", nullptr);
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(folder_->Remove("d", dir.value()).code(), StatusCode::kConflict);
  EXPECT_TRUE(Exists(At("d")));
  EXPECT_EQ(Slurp(At("d/f")), "data");

  // A file changed since it was observed stays.
  Result<wire::LocalFileRecord> file = folder_->Observe("d/f", nullptr);
  ASSERT_TRUE(file.ok());
  Write("d/f", "changed");
  EXPECT_EQ(folder_->Remove("d/f", file.value()).code(), StatusCode::kConflict);
  EXPECT_EQ(Slurp(At("d/f")), "changed");

  file = folder_->Observe("d/f", nullptr);
  ASSERT_TRUE(folder_->Remove("d/f", file.value()).ok());
  EXPECT_FALSE(Exists(At("d/f")));
  ASSERT_TRUE(folder_->Remove("d", dir.value()).ok());
  EXPECT_FALSE(Exists(At("d")));

  // A link is removed, not what it points to.
  Write("target", "stays");
  ASSERT_EQ(symlink("target", At("l").c_str()), 0);
  Result<wire::LocalFileRecord> link = folder_->Observe("l", nullptr);
  ASSERT_TRUE(link.ok());
  ASSERT_TRUE(folder_->Remove("l", link.value()).ok());
  EXPECT_FALSE(Exists(At("l")));
  EXPECT_EQ(Slurp(At("target")), "stays");
}

TEST_F(FolderTest, ScanListsEverythingWithoutFollowingLinks) {
  Write("a.txt", "a");
  Write("d/b", "bb");
  Write("d/e/deep", "ccc");
  ASSERT_EQ(symlink("../a.txt", At("d/link").c_str()), 0);
  ASSERT_EQ(symlink(outside_.c_str(), At("out").c_str()), 0);
  Write("../outside/secret", "s");
  Write(".synod-tmp-1-a.txt", "partial");
  Write("d/.synod-tmp-2-b", "partial");
  Write("bad\nname", "x");

  Folder::ScanResult kept = folder_->Scan("", false);
  std::map<std::string, wire::LocalFileRecord> found;
  for (const Folder::ScanEntry& entry : kept.entries) {
    EXPECT_EQ(entry.stat.path(), entry.path);
    EXPECT_TRUE(found.emplace(entry.path, entry.stat).second) << "twice: " << entry.path;
  }
  std::set<std::string> paths;
  for (const auto& [path, stat] : found) paths.insert(path);
  EXPECT_EQ(paths,
            (std::set<std::string>{"a.txt", "d", "d/b", "d/e", "d/e/deep", "d/link", "out"}));
  EXPECT_EQ(found["a.txt"].kind(), wire::KIND_FILE);
  EXPECT_EQ(found["a.txt"].size(), 1u);
  EXPECT_EQ(found["a.txt"].hash(), "");  // not hashed
  EXPECT_EQ(found["d/e/deep"].size(), 3u);
  EXPECT_EQ(found["d"].kind(), wire::KIND_DIRECTORY);
  EXPECT_EQ(found["d/link"].kind(), wire::KIND_SYMLINK);
  EXPECT_EQ(found["out"].kind(), wire::KIND_SYMLINK);
  EXPECT_EQ(found["d/b"].inode(), Lstat(At("d/b")).st_ino);
  EXPECT_EQ(kept.temporaries_removed, 0u);
  EXPECT_EQ(kept.problems.size(), 1u);  // "bad\nname"
  EXPECT_TRUE(Exists(At(".synod-tmp-1-a.txt")));
  EXPECT_TRUE(Exists(At("d/.synod-tmp-2-b")));

  Folder::ScanResult cleaned = folder_->Scan("", true);
  EXPECT_EQ(cleaned.entries.size(), kept.entries.size());
  EXPECT_EQ(cleaned.temporaries_removed, 2u);
  EXPECT_FALSE(Exists(At(".synod-tmp-1-a.txt")));
  EXPECT_FALSE(Exists(At("d/.synod-tmp-2-b")));
  EXPECT_EQ(Slurp(At("a.txt")), "a");
  EXPECT_EQ(Slurp(outside_ + "/secret"), "s");
  EXPECT_EQ(folder_->Scan("", true).temporaries_removed, 0u);

  // Below one directory only; a link given as the directory is not followed.
  std::set<std::string> below;
  for (const Folder::ScanEntry& entry : folder_->Scan("d", false).entries) below.insert(entry.path);
  EXPECT_EQ(below, (std::set<std::string>{"d/b", "d/e", "d/e/deep", "d/link"}));
  EXPECT_TRUE(folder_->Scan("out", false).entries.empty());
  EXPECT_TRUE(folder_->Scan("absent", false).entries.empty());
}

TEST_F(FolderTest, ReadReturnsTheBytes) {
  std::string content(kFileBlockSize + 100, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i % 251);
  Write("d/f", content);
  Result<std::string> head = folder_->Read("d/f", 0, 10);
  ASSERT_TRUE(head.ok()) << head.error();
  EXPECT_EQ(head.value(), content.substr(0, 10));
  Result<std::string> tail = folder_->Read("d/f", kFileBlockSize, kFileBlockSize);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail.value(), content.substr(kFileBlockSize));  // fewer at the end
  EXPECT_EQ(folder_->Read("d/f", content.size() + 5, 10).value(), "");
  EXPECT_EQ(folder_->Read("d/f", 0, content.size()).value(), content);
  EXPECT_FALSE(folder_->Read("absent", 0, 10).ok());
  ASSERT_EQ(symlink("f", At("d/l").c_str()), 0);
  EXPECT_FALSE(folder_->Read("d/l", 0, 10).ok());  // a link is not followed
}

TEST_F(FolderTest, ALargeFileWrittenInRunsAndPiecesReadsBackWhole) {
  // Large enough for direct I/O where the file system allows it; the same bytes either way.
  const size_t blocks = Folder::kDirectWriteMinBytes / kFileBlockSize + 3;
  std::string content(blocks * kFileBlockSize - 1000, '\0');  // a partial last block
  for (size_t i = 0; i < content.size(); ++i)
    content[i] = static_cast<char>((i * 7 + i / 4096) % 253);
  const wire::FileEntry entry = Entry("big.bin", content);
  Result<Folder::TempFile> temp = folder_->CreateTemp(entry.path(), content.size(), 7);
  ASSERT_TRUE(temp.ok()) << temp.error();
  auto block = [&](size_t index) {
    return std::string_view(content).substr(index * kFileBlockSize, kFileBlockSize);
  };
  // Blocks 4.. but the last two in one run of separately allocated (not necessarily aligned)
  // copies; the last two, the partial one last, as AlignedBytes (the end through the page
  // cache).
  std::vector<std::string> copies;
  for (size_t i = 4; i < blocks - 2; ++i) copies.emplace_back(block(i));
  std::vector<std::string_view> run(copies.begin(), copies.end());
  ASSERT_TRUE(Folder::WriteRun(temp.value(), 4 * kFileBlockSize, run).ok());
  const AlignedBytes before_last = AlignedBytes::CopyOf(block(blocks - 2));
  const AlignedBytes last = AlignedBytes::CopyOf(block(blocks - 1));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(last.view().data()) % 4096, 0u);
  EXPECT_EQ(last.size(), kFileBlockSize - 1000);
  const std::vector<std::string_view> end = {before_last.view(), last.view()};
  ASSERT_TRUE(Folder::WriteRun(temp.value(), (blocks - 2) * kFileBlockSize, end).ok());
  // Block 3 alone from an odd address; blocks 0-2 as one run from a page-aligned buffer.
  std::string shifted = "x" + std::string(block(3));
  ASSERT_TRUE(
      Folder::WriteAt(temp.value(), 3 * kFileBlockSize, std::string_view(shifted).substr(1)).ok());
  std::unique_ptr<char, decltype(&std::free)> aligned(
      static_cast<char*>(std::aligned_alloc(4096, 3 * kFileBlockSize)), &std::free);
  ASSERT_NE(aligned, nullptr);
  std::memcpy(aligned.get(), content.data(), 3 * kFileBlockSize);
  const std::string_view start(aligned.get(), 3 * kFileBlockSize);
  const std::vector<std::string_view> head = {start.substr(0, kFileBlockSize),
                                              start.substr(kFileBlockSize, kFileBlockSize),
                                              start.substr(2 * kFileBlockSize)};
  ASSERT_TRUE(Folder::WriteRun(temp.value(), 0, head).ok());
  Result<wire::LocalFileRecord> committed = folder_->Commit(temp.value(), entry, nullptr);
  ASSERT_TRUE(committed.ok()) << committed.error();
  EXPECT_EQ(Lstat(At("big.bin")).st_size, static_cast<off_t>(content.size()));
  EXPECT_TRUE(Slurp(At("big.bin")) == content);
  Result<wire::LocalFileRecord> observed = folder_->Observe("big.bin", nullptr);
  ASSERT_TRUE(observed.ok());
  // Hashed in parallel chunks: the same hashes, in order, as one block at a time.
  EXPECT_EQ(observed.value().hash(), Sha256(content));
  ASSERT_EQ(observed.value().blocks_size(), entry.blocks_size());
  for (int i = 0; i < entry.blocks_size(); ++i) {
    EXPECT_EQ(observed.value().blocks(i), entry.blocks(i)) << "block " << i;
  }
}

TEST_F(FolderTest, ReadBlockHashesAgainOnlyWhenTheFileMayHaveChanged) {
  std::string content(2 * kFileBlockSize, 'a');
  Write("f", content);
  Result<wire::LocalFileRecord> record = folder_->Observe("f", nullptr);
  ASSERT_TRUE(record.ok());
  const std::string second = record.value().blocks(1);
  Result<std::string> read = folder_->ReadBlock("f", 1, second, &record.value());
  ASSERT_TRUE(read.ok()) << read.error();
  EXPECT_EQ(read.value(), content.substr(kFileBlockSize));
  EXPECT_TRUE(folder_->ReadBlock("f", 1, second, nullptr).ok());
  // The stat alone is enough to be trusted: even a hash that does not match is not computed.
  const wire::LocalFileRecord stat = Folder::StatOf(record.value());
  EXPECT_EQ(stat.blocks_size(), 0);
  EXPECT_TRUE(folder_->ReadBlock("f", 1, Sha256("other"), &stat).ok());
  EXPECT_FALSE(folder_->ReadBlock("f", 1, Sha256("other"), nullptr).ok());
  EXPECT_FALSE(folder_->ReadBlock("absent", 0, second, nullptr).ok());

  // Rewritten in place: another mtime, so the stat no longer matches and the block is checked.
  {
    UniqueFd fd(open(At("f").c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_GE(fd.get(), 0);
    ASSERT_EQ(pwrite(fd.get(), "b", 1, kFileBlockSize), 1);
    const struct timespec times[2] = {{0, UTIME_OMIT}, {1, 0}};
    ASSERT_EQ(futimens(fd.get(), times), 0);
  }
  Result<std::string> changed = folder_->ReadBlock("f", 1, second, &record.value());
  ASSERT_FALSE(changed.ok());
  EXPECT_FALSE(folder_->ReadBlock("f", 1, second, &stat).ok());
  EXPECT_EQ(changed.status().code(), StatusCode::kNotFound);
  EXPECT_NE(changed.status().message().find("changed"), std::string::npos);
}

TEST_F(FolderTest, ReadBlocksAnswersEachBlockOnItsOwn) {
  std::string content(3 * kFileBlockSize + 10, 'a');
  for (size_t i = 0; i < content.size(); ++i)
    content[i] = static_cast<char>('a' + i / kFileBlockSize);
  Write("d/f", content);
  Result<wire::LocalFileRecord> record = folder_->Observe("d/f", nullptr);
  ASSERT_TRUE(record.ok()) << record.error();
  ASSERT_EQ(record.value().blocks_size(), 4);
  // Out of order, one asked twice, one whose hash is not the file's, and the short last one.
  const std::vector<Folder::BlockWanted> wanted = {{2, record.value().blocks(2)},
                                                   {0, record.value().blocks(0)},
                                                   {0, record.value().blocks(0)},
                                                   {1, Sha256("not this block")},
                                                   {3, record.value().blocks(3)}};
  std::vector<Result<std::string>> read = folder_->ReadBlocks("d/f", wanted, nullptr);
  ASSERT_EQ(read.size(), wanted.size());
  ASSERT_TRUE(read[0].ok()) << read[0].error();
  EXPECT_EQ(read[0].value(), content.substr(2 * kFileBlockSize, kFileBlockSize));
  ASSERT_TRUE(read[1].ok() && read[2].ok());
  EXPECT_EQ(read[1].value(), content.substr(0, kFileBlockSize));
  EXPECT_EQ(read[2].value(), read[1].value());
  ASSERT_FALSE(read[3].ok());
  EXPECT_EQ(read[3].status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(read[4].ok()) << read[4].error();
  EXPECT_EQ(read[4].value(), content.substr(3 * kFileBlockSize));
  // Trusted by its stat, the block is not hashed again.
  const wire::LocalFileRecord stat = Folder::StatOf(record.value());
  read = folder_->ReadBlocks("d/f", wanted, &stat);
  ASSERT_TRUE(read[3].ok());
  EXPECT_EQ(read[3].value(), content.substr(kFileBlockSize, kFileBlockSize));

  read = folder_->ReadBlocks("d/absent", wanted, nullptr);
  ASSERT_EQ(read.size(), wanted.size());
  for (const Result<std::string>& block : read)
    EXPECT_EQ(block.status().code(), StatusCode::kNotFound);
}

TEST_F(FolderTest, TheSyncedAttributeSetByCommitIsReadBackByObserve) {
  Write("probe", "p");
  if (setxattr(At("probe").c_str(), "user.synod.probe", "1", 1, 0) != 0) {
    GTEST_SKIP() << "no user xattrs on /tmp: " << std::strerror(errno);
  }
  const wire::FileEntry entry = Entry("f", "content", 0640, 4242);
  folder_->set_cluster_id("0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(Put(entry, "content", nullptr).ok());
  Result<wire::LocalFileRecord> observed = folder_->Observe("f", nullptr);
  ASSERT_TRUE(observed.ok()) << observed.error();
  EXPECT_EQ(observed.value().synced_version(), 4242u);
  EXPECT_EQ(observed.value().synced_cluster_id(), "0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(observed.value().synced_present());
  EXPECT_EQ(observed.value().synced_key(), ContentKey(entry));
  EXPECT_EQ(observed.value().synced_key(), ContentKey(observed.value()));

  // An edit in place keeps the attribute, but it no longer names this content.
  std::ofstream(At("f"), std::ios::binary | std::ios::app) << " more";
  Result<wire::LocalFileRecord> edited = folder_->Observe("f", nullptr);
  ASSERT_TRUE(edited.ok());
  EXPECT_EQ(edited.value().synced_version(), 0u);
  EXPECT_FALSE(edited.value().synced_present());
  // A file Synod never wrote has none.
  EXPECT_EQ(folder_->Observe("probe", nullptr).value().synced_version(), 0u);
}

}  // namespace
}  // namespace synod
