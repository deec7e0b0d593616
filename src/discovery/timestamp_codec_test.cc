#include "discovery/timestamp_codec.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstring>

namespace synod {
namespace {

constexpr double kNow = 1795394341.0386965;

template <typename T>
std::string Bytes(T value, bool big_endian) {
  std::string out(sizeof(T), '\0');
  std::memcpy(out.data(), &value, sizeof(T));  // little-endian host
  if (big_endian) std::reverse(out.begin(), out.end());
  return out;
}

TEST(TimestampCodec, SendsBigEndianDouble) {
  const std::string wire = EncodeTimestamp(kNow);
  ASSERT_EQ(wire.size(), 8u);
  EXPECT_EQ(wire, Bytes(kNow, true));
  EXPECT_EQ(DecodeTimestamp(wire).value(), kNow);
}

TEST(TimestampCodec, AcceptsEveryEncodingOthersUse) {
  EXPECT_DOUBLE_EQ(DecodeTimestamp(Bytes(kNow, true)).value(), kNow);
  EXPECT_DOUBLE_EQ(DecodeTimestamp(Bytes(kNow, false)).value(), kNow);  // little-endian double
  const float as_float = static_cast<float>(kNow);
  EXPECT_DOUBLE_EQ(DecodeTimestamp(Bytes(as_float, true)).value(), as_float);
  EXPECT_DOUBLE_EQ(DecodeTimestamp(Bytes(as_float, false)).value(), as_float);
  EXPECT_DOUBLE_EQ(DecodeTimestamp("1795394341.25").value(), 1795394341.25);
  EXPECT_DOUBLE_EQ(DecodeTimestamp(" 1795394341.25\n").value(), 1795394341.25);
  EXPECT_DOUBLE_EQ(DecodeTimestamp("1795394341250").value(), 1795394341.25);  // milliseconds
  EXPECT_DOUBLE_EQ(DecodeTimestamp("1795394341").value(), 1795394341.0);
  EXPECT_DOUBLE_EQ(DecodeTimestamp(Bytes(uint64_t{1795394341250}, true)).value(), 1795394341.25);
}

TEST(TimestampCodec, RejectsWhatIsNotATime) {
  for (const std::string& bad :
       {std::string(), std::string("xx"), std::string(8, '\0'), std::string("12.5"),
        std::string("nan"), std::string("1795394341.25abc"), std::string(3, '\x01'),
        Bytes(1.0, true), Bytes(-kNow, true), std::string(100, '9')}) {
    EXPECT_FALSE(DecodeTimestamp(bad).ok()) << bad.size();
  }
  EXPECT_NE(DecodeTimestamp("").error().find("without sending"), std::string::npos);
}

}  // namespace
}  // namespace synod
