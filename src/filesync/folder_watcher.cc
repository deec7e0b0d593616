#include "filesync/folder_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "filesync/sync_path.h"
#include "net/uv_util.h"

namespace synod {
namespace {

constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                           IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |
                           IN_DONT_FOLLOW | IN_EXCL_UNLINK;

}  // namespace

FolderWatcher::FolderWatcher(EventLoop& loop, std::string root, Callback callback)
    : loop_(loop), root_(std::move(root)), callback_(std::move(callback)) {}

FolderWatcher::~FolderWatcher() { Stop(); }

Status FolderWatcher::Start() {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return Status::Error(std::string("inotify: ") + std::strerror(errno));
  poll_ = new uv_poll_t;
  uv_poll_init(loop_.raw(), poll_, fd_);
  poll_->data = this;
  uv_poll_start(poll_, UV_READABLE, [](uv_poll_t* handle, int, int) {
    static_cast<FolderWatcher*>(handle->data)->OnReadable();
  });
  WatchDirectory("");
  return Status::Ok();
}

void FolderWatcher::Stop() {
  if (poll_ != nullptr) {
    uv_poll_stop(poll_);
    CloseAndDelete(poll_);
    poll_ = nullptr;
  }
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  paths_.clear();
}

bool FolderWatcher::WatchDirectory(const std::string& path) {
  if (fd_ < 0) return false;
  const std::string full = path.empty() ? root_ : root_ + "/" + path;
  const int wd = inotify_add_watch(fd_, full.c_str(), kMask);
  if (wd < 0) {
    if (errno == ENOSPC && !warned_limit_) {
      warned_limit_ = true;
      spdlog::error(
          "filesync: out of inotify watches ({} directories watched); changes in the others are "
          "found only by the periodic rescan. Raise the limit: sysctl fs.inotify.max_user_watches="
          "1048576",
          paths_.size());
    }
    return false;
  }
  auto [it, added] = paths_.try_emplace(wd, path);
  if (added) return true;
  const bool moved = it->second != path;  // a directory moved within the folder keeps its
  it->second = path;                      // descriptor: new path
  return moved;
}

void FolderWatcher::OnReadable() {
  alignas(inotify_event) char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = read(fd_, buffer, sizeof buffer);
    if (n <= 0) return;
    for (ssize_t offset = 0; offset < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->mask & IN_Q_OVERFLOW) {
        spdlog::warn("filesync: the kernel dropped change events (queue overflow); rescanning");
        callback_({"", true, true});
        continue;
      }
      auto dir = paths_.find(event->wd);
      if (dir == paths_.end()) continue;
      if (event->mask & IN_IGNORED) {
        paths_.erase(dir);
        continue;
      }
      if (event->len == 0) continue;  // about the directory itself: its parent reports it
      const std::string name(event->name);
      if (name.rfind(".synod-tmp-", 0) == 0) continue;
      const std::string path = dir->second.empty() ? name : dir->second + "/" + name;
      const bool is_dir = event->mask & IN_ISDIR;
      if (is_dir && (event->mask & (IN_CREATE | IN_MOVED_TO))) {
        WatchDirectory(path);
        callback_({path, true, true});
        continue;
      }
      if (is_dir && (event->mask & IN_MOVED_FROM)) {
        callback_({path, true, true});
        continue;
      }
      const bool settled =
          event->mask & (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB) ||
          (is_dir && (event->mask & IN_DELETE));
      callback_({path, settled, false});
    }
  }
}

}  // namespace synod
