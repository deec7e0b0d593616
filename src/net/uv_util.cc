#include "net/uv_util.h"

#include <array>
#include <span>
#include <vector>

namespace synod {

void LendReadBuffer(uv_handle_t*, size_t, uv_buf_t* buf) {
  thread_local std::array<char, 64 * 1024> buffer;
  buf->base = buffer.data();
  buf->len = buffer.size();
}

std::string UvError(int code) { return uv_strerror(code); }

namespace {

// How many bytes of `bufs` the kernel took at once; none if writes are queued already (they go
// first).
size_t TryWrite(uv_stream_t* stream, std::span<uv_buf_t> bufs) {
  if (uv_stream_get_write_queue_size(stream) != 0) return 0;
  const int written = uv_try_write(stream, bufs.data(), static_cast<unsigned>(bufs.size()));
  return written > 0 ? static_cast<size_t>(written) : 0;
}

std::vector<uv_buf_t> BufsOf(std::span<std::string> pieces) {
  std::vector<uv_buf_t> bufs;
  bufs.reserve(pieces.size());
  for (std::string& piece : pieces) {
    bufs.push_back(uv_buf_init(piece.data(), static_cast<unsigned>(piece.size())));
  }
  return bufs;
}

// Queues `pieces` from byte `offset` of the first on.
int Queue(uv_stream_t* stream, std::vector<std::string> pieces, size_t offset,
          std::function<void(int status)> on_written) {
  struct Request {
    uv_write_t req{};
    std::vector<std::string> pieces;
    std::function<void(int)> on_written;
  };
  auto* request = new Request{{}, std::move(pieces), std::move(on_written)};
  std::vector<uv_buf_t> bufs = BufsOf(request->pieces);
  if (bufs.empty()) bufs.push_back(uv_buf_init(nullptr, 0));  // still answered: see WriteToStream
  size_t first = 0;
  for (; offset > 0 && offset >= bufs[first].len; ++first) offset -= bufs[first].len;
  bufs[first].base += offset;
  bufs[first].len -= static_cast<unsigned>(offset);
  // libuv keeps its own copy of the buffer list.
  const int rc =
      uv_write(&request->req, stream, bufs.data() + first,
               static_cast<unsigned>(bufs.size() - first), [](uv_write_t* req, int status) {
                 auto* request = reinterpret_cast<Request*>(req);
                 if (request->on_written) request->on_written(status);
                 delete request;
               });
  if (rc != 0) delete request;
  return rc;
}

}  // namespace

int WriteToStream(uv_stream_t* stream, std::vector<std::string> pieces, bool try_first,
                  std::function<void(int status)> on_written) {
  size_t total = 0;
  for (const std::string& piece : pieces) total += piece.size();
  size_t sent = 0;
  if (try_first) {
    std::vector<uv_buf_t> bufs = BufsOf(pieces);
    sent = TryWrite(stream, bufs);
    if (sent == total) return 0;
  }
  return Queue(stream, std::move(pieces), sent, std::move(on_written));
}

int WriteToStream(uv_stream_t* stream, std::string bytes, bool try_first,
                  std::function<void(int status)> on_written) {
  std::vector<std::string> pieces;
  pieces.push_back(std::move(bytes));
  return WriteToStream(stream, std::move(pieces), try_first, std::move(on_written));
}

int CopyToStream(uv_stream_t* stream, std::string_view bytes,
                 std::function<void(int status)> on_written) {
  uv_buf_t whole =
      uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  const size_t sent = TryWrite(stream, std::span<uv_buf_t>(&whole, 1));
  if (sent == bytes.size()) return 0;
  std::vector<std::string> rest;
  rest.emplace_back(bytes.substr(sent));
  return Queue(stream, std::move(rest), 0, std::move(on_written));
}

}  // namespace synod
