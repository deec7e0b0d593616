#include "net/gzip.h"

#include <zlib.h>

#include <cassert>

namespace synod {

std::string GzipCompress(std::string_view data, int level) {
  z_stream stream{};
  // 15 window bits, +16 for a gzip header and trailer instead of zlib's.
  const int ready = deflateInit2(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  assert(ready == Z_OK && "deflateInit2 fails only on bad arguments or no memory");
  (void)ready;
  std::string out(deflateBound(&stream, static_cast<uLong>(data.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int done = deflate(&stream, Z_FINISH);
  assert(done == Z_STREAM_END && "deflateBound leaves room for everything");
  (void)done;
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

}  // namespace synod
