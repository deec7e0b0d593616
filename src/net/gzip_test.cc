#include "net/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace synod {
namespace {

std::string Gunzip(const std::string& compressed) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return out;
}

TEST(Gzip, RoundTripsAndShrinksRepetitiveJson) {
  std::string json = "[";
  for (int i = 0; i < 2000; ++i)
    json += R"({"name":"node)" + std::to_string(i) + R"(","rtt_ms":0.1},)";
  json += "{}]";
  const std::string compressed = GzipCompress(json);
  EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);  // the gzip magic
  EXPECT_EQ(static_cast<unsigned char>(compressed[1]), 0x8b);
  EXPECT_LT(compressed.size(), json.size() / 5);
  EXPECT_EQ(Gunzip(compressed), json);
  EXPECT_EQ(Gunzip(GzipCompress("")), "");
}

}  // namespace
}  // namespace synod
