#include "filesync/folder.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <system_error>
#include <thread>

#include <openssl/evp.h>

#include "filesync/file_index.h"
#include "filesync/sync_path.h"

namespace synod {
namespace {

std::string Errno(const std::string& what, const std::string& path, int error) {
  return what + " \"" + path + "\": " + std::strerror(error);
}

int64_t MtimeNanos(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// The record of what lstat says (no hash yet); false for kinds that are not synced.
bool FromStat(const struct stat& st, wire::LocalFileRecord& record) {
  record.set_present(true);
  record.set_mode(st.st_mode & 07777);
  record.set_mtime_nanos(MtimeNanos(st));
  record.set_inode(st.st_ino);
  record.clear_size();
  if (S_ISREG(st.st_mode)) {
    record.set_kind(wire::KIND_FILE);
    record.set_size(static_cast<uint64_t>(st.st_size));
  } else if (S_ISDIR(st.st_mode)) {
    record.set_kind(wire::KIND_DIRECTORY);
  } else if (S_ISLNK(st.st_mode)) {
    record.set_kind(wire::KIND_SYMLINK);
    record.set_mode(0);
  } else {
    return false;
  }
  return true;
}

// Compares what Folder::StatOf keeps.
bool SameStat(const wire::LocalFileRecord& a, const wire::LocalFileRecord& b) {
  return a.present() == b.present() && a.kind() == b.kind() && a.size() == b.size() &&
         a.mtime_nanos() == b.mtime_nanos() && a.inode() == b.inode() && a.mode() == b.mode();
}

// Reads up to `length` bytes at `offset`: fewer only at the end of the file.
Result<size_t> ReadAt(int fd, const std::string& path, char* data, size_t length, uint64_t offset) {
  size_t filled = 0;
  while (filled < length) {
    const ssize_t n =
        pread(fd, data + filled, length - filled, static_cast<off_t>(offset + filled));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Error(Errno("cannot read", path, errno));
    if (n == 0) break;
    filled += static_cast<size_t>(n);
  }
  return filled;
}

// Up to `length` bytes at `offset`, as a string.
Result<std::string> ReadString(int fd, const std::string& path, uint64_t offset, size_t length) {
  std::string data(length, '\0');
  Result<size_t> filled = ReadAt(fd, path, data.data(), length, offset);
  if (!filled.ok()) return filled.status();
  data.resize(filled.value());
  return data;
}

using ChunkConsumer = std::function<void(std::string_view)>;

// Reads `fd` from its start to its end, once, and hands each chunk in order to every consumer.
// Returns the bytes read. Alone, it reads a block and passes it to each consumer in turn. In
// parallel, each consumer runs on a thread of its own while this one reads ahead into a ring of
// buffers: a large file's two hashes (the whole file, and block by block) and its reads then
// overlap instead of taking turns, and memory stays at the ring's few chunks.
class ChunkReader {
 public:
  ChunkReader(int fd, const std::string& path) : fd_(fd), path_(path) {}

  Result<uint64_t> Run(std::span<const ChunkConsumer> consumers, bool parallel) {
    if (parallel && consumers.size() > 1) {
      std::optional<Result<uint64_t>> done = RunParallel(consumers);
      if (done) return *done;
    }
    std::string chunk(kFileBlockSize, '\0');
    uint64_t total = 0;
    for (;;) {
      Result<size_t> n = ReadAt(fd_, path_, chunk.data(), chunk.size(), total);
      if (!n.ok()) return n.status();
      if (n.value() == 0) break;
      for (const ChunkConsumer& consume : consumers) consume({chunk.data(), n.value()});
      total += n.value();
      if (n.value() < chunk.size()) break;
    }
    return total;
  }

 private:
  static constexpr size_t kChunkBytes = 8 * kFileBlockSize;
  static constexpr size_t kRingChunks = 4;

  // Nothing when no thread could be started (the caller reads alone).
  std::optional<Result<uint64_t>> RunParallel(std::span<const ChunkConsumer> consumers) {
    for (std::string& buffer : ring_) buffer.assign(kChunkBytes, '\0');
    consumed_.assign(consumers.size(), 0);
    std::vector<std::thread> threads;
    bool started = true;
    for (size_t i = 0; i < consumers.size() && started; ++i) {
      try {
        threads.emplace_back([this, i, &consume = consumers[i]] { Consume(i, consume); });
      } catch (const std::system_error&) {
        started = false;
      }
    }
    if (!started) {
      End();
      for (std::thread& thread : threads) thread.join();
      return std::nullopt;
    }
    Result<uint64_t> total = ReadAhead();
    for (std::thread& thread : threads) thread.join();
    return total;
  }

  Result<uint64_t> ReadAhead() {
    uint64_t total = 0;
    for (uint64_t k = 0;; ++k) {
      {
        // Chunk k goes where chunk k - kRingChunks was: wait until every consumer is done with
        // that one.
        std::unique_lock<std::mutex> lock(mu_);
        changed_.wait(lock, [&] {
          return *std::min_element(consumed_.begin(), consumed_.end()) + kRingChunks > k;
        });
      }
      std::string& buffer = ring_[k % kRingChunks];
      Result<size_t> n = ReadAt(fd_, path_, buffer.data(), buffer.size(), total);
      const size_t length = n.ok() ? n.value() : 0;
      total += length;
      const bool last = length < buffer.size();
      {
        std::lock_guard<std::mutex> lock(mu_);
        lengths_[k % kRingChunks] = length;
        if (length > 0) ++published_;
        ended_ = last;
      }
      changed_.notify_all();
      if (!n.ok()) return n.status();
      if (last) return total;
    }
  }

  void Consume(size_t consumer, const ChunkConsumer& consume) {
    for (uint64_t k = 0;; ++k) {
      size_t length = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        changed_.wait(lock, [&] { return published_ > k || ended_; });
        if (published_ <= k) return;
        length = lengths_[k % kRingChunks];
      }
      consume({ring_[k % kRingChunks].data(), length});
      {
        std::lock_guard<std::mutex> lock(mu_);
        consumed_[consumer] = k + 1;
      }
      changed_.notify_all();
    }
  }

  void End() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ended_ = true;
    }
    changed_.notify_all();
  }

  const int fd_;
  const std::string& path_;
  std::array<std::string, kRingChunks> ring_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::array<size_t, kRingChunks> lengths_{};  // guarded by mu_, as are the three below
  uint64_t published_ = 0;                     // chunks read
  bool ended_ = false;                         // no chunk after the published ones
  std::vector<uint64_t> consumed_;             // chunks each consumer is done with
};

// Files from this size are hashed in parallel (ChunkReader).
constexpr uint64_t kParallelHashMinBytes = 8u << 20;

Status HashInto(int fd, const std::string& path, wire::LocalFileRecord& record) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> whole(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(whole.get(), EVP_sha256(), nullptr);
  std::vector<std::string> hashes;
  const ChunkConsumer consumers[] = {
      [&whole](std::string_view data) { EVP_DigestUpdate(whole.get(), data.data(), data.size()); },
      [&hashes](std::string_view data) {
        for (size_t at = 0; at < data.size(); at += kFileBlockSize) {
          hashes.push_back(Sha256(data.substr(at, kFileBlockSize)));
        }
      }};
  Result<uint64_t> total =
      ChunkReader(fd, path).Run(consumers, record.size() >= kParallelHashMinBytes);
  if (!total.ok()) return total.status();
  record.clear_blocks();
  for (std::string& hash : hashes) record.add_blocks(std::move(hash));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(whole.get(), digest, &length);
  record.set_hash(std::string(reinterpret_cast<char*>(digest), length));
  record.set_size(total.value());  // what was hashed, should the file grow meanwhile
  return Status::Ok();
}

// The index version a file was written for, kept on the file itself ("<version> <mode> <hash
// in hex> <cluster id>"): the node's record of it may be older after a crash, and without this
// the file would look like a local change and be announced over newer versions. An edit in
// place keeps the attribute but changes the hash, so it is still seen as an edit.
constexpr char kSyncedAttribute[] = "user.synod.synced";

// Direct I/O wants the buffer, the offset and the length aligned to the device's logical block
// size: 4 KiB covers every common one (a device that wants more refuses, and the write goes
// through the page cache instead).
constexpr size_t kDirectAlign = 4096;

bool IsAligned(const void* pointer) {
  return reinterpret_cast<uintptr_t>(pointer) % kDirectAlign == 0;
}

// A full disk is worth retrying later (kBusy); anything else is an error.
Status WriteError(const std::string& path, int error) {
  return Status(error == ENOSPC ? StatusCode::kBusy : StatusCode::kError,
                Errno("cannot write", path, error));
}

std::vector<iovec> VectorsOf(std::span<const std::string_view> pieces) {
  std::vector<iovec> vectors;
  vectors.reserve(pieces.size());
  for (std::string_view piece : pieces) {
    vectors.push_back(iovec{const_cast<char*>(piece.data()), piece.size()});
  }
  return vectors;
}

// Writes all of `vectors` at `offset` (consuming them); false with errno set on failure.
bool WriteVectors(int fd, std::vector<iovec>& vectors, uint64_t offset) {
  size_t first = 0;
  for (;;) {
    while (first < vectors.size() && vectors[first].iov_len == 0) ++first;
    if (first == vectors.size()) return true;
    const int count = static_cast<int>(std::min<size_t>(vectors.size() - first, IOV_MAX));
    const ssize_t n = pwritev(fd, vectors.data() + first, count, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;
    if (n <= 0) return false;
    offset += static_cast<uint64_t>(n);
    for (size_t left = static_cast<size_t>(n); left > 0; ++first) {
      const size_t step = std::min(left, vectors[first].iov_len);
      vectors[first].iov_base = static_cast<char*>(vectors[first].iov_base) + step;
      vectors[first].iov_len -= step;
      left -= step;
      if (vectors[first].iov_len != 0) break;
    }
  }
}

void SetSyncedAttribute(int fd, const wire::FileEntry& entry, const std::string& cluster_id) {
  const std::string value = std::to_string(entry.version()) + " " + std::to_string(entry.mode()) +
                            " " + HexOf(entry.hash()) + " " + cluster_id;
  fsetxattr(fd, kSyncedAttribute, value.data(), value.size(), 0);  // best effort (tmpfs, ...)
}

// Sets the record's synced state from the attribute if it names this content.
void ReadSyncedAttribute(int fd, wire::LocalFileRecord& record) {
  char value[128];
  const ssize_t n = fgetxattr(fd, kSyncedAttribute, value, sizeof value - 1);
  if (n <= 0) return;
  value[n] = '\0';
  unsigned long long version = 0;
  unsigned mode = 0;
  char hash[65];
  char cluster_id[65] = "";
  if (std::sscanf(value, "%llu %u %64s %64s", &version, &mode, hash, cluster_id) < 3) return;
  if (hash != HexOf(record.hash()) || mode > 07777) return;
  wire::LocalFileRecord synced;
  synced.set_present(true);
  synced.set_kind(wire::KIND_FILE);
  synced.set_hash(record.hash());
  synced.set_mode(mode);
  record.set_synced_version(version);
  record.set_synced_present(true);
  record.set_synced_key(ContentKey(synced));
  record.set_synced_cluster_id(cluster_id);
}

}  // namespace

std::string Sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), length);
}

std::string HexOf(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

Result<Folder> Folder::Open(const std::string& root) {
  const int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Error(Errno("cannot open the folder", root, errno));
  return Folder(root, std::make_shared<UniqueFd>(fd));
}

Result<UniqueFd> Folder::OpenParent(std::string_view path, bool create) const {
  UniqueFd dir(dup(fd_->get()));
  if (dir.get() < 0) return Status::Error(Errno("cannot open the folder", root_, errno));
  size_t start = 0;
  for (;;) {
    const size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) return dir;
    const std::string name(path.substr(start, slash - start));
    int next = openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::Error(
            Errno("cannot create directory", std::string(path.substr(0, slash)), errno));
      }
      next = openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      const int error = errno;
      const std::string parent(path.substr(0, slash));
      if (error == ENOTDIR || error == ELOOP) {
        return Status(StatusCode::kConflict, "\"" + parent + "\" is not a directory");
      }
      return Status(error == ENOENT ? StatusCode::kNotFound : StatusCode::kError,
                    Errno("cannot open directory", parent, error));
    }
    dir = UniqueFd(next);
    start = slash + 1;
  }
}

Result<wire::LocalFileRecord> Folder::Observe(const std::string& path,
                                              const wire::LocalFileRecord* previous) const {
  wire::LocalFileRecord record;
  record.set_path(path);
  Result<UniqueFd> dir = OpenParent(path, false);
  if (!dir.ok()) {
    if (dir.status().code() == StatusCode::kNotFound ||
        dir.status().code() == StatusCode::kConflict) {
      return record;  // the parent is gone (or is no directory): so is the path
    }
    return dir.status();
  }
  const std::string name(BaseName(path));
  struct stat st {};
  if (fstatat(dir.value().get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return record;
    return Status::Error(Errno("cannot stat", path, errno));
  }
  if (!FromStat(st, record)) {
    return Status(StatusCode::kUnsupported, "\"" + path + "\" is not a file, directory or symlink");
  }
  if (record.kind() == wire::KIND_SYMLINK) {
    std::string target(4097, '\0');
    const ssize_t n = readlinkat(dir.value().get(), name.c_str(), target.data(), target.size());
    if (n < 0) return Status::Error(Errno("cannot read link", path, errno));
    if (n == 0 || static_cast<size_t>(n) > 4096) {
      return Status::Invalid("link \"" + path + "\": target longer than 4096 bytes");
    }
    target.resize(static_cast<size_t>(n));
    record.set_target(std::move(target));
    return record;
  }
  if (record.kind() != wire::KIND_FILE) return record;
  if (previous != nullptr && SameStat(*previous, record)) {
    record.set_hash(previous->hash());
    *record.mutable_blocks() = previous->blocks();
    return record;
  }
  UniqueFd file(openat(dir.value().get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (file.get() < 0) {
    if (errno != ENOENT) return Status::Error(Errno("cannot open", path, errno));
    wire::LocalFileRecord gone;
    gone.set_path(path);
    return gone;
  }
  if (Status hashed = HashInto(file.get(), path, record); !hashed.ok()) return hashed;
  ReadSyncedAttribute(file.get(), record);
  // Changed while being hashed: the caller looks again when the writer is done.
  struct stat after {};
  if (fstat(file.get(), &after) != 0 || MtimeNanos(after) != record.mtime_nanos() ||
      static_cast<uint64_t>(after.st_size) != record.size()) {
    return Status(StatusCode::kBusy, "\"" + path + "\" changed while it was read");
  }
  return record;
}

Folder::ScanResult Folder::Scan(const std::string& under, bool remove_temporaries) const {
  ScanResult result;
  struct Pending {
    std::string path;  // "" for the root
    UniqueFd fd;
  };
  std::vector<Pending> stack;
  if (under.empty()) {
    // A new open file description: a dup() would share the read position of every scan.
    stack.push_back({"", UniqueFd(openat(fd_->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC))});
  } else {
    Result<UniqueFd> parent = OpenParent(under, false);
    if (!parent.ok()) return result;  // gone already: its paths are looked at one by one
    const int dir = openat(parent.value().get(), std::string(BaseName(under)).c_str(),
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) return result;
    stack.push_back({under, UniqueFd(dir)});
  }
  while (!stack.empty()) {
    Pending dir = std::move(stack.back());
    stack.pop_back();
    DIR* listing = fdopendir(dir.fd.release());
    if (listing == nullptr) {
      result.problems.push_back(Errno("cannot list", dir.path.empty() ? "." : dir.path, errno));
      continue;
    }
    const int dir_fd = dirfd(listing);
    while (const dirent* item = readdir(listing)) {
      const std::string name = item->d_name;
      if (name == "." || name == "..") continue;
      const std::string path = dir.path.empty() ? name : dir.path + "/" + name;
      if (Status bad = CheckSyncPath(path); !bad.ok()) {
        result.problems.push_back(bad.message());
        continue;
      }
      struct stat st {};
      if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (name.rfind(".synod-tmp-", 0) == 0) {
        if (remove_temporaries && !S_ISDIR(st.st_mode) && unlinkat(dir_fd, name.c_str(), 0) == 0) {
          ++result.temporaries_removed;
        }
        continue;
      }
      ScanEntry entry{path, {}};
      entry.stat.set_path(path);
      if (!FromStat(st, entry.stat)) continue;
      if (S_ISDIR(st.st_mode)) {
        const int child =
            openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child >= 0) {
          stack.push_back({path, UniqueFd(child)});
        } else {
          result.problems.push_back(Errno("cannot open directory", path, errno));
        }
      }
      result.entries.push_back(std::move(entry));
    }
    closedir(listing);
  }
  return result;
}

Result<std::string> Folder::Read(const std::string& path, uint64_t offset, size_t length) const {
  Result<UniqueFd> file = OpenToRead(path, nullptr);
  if (!file.ok()) return file.status();
  return ReadString(file.value().get(), path, offset, length);
}

wire::LocalFileRecord Folder::StatOf(const wire::LocalFileRecord& record) {
  wire::LocalFileRecord stat;
  stat.set_present(record.present());
  stat.set_kind(record.kind());
  stat.set_size(record.size());
  stat.set_mtime_nanos(record.mtime_nanos());
  stat.set_inode(record.inode());
  stat.set_mode(record.mode());
  return stat;
}

Result<std::string> Folder::ReadBlock(const std::string& path, uint32_t index,
                                      const std::string& hash,
                                      const wire::LocalFileRecord* hashed_as) const {
  const BlockWanted wanted[] = {{index, hash}};
  return std::move(ReadBlocks(path, wanted, hashed_as).front());
}

std::vector<Result<std::string>> Folder::ReadBlocks(const std::string& path,
                                                    std::span<const BlockWanted> wanted,
                                                    const wire::LocalFileRecord* hashed_as) const {
  std::vector<Result<std::string>> blocks;
  blocks.reserve(wanted.size());
  wire::LocalFileRecord now;
  Result<UniqueFd> file = OpenToRead(path, &now);
  const bool unchanged = file.ok() && hashed_as != nullptr && SameStat(now, *hashed_as);
  for (const BlockWanted& block : wanted) {
    if (!file.ok()) {
      blocks.emplace_back(file.status());
      continue;
    }
    Result<std::string> data = ReadString(file.value().get(), path,
                                          uint64_t{block.index} * kFileBlockSize, kFileBlockSize);
    if (data.ok() && !unchanged && Sha256(data.value()) != block.hash) {
      data = Status::NotFound("changed since");
    }
    blocks.push_back(std::move(data));
  }
  return blocks;
}

Result<UniqueFd> Folder::OpenToRead(const std::string& path, wire::LocalFileRecord* opened) const {
  Result<UniqueFd> dir = OpenParent(path, false);
  if (!dir.ok()) return dir.status();
  const std::string name(BaseName(path));
  UniqueFd file(openat(dir.value().get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (file.get() < 0) return Status::NotFound(Errno("cannot open", path, errno));
  if (opened != nullptr) {
    struct stat st {};
    if (fstat(file.get(), &st) != 0) return Status::Error(Errno("cannot stat", path, errno));
    FromStat(st, *opened);
  }
  return file;
}

Result<Folder::TempFile> Folder::CreateTemp(const std::string& target, uint64_t size,
                                            uint64_t unique) const {
  Result<UniqueFd> dir = OpenParent(target, true);
  if (!dir.ok()) return dir.status();
  TempFile temp;
  temp.path = TempPathFor(target, unique);
  const std::string name(BaseName(temp.path));
  const int fd = openat(dir.value().get(), name.c_str(),
                        O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Error(Errno("cannot create", temp.path, errno));
  temp.fd = std::make_shared<UniqueFd>(fd);
  if (size > 0 && ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int error = errno;
    Discard(temp);
    return Status(error == ENOSPC ? StatusCode::kBusy : StatusCode::kError,
                  Errno("cannot size", temp.path, error));
  }
  if (size >= kDirectWriteMinBytes) {
    // A large file written through the page cache costs a copy of every byte into it, memory
    // that pushes other files' pages out, and a long fsync at the end; its blocks are written
    // once and not read back, so they skip it. Not every file system allows it (tmpfs, some
    // FUSE ones): then the page cache it is.
    auto direct = std::make_shared<UniqueFd>(
        openat(dir.value().get(), name.c_str(), O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC));
    struct stat created {};
    struct stat reopened {};
    // The same file, not one swapped in under its name meanwhile.
    if (direct->get() >= 0 && fstat(fd, &created) == 0 && fstat(direct->get(), &reopened) == 0 &&
        created.st_ino == reopened.st_ino && created.st_dev == reopened.st_dev) {
      temp.direct_fd = std::move(direct);
    }
  }
  return temp;
}

namespace {

// This thread's aligned buffer for direct writes of unaligned blocks, at least `size` bytes (a
// multiple of kDirectAlign), or null. It is kept between runs: a fresh one per run of a few MiB
// cost more than the copy into it, in page faults (the allocator gives large blocks back to the
// kernel when they are freed), and made a 1 GiB file 2.5 times slower to receive.
char* BounceBuffer(size_t size) {
  struct Free {
    void operator()(char* buffer) const { std::free(buffer); }
  };
  thread_local std::unique_ptr<char, Free> buffer;
  thread_local size_t capacity = 0;
  if (capacity < size) {
    buffer.reset(static_cast<char*>(std::aligned_alloc(kDirectAlign, size)));
    capacity = buffer ? size : 0;
  }
  return buffer.get();
}

// Memory of AlignedBytes the size of a file block, kept for the next ones: a fresh block from
// the allocator cost a page fault for every 4 KiB (glibc gives blocks that large back to the
// kernel), more than the copy into it. Bounded: a few more than the blocks in flight.
class BlockBufferCache {
 public:
  static constexpr size_t kBytes = kFileBlockSize;

  static BlockBufferCache& Get() {
    static BlockBufferCache* cache = new BlockBufferCache;  // never destroyed: used at exit
    return *cache;
  }
  char* Take() {
    {
      std::lock_guard lock(mutex_);
      if (!kept_.empty()) {
        char* buffer = kept_.back();
        kept_.pop_back();
        return buffer;
      }
    }
    return static_cast<char*>(std::aligned_alloc(kDirectAlign, kBytes));
  }
  void Give(char* buffer) {
    {
      std::lock_guard lock(mutex_);
      if (kept_.size() < kMaxKept) {
        kept_.push_back(buffer);
        return;
      }
    }
    std::free(buffer);
  }

 private:
  static constexpr size_t kMaxKept = 256;
  std::mutex mutex_;
  std::vector<char*> kept_;
};

}  // namespace

AlignedBytes AlignedBytes::CopyOf(std::string_view data) {
  AlignedBytes copy;
  if (data.size() <= BlockBufferCache::kBytes) {
    copy.bytes_ = std::unique_ptr<char, Free>(BlockBufferCache::Get().Take(), Free{true});
  } else {
    const size_t capacity = (data.size() + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    copy.bytes_ = std::unique_ptr<char, Free>(
        static_cast<char*>(std::aligned_alloc(kDirectAlign, capacity)), Free{false});
  }
  if (!copy.bytes_) throw std::bad_alloc();
  std::memcpy(copy.bytes_.get(), data.data(), data.size());
  copy.size_ = data.size();
  return copy;
}

void AlignedBytes::Free::operator()(char* bytes) const {
  if (cached) {
    BlockBufferCache::Get().Give(bytes);
  } else {
    std::free(bytes);
  }
}

Status Folder::WriteAt(const TempFile& temp, uint64_t offset, std::string_view data) {
  return WriteRun(temp, offset, std::span<const std::string_view>(&data, 1));
}

Status Folder::WriteRun(const TempFile& temp, uint64_t offset,
                        std::span<const std::string_view> pieces) {
  if (!pieces.empty() && pieces.back().size() % kDirectAlign != 0 && pieces.size() > 1) {
    // The end of the file: the rest directly, the end through the page cache.
    const std::span<const std::string_view> whole = pieces.first(pieces.size() - 1);
    if (Status written = WriteRun(temp, offset, whole); !written.ok()) return written;
    for (std::string_view piece : whole) offset += piece.size();
    pieces = pieces.last(1);
  }
  size_t total = 0;
  bool aligned_sizes = true;
  bool aligned_pointers = true;
  for (std::string_view piece : pieces) {
    total += piece.size();
    aligned_sizes = aligned_sizes && piece.size() % kDirectAlign == 0;
    aligned_pointers = aligned_pointers && IsAligned(piece.data());
  }
  if (temp.direct_fd && total > 0 && offset % kDirectAlign == 0 && aligned_sizes) {
    std::vector<iovec> vectors;
    if (aligned_pointers) {
      vectors = VectorsOf(pieces);
    } else if (char* bounce = BounceBuffer(total)) {
      // Received blocks are where the allocator put them (malloc offsets large blocks within
      // their first page by its own header): one aligned copy, still one request.
      size_t at = 0;
      for (std::string_view piece : pieces) {
        std::memcpy(bounce + at, piece.data(), piece.size());
        at += piece.size();
      }
      vectors.push_back(iovec{bounce, total});
    }
    if (!vectors.empty()) {
      if (WriteVectors(temp.direct_fd->get(), vectors, offset)) return Status::Ok();
      // EINVAL: the device wants a larger alignment; the page cache takes it instead (writing
      // again what did go out is harmless).
      if (errno != EINVAL) return WriteError(temp.path, errno);
    }
  }
  std::vector<iovec> vectors = VectorsOf(pieces);
  if (!WriteVectors(temp.fd->get(), vectors, offset)) return WriteError(temp.path, errno);
  return Status::Ok();
}

void Folder::Flush(const TempFile& temp) { fdatasync(temp.fd->get()); }

void Folder::Discard(const TempFile& temp) const {
  Result<UniqueFd> dir = OpenParent(temp.path, false);
  if (dir.ok()) unlinkat(dir.value().get(), std::string(BaseName(temp.path)).c_str(), 0);
}

Status Folder::CheckUnchanged(int dir, const std::string& name, const std::string& path,
                              const wire::LocalFileRecord* expected) const {
  wire::LocalFileRecord now;
  struct stat st {};
  if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    FromStat(st, now);
  } else if (errno != ENOENT) {
    return Status::Error(Errno("cannot stat", path, errno));
  }
  const bool was_present = expected != nullptr && expected->present();
  if (now.present() != was_present ||
      (was_present && (now.kind() != expected->kind() ||
                       (now.kind() != wire::KIND_DIRECTORY && !SameStat(now, *expected))))) {
    return Status::Conflict("\"" + path + "\" changed on this node meanwhile");
  }
  return Status::Ok();
}

Result<wire::LocalFileRecord> Folder::Commit(const TempFile& temp, const wire::FileEntry& entry,
                                             const wire::LocalFileRecord* expected) const {
  const int fd = temp.fd->get();
  const int64_t mtime = entry.mtime_nanos();
  const struct timespec times[2] = {
      {0, UTIME_OMIT}, {static_cast<time_t>(mtime / 1'000'000'000), mtime % 1'000'000'000}};
  SetSyncedAttribute(fd, entry, cluster_id_);
  if (fchmod(fd, entry.mode()) != 0 || futimens(fd, times) != 0 || fsync(fd) != 0) {
    const int error = errno;
    Discard(temp);
    return Status(error == ENOSPC ? StatusCode::kBusy : StatusCode::kError,
                  Errno("cannot finish", temp.path, error));
  }
  Result<UniqueFd> dir = OpenParent(entry.path(), true);
  if (!dir.ok()) {
    Discard(temp);
    return dir.status();
  }
  const std::string name(BaseName(entry.path()));
  if (Status changed = CheckUnchanged(dir.value().get(), name, entry.path(), expected);
      !changed.ok()) {
    Discard(temp);
    return changed;
  }
  if (expected != nullptr && expected->present() && expected->kind() == wire::KIND_DIRECTORY) {
    unlinkat(dir.value().get(), name.c_str(), AT_REMOVEDIR);  // fails if not empty: so does rename
  }
  if (renameat(dir.value().get(), std::string(BaseName(temp.path)).c_str(), dir.value().get(),
               name.c_str()) != 0) {
    const int error = errno;
    Discard(temp);
    return Status::Error(Errno("cannot rename into place", entry.path(), error));
  }
  struct stat st {};
  wire::LocalFileRecord record;
  record.set_path(entry.path());
  if (fstat(fd, &st) == 0) FromStat(st, record);
  record.set_hash(entry.hash());
  *record.mutable_blocks() = entry.blocks();
  return record;
}

Result<wire::LocalFileRecord> Folder::MakeDirectory(const wire::FileEntry& entry,
                                                    const wire::LocalFileRecord* expected) const {
  Result<UniqueFd> dir = OpenParent(entry.path(), true);
  if (!dir.ok()) return dir.status();
  const std::string name(BaseName(entry.path()));
  if (Status changed = CheckUnchanged(dir.value().get(), name, entry.path(), expected);
      !changed.ok()) {
    return changed;
  }
  if (expected != nullptr && expected->present() && expected->kind() != wire::KIND_DIRECTORY) {
    unlinkat(dir.value().get(), name.c_str(), 0);
  }
  if (mkdirat(dir.value().get(), name.c_str(), entry.mode()) != 0 && errno != EEXIST) {
    return Status::Error(Errno("cannot create directory", entry.path(), errno));
  }
  const int child =
      openat(dir.value().get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (child < 0) return Status::Error(Errno("cannot open directory", entry.path(), errno));
  UniqueFd owned(child);
  fchmod(child, entry.mode());  // mkdir applies the umask
  struct stat st {};
  wire::LocalFileRecord record;
  record.set_path(entry.path());
  if (fstat(child, &st) == 0) FromStat(st, record);
  return record;
}

Result<wire::LocalFileRecord> Folder::MakeSymlink(const wire::FileEntry& entry,
                                                  const wire::LocalFileRecord* expected,
                                                  uint64_t unique) const {
  Result<UniqueFd> dir = OpenParent(entry.path(), true);
  if (!dir.ok()) return dir.status();
  const std::string name(BaseName(entry.path()));
  const std::string temp(BaseName(TempPathFor(entry.path(), unique)));
  if (symlinkat(entry.target().c_str(), dir.value().get(), temp.c_str()) != 0) {
    return Status::Error(Errno("cannot create link", entry.path(), errno));
  }
  if (Status changed = CheckUnchanged(dir.value().get(), name, entry.path(), expected);
      !changed.ok()) {
    unlinkat(dir.value().get(), temp.c_str(), 0);
    return changed;
  }
  if (expected != nullptr && expected->present() && expected->kind() == wire::KIND_DIRECTORY) {
    unlinkat(dir.value().get(), name.c_str(), AT_REMOVEDIR);
  }
  if (renameat(dir.value().get(), temp.c_str(), dir.value().get(), name.c_str()) != 0) {
    const int error = errno;
    unlinkat(dir.value().get(), temp.c_str(), 0);
    return Status::Error(Errno("cannot rename into place", entry.path(), error));
  }
  struct stat st {};
  wire::LocalFileRecord record;
  record.set_path(entry.path());
  if (fstatat(dir.value().get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) FromStat(st, record);
  record.set_target(entry.target());
  return record;
}

Status Folder::Remove(const std::string& path, const wire::LocalFileRecord& expected) const {
  Result<UniqueFd> dir = OpenParent(path, false);
  if (!dir.ok()) {
    return dir.status().code() == StatusCode::kNotFound ? Status::Ok() : dir.status();
  }
  const std::string name(BaseName(path));
  if (Status changed = CheckUnchanged(dir.value().get(), name, path, &expected); !changed.ok()) {
    return changed;
  }
  const int flags = expected.kind() == wire::KIND_DIRECTORY ? AT_REMOVEDIR : 0;
  if (unlinkat(dir.value().get(), name.c_str(), flags) != 0 && errno != ENOENT) {
    if (errno == ENOTEMPTY || errno == EEXIST) {
      return Status::Conflict("directory \"" + path + "\" is not empty");
    }
    return Status::Error(Errno("cannot delete", path, errno));
  }
  return Status::Ok();
}

}  // namespace synod
