#include "net/frame_codec.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

FrameDecoder::FrameCallback Collect(std::vector<std::string>& frames) {
  return [&frames](std::string_view frame) {
    frames.emplace_back(frame);
    return true;
  };
}

TEST(FrameCodec, RoundTripsByteByByte) {
  const std::string stream =
      EncodeFrame("hello") + EncodeFrame("") + EncodeFrame(std::string(300, 'x'));
  FrameDecoder decoder(1024);
  std::vector<std::string> frames;
  for (char byte : stream)
    ASSERT_TRUE(decoder.Feed(std::string_view(&byte, 1), Collect(frames)).ok());
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0], "hello");
  EXPECT_EQ(frames[1], "");
  EXPECT_EQ(frames[2], std::string(300, 'x'));
}

TEST(FrameCodec, OversizedLengthPoisonsTheDecoder) {
  FrameDecoder decoder(16);
  std::vector<std::string> frames;
  const std::string huge("\xff\xff\xff\xff", 4);
  Status status = decoder.Feed(huge, Collect(frames));
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("exceeds the limit"), std::string::npos);
  EXPECT_FALSE(decoder.Feed(EncodeFrame("ok"), Collect(frames)).ok());
  EXPECT_TRUE(frames.empty());
}

TEST(FrameCodec, PartialFrameWaitsForTheRest) {
  FrameDecoder decoder(64);
  std::vector<std::string> frames;
  const std::string frame = EncodeFrame("abcdef");
  ASSERT_TRUE(decoder.Feed(frame.substr(0, 7), Collect(frames)).ok());
  EXPECT_TRUE(frames.empty());
  ASSERT_TRUE(decoder.Feed(frame.substr(7), Collect(frames)).ok());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], "abcdef");
}

TEST(FrameCodec, WholeFramesInOneReadAndARestHeldBack) {
  FrameDecoder decoder(64);
  std::vector<std::string> frames;
  const std::string stream = EncodeFrame("one") + EncodeFrame("two") + EncodeFrame("three");
  // Two whole frames and part of a third, then the rest of it with a fourth.
  ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(0, 16), Collect(frames)).ok());
  EXPECT_EQ(frames, (std::vector<std::string>{"one", "two"}));
  ASSERT_TRUE(decoder.Feed(stream.substr(16) + EncodeFrame("four"), Collect(frames)).ok());
  EXPECT_EQ(frames, (std::vector<std::string>{"one", "two", "three", "four"}));
}

TEST(FrameCodec, StoppingKeepsTheRestForTheNextFeed) {
  FrameDecoder decoder(64);
  std::vector<std::string> frames;
  const std::string stream = EncodeFrame("a") + EncodeFrame("b") + EncodeFrame("c");
  ASSERT_TRUE(decoder
                  .Feed(stream,
                        [&frames](std::string_view frame) {
                          frames.emplace_back(frame);
                          return false;
                        })
                  .ok());
  EXPECT_EQ(frames, (std::vector<std::string>{"a"}));
  ASSERT_TRUE(decoder.Feed("", Collect(frames)).ok());
  EXPECT_EQ(frames, (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace synod
