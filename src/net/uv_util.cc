#include "net/uv_util.h"

#include <array>

namespace synod {

void LendReadBuffer(uv_handle_t*, size_t, uv_buf_t* buf) {
  thread_local std::array<char, 64 * 1024> buffer;
  buf->base = buffer.data();
  buf->len = buffer.size();
}

std::string UvError(int code) { return uv_strerror(code); }

}  // namespace synod
