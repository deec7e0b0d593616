#include "core/node_identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace synod {
namespace {

constexpr const char* kIdFile = "node_id";

bool IsValidId(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string RandomHexId() {
  std::random_device entropy;  // /dev/urandom on Linux
  static const char* kHex = "0123456789abcdef";
  std::string id;
  while (id.size() < 32) {
    uint32_t word = entropy();
    for (int i = 0; i < 8 && id.size() < 32; ++i, word >>= 4) id.push_back(kHex[word & 0xf]);
  }
  return id;
}

namespace {

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error(Errno("cannot create", tmp));
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status error = Status::Error(Errno("cannot write", tmp));
      ::close(fd);
      return error;
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status error = Status::Error(Errno("cannot sync", tmp));
    ::close(fd);
    return error;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::Error(Errno("cannot rename", tmp));
  const std::string dir = std::filesystem::path(path).parent_path().string();
  int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::Ok();
}

Result<NodeIdentity> LoadOrCreateIdentity(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::Error("cannot create data dir " + data_dir + ": " + ec.message());
  if (!std::filesystem::is_directory(data_dir, ec)) {
    return Status::Error("data dir " + data_dir + " is not a directory");
  }
  if (::access(data_dir.c_str(), W_OK | X_OK) != 0) {
    return Status::Error(Errno("data dir is not writable:", data_dir));
  }
  const std::string path = (std::filesystem::path(data_dir) / kIdFile).string();
  if (std::filesystem::exists(path, ec)) {
    std::ifstream in(path);
    std::string id;
    std::getline(in, id);
    if (!IsValidId(id)) {
      return Status::Error("node id file " + path +
                           " is corrupt (expected 32 hex digits); remove it to get a new identity");
    }
    return NodeIdentity{id};
  }
  NodeIdentity identity{RandomHexId()};
  Status written = WriteFileAtomically(path, identity.id + "\n");
  if (!written.ok()) return written;
  return identity;
}

}  // namespace synod
