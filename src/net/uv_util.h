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

// Allocation callback for uv_read_start: a fresh heap buffer per read, freed by the read callback.
void AllocReadBuffer(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);

std::string UvError(int code);

}  // namespace synod
