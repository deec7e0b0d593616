#include "net/uv_util.h"

namespace synod {

void AllocReadBuffer(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
  buf->base = new char[suggested];
  buf->len = suggested;
}

std::string UvError(int code) { return uv_strerror(code); }

}  // namespace synod
