// Small helpers shared by the modules that drive libuv sockets directly.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace synod {

// Closes a heap-allocated handle and deletes it once libuv is done with it.
template <typename Handle>
void CloseAndDelete(Handle* handle) {
  if (handle == nullptr) return;
  auto* base = reinterpret_cast<uv_handle_t*>(handle);
  if (uv_is_closing(base)) return;
  uv_close(base, [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}

// Allocation callback for uv_read_start and uv_udp_recv_start: lends the calling thread's one
// 64 KiB read buffer, reused by every read on that thread (libuv's recommended pattern). The read
// callback must consume the bytes before it returns and must not free the buffer. A fresh heap
// buffer per read cost a 64 KiB malloc, page faults and a free on every received message.
void LendReadBuffer(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);

std::string UvError(int code);

// Writes `bytes` to `stream`. With `try_first`, straight to the kernel when nothing is queued
// (a queued write costs the loop another pass, its callback, and an epoll_ctl, per message),
// and only what the kernel did not take is queued, from where it stopped. `on_written` runs
// with the status once a queued write is done; never when everything went at once. Returns 0,
// or the libuv error if the write could not be queued (then `on_written` does not run).
int WriteToStream(uv_stream_t* stream, std::string bytes, bool try_first,
                  std::function<void(int status)> on_written);
// The same for several pieces, in order, gathered into one system call: a few large messages
// cost the kernel about half as much in one write as in one write each.
int WriteToStream(uv_stream_t* stream, std::vector<std::string> pieces, bool try_first,
                  std::function<void(int status)> on_written);
// The same, trying first, for bytes the caller keeps: only what the kernel did not take at once
// is copied (to be queued).
int CopyToStream(uv_stream_t* stream, std::string_view bytes,
                 std::function<void(int status)> on_written);

}  // namespace synod
