// Small helpers shared by the modules that drive libuv sockets directly.
#pragma once

#include <uv.h>

#include <string>

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

}  // namespace synod
