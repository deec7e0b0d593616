// FolderWatcher: tells which paths of the folder changed, from Linux inotify.
//
// Every directory of the folder is watched, those created later too (a new directory is listed
// at once, since files may appear in it before its watch exists). The callback gets the
// relative path and how sure the writer is done: `settled` after a close-after-write, a move, a
// delete or an attribute change; not after a bare modification (the caller waits for a quiet
// period then). A whole subtree to look at again (moved in, or the kernel's queue overflowed)
// is reported with `rescan`. Running out of watches is reported once, with the sysctl to raise.
// Synod's own temporary files are not reported. Loop thread only.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <unordered_map>

#include "core/event_loop.h"
#include "core/status.h"

namespace synod {

class FolderWatcher {
 public:
  struct Change {
    std::string path;  // relative; "" for the folder itself
    bool settled = false;
    bool rescan = false;  // look at everything below `path` (it may hold unreported entries)
  };
  using Callback = std::function<void(const Change&)>;

  FolderWatcher(EventLoop& loop, std::string root, Callback callback);
  ~FolderWatcher();

  Status Start();
  void Stop();
  // Watches `path` (a directory, relative); true if it was not watched before, so that entries
  // made in it before the watch existed are reported by nobody: the caller lists it.
  bool WatchDirectory(const std::string& path);
  size_t watches() const { return paths_.size(); }

 private:
  void OnReadable();

  EventLoop& loop_;
  std::string root_;
  Callback callback_;
  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  std::unordered_map<int, std::string> paths_;  // watch descriptor -> directory
  bool warned_limit_ = false;
};

}  // namespace synod
