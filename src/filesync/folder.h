// Folder: every read and write of the synced directory, confined to it.
//
// Paths are relative ('/'-separated, checked by CheckSyncPath) and resolved from the folder's
// own directory descriptor one component at a time with O_NOFOLLOW, so no path, not even one
// whose parent was swapped for a symlink a moment ago, reaches outside the folder; a symlink in
// the folder is read as a link, never followed. Files are written whole to a temporary file
// beside the target (".synod-tmp-..."), fsynced, given their mode and mtime, and renamed into
// place, so a reader sees the old file or the new one, never a mix; the rename happens only if
// the target is still what the caller expected (a local edit made meanwhile wins, and is
// announced instead).
//
// A file written by Commit carries, in an extended attribute, the index version it was written
// for and the cluster whose index that is (set_cluster_id), so that a node whose own record is
// older (a crash) or lost still knows the file was synced; Observe returns what the attribute
// says, with its cluster, for the caller to trust or not.
//
// All calls block on the disk: run them on the thread pool (EventLoop::Work). A Folder is
// immutable after Open() but for set_cluster_id, and safe to use from several threads at once;
// copies (one for each piece of background work) are cheap.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "proto/filesync.pb.h"

namespace synod {

// SHA-256 of `data` (32 bytes).
std::string Sha256(std::string_view data);
std::string HexOf(std::string_view bytes);

// A copy of some bytes at an address direct I/O takes (4 KiB aligned), so that WriteRun writes
// them without copying them again. Move-only; the memory comes from the heap (std::bad_alloc
// without it, as for a std::string).
class AlignedBytes {
 public:
  AlignedBytes() = default;
  static AlignedBytes CopyOf(std::string_view data);
  std::string_view view() const { return {bytes_.get(), size_}; }
  size_t size() const { return size_; }

 private:
  struct Free {
    bool cached;  // from the cache of block-sized buffers (folder.cc)
    void operator()(char* bytes) const;
  };
  std::unique_ptr<char, Free> bytes_;
  size_t size_ = 0;
};

// An open file descriptor, closed when destroyed.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

class Folder {
 public:
  // A path found by Scan(), with what lstat said.
  struct ScanEntry {
    std::string path;
    wire::LocalFileRecord stat;  // present, kind, size, mode, mtime, inode (no hash)
  };
  struct ScanResult {
    std::vector<ScanEntry> entries;
    std::vector<std::string> problems;  // unreadable directories, names that are not valid
    size_t temporaries_removed = 0;
  };
  // A file being assembled: write its blocks with WriteAt, then Commit.
  struct TempFile {
    std::string path;  // the temporary's path, beside the target
    std::shared_ptr<UniqueFd> fd;
    // A large file's aligned blocks go around the page cache (O_DIRECT), when the file system
    // allows it: null otherwise.
    std::shared_ptr<UniqueFd> direct_fd;
  };
  // Files at least this large are written with direct I/O.
  static constexpr uint64_t kDirectWriteMinBytes = 8u << 20;

  static Result<Folder> Open(const std::string& root);
  const std::string& root() const { return root_; }
  // The cluster Commit names in the files' synced attributes. Not thread-safe: set it on the
  // copy that later copies are made from.
  void set_cluster_id(std::string cluster_id) { cluster_id_ = std::move(cluster_id); }

  // What is at `path` now. A regular file is hashed, unless `previous` describes the same
  // inode, size, mtime and mode (its hashes are reused). Absent: present() false. Devices,
  // sockets and FIFOs are reported as errors (kUnsupported).
  Result<wire::LocalFileRecord> Observe(const std::string& path,
                                        const wire::LocalFileRecord* previous) const;
  // Walks the folder below `under` ("" for all of it, which is listed too) without following
  // links. With `remove_temporaries` (at start, before any transfer), leftover temporaries of an
  // earlier run are deleted.
  ScanResult Scan(const std::string& under, bool remove_temporaries) const;

  // `length` bytes of `path` at `offset` (fewer at the end of the file).
  Result<std::string> Read(const std::string& path, uint64_t offset, size_t length) const;
  // Block `index` of `path` if its SHA-256 is still `hash` (kNotFound otherwise). While the file
  // is as `hashed_as` says (the stat its hashes were computed at; null: unknown), it is taken as
  // unchanged and not hashed again, as Observe does: the receiver verifies every block anyway.
  Result<std::string> ReadBlock(const std::string& path, uint32_t index, const std::string& hash,
                                const wire::LocalFileRecord* hashed_as) const;
  struct BlockWanted {
    uint32_t index = 0;
    std::string hash;
  };
  // Several blocks of `path`, each as ReadBlock would return it, from one open of the file.
  std::vector<Result<std::string>> ReadBlocks(const std::string& path,
                                              std::span<const BlockWanted> wanted,
                                              const wire::LocalFileRecord* hashed_as) const;
  // The part of `record` that says whether a file is unchanged (what Observe and ReadBlock
  // compare), without its hashes.
  static wire::LocalFileRecord StatOf(const wire::LocalFileRecord& record);
  Result<TempFile> CreateTemp(const std::string& target, uint64_t size, uint64_t unique) const;
  static Status WriteAt(const TempFile& temp, uint64_t offset, std::string_view data);
  // Writes `pieces` one after the other from `offset`: in one request where direct I/O allows
  // (pieces whose sizes are multiples of 4 KiB; those at aligned addresses, such as
  // AlignedBytes, without a copy), which a disk takes much faster than as many small ones. A
  // last piece of another size (the end of a file) goes through the page cache.
  static Status WriteRun(const TempFile& temp, uint64_t offset,
                         std::span<const std::string_view> pieces);
  // Makes durable what was written to the temporary so far (fdatasync, best effort): Commit
  // then has less to wait for. Safe beside writes to it.
  static void Flush(const TempFile& temp);
  // fsyncs the temporary, sets mode and mtime, and renames it over `entry.path()` if the target
  // is still as `expected` describes (null: absent); kConflict otherwise (the temporary is
  // removed). Returns the new file's record (hashes from `entry`).
  Result<wire::LocalFileRecord> Commit(const TempFile& temp, const wire::FileEntry& entry,
                                       const wire::LocalFileRecord* expected) const;
  void Discard(const TempFile& temp) const;
  Result<wire::LocalFileRecord> MakeDirectory(const wire::FileEntry& entry,
                                              const wire::LocalFileRecord* expected) const;
  Result<wire::LocalFileRecord> MakeSymlink(const wire::FileEntry& entry,
                                            const wire::LocalFileRecord* expected,
                                            uint64_t unique) const;
  // Deletes `path` (a directory only if empty) if it is still as `expected` describes.
  Status Remove(const std::string& path, const wire::LocalFileRecord& expected) const;

 private:
  Folder(std::string root, std::shared_ptr<UniqueFd> fd) : root_(std::move(root)), fd_(fd) {}
  // The directory holding `path`, opened without following links; created if `create`.
  Result<UniqueFd> OpenParent(std::string_view path, bool create) const;
  Status CheckUnchanged(int dir, const std::string& name, const std::string& path,
                        const wire::LocalFileRecord* expected) const;
  // `path` opened for reading without following links, and its stat in `opened` when given.
  Result<UniqueFd> OpenToRead(const std::string& path, wire::LocalFileRecord* opened) const;

  std::string root_;
  std::shared_ptr<UniqueFd> fd_;
  std::string cluster_id_;
};

}  // namespace synod
