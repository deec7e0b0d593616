#include "core/base64.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace synod {
namespace {

TEST(Base64, EncodesTheRfc4648TestVectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xfb\xff\xbf", 3)), "+/+/");
}

TEST(Base64, DecodesTheRfc4648TestVectors) {
  auto decode = [](std::string_view text) {
    Result<std::string> bytes = Base64Decode(text);
    EXPECT_TRUE(bytes.ok()) << text;
    return bytes.ok() ? bytes.value() : std::string("<error>");
  };
  EXPECT_EQ(decode(""), "");
  EXPECT_EQ(decode("Zg=="), "f");
  EXPECT_EQ(decode("Zm8="), "fo");
  EXPECT_EQ(decode("Zm9v"), "foo");
  EXPECT_EQ(decode("Zm9vYg=="), "foob");
  EXPECT_EQ(decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(decode("+/+/"), std::string("\xfb\xff\xbf", 3));
  EXPECT_EQ(decode("AAAA"), std::string(3, '\0'));
}

TEST(Base64, RoundTripsEveryLengthAndByte) {
  std::mt19937 random(1);
  for (size_t length = 0; length < 200; ++length) {
    std::string bytes(length, '\0');
    for (char& c : bytes) c = static_cast<char>(random());
    const std::string text = Base64Encode(bytes);
    EXPECT_EQ(text.size(), (length + 2) / 3 * 4);
    Result<std::string> back = Base64Decode(text);
    ASSERT_TRUE(back.ok()) << length << " " << text;
    EXPECT_EQ(back.value(), bytes) << length;
  }
}

TEST(Base64, DecodeRejectsAnythingElse) {
  for (const char* bad : {
           "Zg",        // no padding
           "Zg=",       // short padding
           "Zm9",       // length not a multiple of 4
           "Z===",      // three padding characters
           "====",      // only padding
           "Zg==Zg==",  // padding inside
           "Z=g=",      // padding inside
           "Zm=v",      // padding inside
           "=Zm9",      // padding first
           "Zm9v\n",    // whitespace
           " Zm9v",     // whitespace
           "Zm 9",      // whitespace
           "Zm9-",      // URL-safe alphabet
           "Zm9_",      // URL-safe alphabet
           "Zm9*",      // not the alphabet
       }) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
  }
  EXPECT_FALSE(Base64Decode(std::string_view("Zm9\0", 4)).ok());
  EXPECT_FALSE(Base64Decode("Zm9v\xc3\xa9==").ok());
}

}  // namespace
}  // namespace synod
