#include "net/frame_codec.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

TEST(FrameCodec, RoundTripsByteByByte) {
  const std::string stream =
      EncodeFrame("hello") + EncodeFrame("") + EncodeFrame(std::string(300, 'x'));
  FrameDecoder decoder(1024);
  std::vector<std::string> frames;
  for (char byte : stream) ASSERT_TRUE(decoder.Feed(std::string_view(&byte, 1), frames).ok());
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0], "hello");
  EXPECT_EQ(frames[1], "");
  EXPECT_EQ(frames[2], std::string(300, 'x'));
}

TEST(FrameCodec, OversizedLengthPoisonsTheDecoder) {
  FrameDecoder decoder(16);
  std::vector<std::string> frames;
  const std::string huge("\xff\xff\xff\xff", 4);
  Status status = decoder.Feed(huge, frames);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("exceeds the limit"), std::string::npos);
  EXPECT_FALSE(decoder.Feed(EncodeFrame("ok"), frames).ok());
  EXPECT_TRUE(frames.empty());
}

TEST(FrameCodec, PartialFrameWaitsForTheRest) {
  FrameDecoder decoder(64);
  std::vector<std::string> frames;
  const std::string frame = EncodeFrame("abcdef");
  ASSERT_TRUE(decoder.Feed(frame.substr(0, 7), frames).ok());
  EXPECT_TRUE(frames.empty());
  ASSERT_TRUE(decoder.Feed(frame.substr(7), frames).ok());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], "abcdef");
}

}  // namespace
}  // namespace synod
