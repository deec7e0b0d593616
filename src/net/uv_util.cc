#include "net/uv_util.h"

#include <array>

namespace synod {

void LendReadBuffer(uv_handle_t*, size_t, uv_buf_t* buf) {
  thread_local std::array<char, 64 * 1024> buffer;
  buf->base = buffer.data();
  buf->len = buffer.size();
}

std::string UvError(int code) { return uv_strerror(code); }

namespace {

// How many of `bytes` the kernel took at once; none if writes are queued already (they go first).
size_t TryWrite(uv_stream_t* stream, std::string_view bytes) {
  if (uv_stream_get_write_queue_size(stream) != 0) return 0;
  uv_buf_t whole =
      uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  const int written = uv_try_write(stream, &whole, 1);
  return written > 0 ? static_cast<size_t>(written) : 0;
}

// Queues `data` from `offset` on.
int Queue(uv_stream_t* stream, std::string data, size_t offset,
          std::function<void(int status)> on_written) {
  struct Request {
    uv_write_t req{};
    std::string data;
    std::function<void(int)> on_written;
  };
  auto* request = new Request{{}, std::move(data), std::move(on_written)};
  uv_buf_t buf = uv_buf_init(request->data.data() + offset,
                             static_cast<unsigned>(request->data.size() - offset));
  const int rc = uv_write(&request->req, stream, &buf, 1, [](uv_write_t* req, int status) {
    auto* request = reinterpret_cast<Request*>(req);
    if (request->on_written) request->on_written(status);
    delete request;
  });
  if (rc != 0) delete request;
  return rc;
}

}  // namespace

int WriteToStream(uv_stream_t* stream, std::string bytes, bool try_first,
                  std::function<void(int status)> on_written) {
  const size_t sent = try_first ? TryWrite(stream, bytes) : 0;
  if (try_first && sent == bytes.size()) return 0;
  return Queue(stream, std::move(bytes), sent, std::move(on_written));
}

int CopyToStream(uv_stream_t* stream, std::string_view bytes,
                 std::function<void(int status)> on_written) {
  const size_t sent = TryWrite(stream, bytes);
  if (sent == bytes.size()) return 0;
  return Queue(stream, std::string(bytes.substr(sent)), 0, std::move(on_written));
}

}  // namespace synod
