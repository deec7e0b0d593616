#include "timers/webhook_signer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>

namespace synod {
namespace {

// The Standard Webhooks specification's own example; the signature was checked independently
// with Python's hmac, hashlib and base64 modules.
constexpr char kSpecKey[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kSpecId[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kSpecTimestamp = 1614265330;
constexpr char kSpecBody[] = R"({"test": 2432232314})";
constexpr char kSpecSignature[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
// Bytes 0..31 as a key, and the signature of the same message with it (Python again).
constexpr char kSecondKey[] = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
constexpr char kSecondSignature[] = "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI=";

WebhookSigner Signer(std::string_view text) {
  Result<WebhookSigner> signer = WebhookSigner::FromText(text);
  EXPECT_TRUE(signer.ok()) << signer.error();
  return signer.ok() ? std::move(signer).value()
                     : std::move(WebhookSigner::FromText(kSpecKey)).value();
}

TEST(WebhookSigner, MatchesTheStandardWebhooksExample) {
  EXPECT_EQ(Signer(kSpecKey).Sign(kSpecId, kSpecTimestamp, kSpecBody), kSpecSignature);
  EXPECT_EQ(Signer(kSecondKey).Sign(kSpecId, kSpecTimestamp, kSpecBody), kSecondSignature);
}

TEST(WebhookSigner, SignsEveryPartOfTheMessage) {
  const WebhookSigner signer = Signer(kSpecKey);
  const std::string base = signer.Sign(kSpecId, kSpecTimestamp, kSpecBody);
  EXPECT_EQ(signer.Sign(kSpecId, kSpecTimestamp, kSpecBody), base);  // deterministic
  EXPECT_NE(signer.Sign("msg_other", kSpecTimestamp, kSpecBody), base);
  EXPECT_NE(signer.Sign(kSpecId, kSpecTimestamp + 1, kSpecBody), base);
  EXPECT_NE(signer.Sign(kSpecId, kSpecTimestamp, R"({"test": 2432232315})"), base);
  EXPECT_TRUE(signer.Sign(kSpecId, kSpecTimestamp, "").starts_with("v1,"));
  // A body with NUL bytes is signed whole.
  EXPECT_NE(signer.Sign(kSpecId, kSpecTimestamp, std::string_view("a\0b", 3)),
            signer.Sign(kSpecId, kSpecTimestamp, "a"));
}

TEST(WebhookSigner, TwoKeysGiveTwoSignaturesTheFirstKeyFirst) {
  const std::string both = std::string(kSecondSignature) + " " + kSpecSignature;
  EXPECT_EQ(Signer(std::string(kSecondKey) + "\n" + kSpecKey + "\n")
                .Sign(kSpecId, kSpecTimestamp, kSpecBody),
            both);
  EXPECT_EQ(
      Signer(std::string(kSpecKey) + "\n" + kSecondKey).Sign(kSpecId, kSpecTimestamp, kSpecBody),
      std::string(kSpecSignature) + " " + kSecondSignature);
}

TEST(WebhookSigner, SkipsCommentsBlankLinesAndSurroundingSpace) {
  const std::string text = std::string("# rotated 2026-01-01: the new key first\n") + "\n" +
                           "   \t\n" + "  " + kSecondKey + "  \r\n" + "  # the old key\n" + "\t" +
                           kSpecKey + "\r\n" + "\n";
  EXPECT_EQ(Signer(text).Sign(kSpecId, kSpecTimestamp, kSpecBody),
            std::string(kSecondSignature) + " " + kSpecSignature);
}

TEST(WebhookSigner, RejectsBadKeyFilesSayingWhichLine) {
  auto error = [](std::string_view text) {
    Result<WebhookSigner> signer = WebhookSigner::FromText(text);
    EXPECT_FALSE(signer.ok()) << text;
    if (signer.ok()) return std::string();
    EXPECT_EQ(signer.code(), StatusCode::kInvalid) << text;
    return signer.error();
  };
  EXPECT_NE(error("").find("no key"), std::string::npos);
  EXPECT_NE(error("# only a comment\n\n").find("no key"), std::string::npos);
  const std::string three = std::string(kSpecKey) + "\n" + kSecondKey + "\n" + kSpecKey + "\n";
  EXPECT_NE(error(three).find("at most two"), std::string::npos);

  // No whsec_ prefix (the bare base64, another prefix, the wrong case).
  EXPECT_NE(error("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").find("line 1"), std::string::npos);
  EXPECT_NE(error("# comment\n\nsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").find("line 3"),
            std::string::npos);
  EXPECT_NE(error("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").find("whsec_"), std::string::npos);
  // The second line is bad although the first is good.
  EXPECT_NE(error(std::string(kSpecKey) + "\nwhsec_!!!!").find("line 2"), std::string::npos);

  // Not base64: bad characters, bad length, a space inside, nothing after the prefix.
  EXPECT_NE(error("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa*w").find("base64"), std::string::npos);
  EXPECT_NE(error("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS").find("base64"), std::string::npos);
  EXPECT_NE(error("whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw").find("line 1"), std::string::npos);
  error("whsec_");

  // 23 bytes is too short, 24 and 64 are fine, 65 is too long.
  EXPECT_NE(error("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRY=").find("24 to 64"), std::string::npos);
  EXPECT_TRUE(WebhookSigner::FromText("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX").ok());
  EXPECT_TRUE(WebhookSigner::FromText("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJC"
                                      "UmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==")
                  .ok());
  EXPECT_NE(error("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1"
                  "Njc4OTo7PD0+P0A=")
                .find("24 to 64"),
            std::string::npos);
}

TEST(WebhookSigner, FromFileReadsAKeyFileAndNamesItInErrors) {
  const std::string path = ::testing::TempDir() + "webhook_signer_test_keys";
  {
    std::ofstream out(path);
    out << "# webhook keys\n" << kSpecKey << "\n";
  }
  Result<WebhookSigner> signer = WebhookSigner::FromFile(path);
  ASSERT_TRUE(signer.ok()) << signer.error();
  EXPECT_EQ(signer.value().Sign(kSpecId, kSpecTimestamp, kSpecBody), kSpecSignature);
  {
    std::ofstream out(path);
    out << "not a key\n";
  }
  Result<WebhookSigner> bad = WebhookSigner::FromFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find(path), std::string::npos) << bad.error();
  EXPECT_NE(bad.error().find("line 1"), std::string::npos) << bad.error();
  std::remove(path.c_str());
  EXPECT_FALSE(WebhookSigner::FromFile(path).ok());
}

}  // namespace
}  // namespace synod
