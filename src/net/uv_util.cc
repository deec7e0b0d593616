#include "net/uv_util.h"

#include <array>

namespace synod {

void LendReadBuffer(uv_handle_t*, size_t, uv_buf_t* buf) {
  thread_local std::array<char, 64 * 1024> buffer;
  buf->base = buffer.data();
  buf->len = buffer.size();
}

std::string UvError(int code) { return uv_strerror(code); }

int WriteToStream(uv_stream_t* stream, std::string bytes, bool try_first,
                  std::function<void(int status)> on_written) {
  size_t sent = 0;
  if (try_first && uv_stream_get_write_queue_size(stream) == 0) {
    uv_buf_t whole = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    const int written = uv_try_write(stream, &whole, 1);
    if (written == static_cast<int>(bytes.size())) return 0;
    if (written > 0) sent = static_cast<size_t>(written);
  }
  struct Request {
    uv_write_t req{};
    std::string data;
    std::function<void(int)> on_written;
  };
  auto* request = new Request{{}, std::move(bytes), std::move(on_written)};
  uv_buf_t buf =
      uv_buf_init(request->data.data() + sent, static_cast<unsigned>(request->data.size() - sent));
  const int rc = uv_write(&request->req, stream, &buf, 1, [](uv_write_t* req, int status) {
    auto* request = reinterpret_cast<Request*>(req);
    if (request->on_written) request->on_written(status);
    delete request;
  });
  if (rc != 0) delete request;
  return rc;
}

}  // namespace synod
