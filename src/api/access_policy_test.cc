#include "api/access_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace synod {
namespace {

const std::string kRead = "read-token-0123456789";
const std::string kWrite = "write-token-0123456789";
const std::string kWrite2 = "another-write-token-abcdef";

std::string FileText() {
  return "# API tokens of the test cluster\n"
         "\n"
         "write " +
         kWrite +
         "\n"
         "  read\t" +
         kRead +
         "  \r\n"
         "   # an indented comment\n"
         "write " +
         kWrite2 + "\n";
}

AccessPolicy Policy(bool reads_require_token = false) {
  Result<AccessPolicy> policy = AccessPolicy::Parse(FileText(), "tokens.txt");
  EXPECT_TRUE(policy.ok()) << policy.error();
  AccessPolicy p = policy.value();
  p.set_reads_require_token(reads_require_token);
  return p;
}

std::string Bearer(const std::string& token) { return "Bearer " + token; }

using Verdict = AccessDecision::Verdict;

TEST(AccessPolicy, ParsesScopesCommentsAndBlankLines) {
  AccessPolicy policy = Policy();
  EXPECT_EQ(policy.token_count(), 3u);
  EXPECT_EQ(policy.ScopeOf(kRead), ApiScope::kRead);
  EXPECT_EQ(policy.ScopeOf(kWrite), ApiScope::kWrite);
  EXPECT_EQ(policy.ScopeOf(kWrite2), ApiScope::kWrite);
  EXPECT_EQ(policy.ScopeOf("unknown-token-0123456789"), std::nullopt);
  EXPECT_EQ(policy.ScopeOf(kRead.substr(0, kRead.size() - 1)), std::nullopt);
  EXPECT_EQ(policy.ScopeOf(""), std::nullopt);
  // The least it takes to read: the read token, though a write token comes first.
  EXPECT_EQ(policy.peer_token(), kRead);
}

TEST(AccessPolicy, PeerTokenFallsBackToTheFirstWriteToken) {
  Result<AccessPolicy> policy =
      AccessPolicy::Parse("write " + kWrite + "\nwrite " + kWrite2 + "\n", "f");
  ASSERT_TRUE(policy.ok()) << policy.error();
  EXPECT_EQ(policy.value().peer_token(), kWrite);
}

// Each malformed file is refused with the file and the line, and never with the token.
TEST(AccessPolicy, MalformedLinesNameTheFileAndLineButNeverTheToken) {
  const std::string secret = "s3cret-token-that-must-not-leak";
  struct Case {
    std::string text;
    std::string expected;  // in the message
  };
  const Case cases[] = {
      {"# c\nadmin " + secret + "\n", "tokens.txt line 2: the scope"},
      {"\n\n" + secret + " write\n", "tokens.txt line 3: the scope"},
      {"write\n", "tokens.txt line 1: expected"},
      {secret + "\n", "tokens.txt line 1: expected"},
      {"write " + secret + " extra\n", "tokens.txt line 1: expected"},
      {"write " + secret + " # a comment\n", "tokens.txt line 1: expected"},
      {"read short-token\n", "tokens.txt line 1: the token is shorter than 16 characters"},
      {"read " + secret + "\xc3\xa9\n", "tokens.txt line 1: the token holds a character"},
      {"read " + secret + "\nwrite " + secret + "\n",
       "tokens.txt line 2: the same token as line 1"},
      {"", "tokens.txt: no token"},
      {"# only comments\n\n", "tokens.txt: no token"},
      {"READ " + secret + "\n", "tokens.txt line 1: the scope"},
  };
  for (const Case& c : cases) {
    Result<AccessPolicy> policy = AccessPolicy::Parse(c.text, "tokens.txt");
    ASSERT_FALSE(policy.ok()) << c.text;
    EXPECT_NE(policy.error().find(c.expected), std::string::npos)
        << "for " << c.text << ": " << policy.error();
    EXPECT_EQ(policy.error().find("s3cret"), std::string::npos) << policy.error();
    EXPECT_EQ(policy.error().find("short-token"), std::string::npos) << policy.error();
  }
}

TEST(AccessPolicy, ExactlySixteenCharactersIsLongEnough) {
  EXPECT_TRUE(AccessPolicy::Parse("read 0123456789abcdef", "f").ok());
  EXPECT_FALSE(AccessPolicy::Parse("read 0123456789abcde", "f").ok());
}

TEST(AccessPolicy, WritesNeedAWriteToken) {
  AccessPolicy policy = Policy();
  for (const char* method : {"POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW"}) {
    for (const char* path :
         {"/v1/kv/a", "/v1/kv", "/timer/", "/timers", "/assign-rank", "/unassign-rank",
          "/send-command", "/v1/commands", "/v1/timers/abc", "/", "/assets/x.js", "/nowhere"}) {
      SCOPED_TRACE(std::string(method) + " " + path);
      EXPECT_EQ(policy.Required(method, path), ApiScope::kWrite);
      AccessDecision none = policy.Decide(method, path, nullptr);
      EXPECT_EQ(none.verdict, Verdict::kUnauthorized);
      EXPECT_EQ(none.http_status(), 401);
      EXPECT_EQ(none.reason, "missing_token");
      const std::string read = Bearer(kRead);
      AccessDecision scoped = policy.Decide(method, path, &read);
      EXPECT_EQ(scoped.verdict, Verdict::kForbidden);
      EXPECT_EQ(scoped.http_status(), 403);
      EXPECT_EQ(scoped.reason, "insufficient_scope");
      for (const std::string& token : {kWrite, kWrite2}) {
        const std::string write = Bearer(token);
        EXPECT_TRUE(policy.Decide(method, path, &write).allowed());
      }
    }
  }
}

TEST(AccessPolicy, ReadsAreOpenByDefault) {
  AccessPolicy policy = Policy();
  const std::string bogus = Bearer("not-a-token-at-all-0000");
  for (const char* path : {"/v1/kv/a", "/v1/cluster", "/metrics", "/v1/events", "/timer/x"}) {
    EXPECT_EQ(policy.Required("GET", path), std::nullopt) << path;
    EXPECT_TRUE(policy.Decide("GET", path, nullptr).allowed()) << path;
    EXPECT_TRUE(policy.Decide("HEAD", path, nullptr).allowed()) << path;
    // An open endpoint does not look at the header at all.
    EXPECT_TRUE(policy.Decide("GET", path, &bogus).allowed()) << path;
  }
}

TEST(AccessPolicy, ReadsCanRequireAToken) {
  AccessPolicy policy = Policy(/*reads_require_token=*/true);
  const std::string read = Bearer(kRead);
  const std::string write = Bearer(kWrite);
  for (const char* path :
       {"/v1/kv/a", "/v1/cluster", "/metrics", "/v1/events", "/v1/overview", "/timer/x", "/assets",
        "/assets/a/b", "/docs/x", "/healthz/x", "/v1/healthz"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(policy.Required("GET", path), ApiScope::kRead);
    AccessDecision none = policy.Decide("GET", path, nullptr);
    EXPECT_EQ(none.http_status(), 401);
    EXPECT_EQ(none.reason, "missing_token");
    EXPECT_TRUE(policy.Decide("GET", path, &read).allowed());
    EXPECT_TRUE(policy.Decide("GET", path, &write).allowed());
  }
  // Liveness and the dashboard's files, however the router would split the path.
  for (const char* path : {"/", "", "//", "/healthz", "/docs", "/openapi.json",
                           "/assets/dashboard.js", "//assets//chart.min.js", "/healthz/"}) {
    EXPECT_EQ(policy.Required("GET", path), std::nullopt) << path;
    EXPECT_TRUE(policy.Decide("GET", path, nullptr).allowed()) << path;
  }
}

TEST(AccessPolicy, TheAuthorizationHeaderIsParsedStrictly) {
  AccessPolicy policy = Policy();
  auto decide = [&](const std::string& header) {
    return policy.Decide("PUT", "/v1/kv/a", &header);
  };
  EXPECT_TRUE(decide("Bearer " + kWrite).allowed());
  EXPECT_TRUE(decide("bearer " + kWrite).allowed());
  EXPECT_TRUE(decide("BEARER   " + kWrite + "  ").allowed());
  EXPECT_TRUE(decide("Bearer\t" + kWrite).allowed());
  for (const std::string& bad :
       {std::string(""), std::string("Bearer"), std::string("Bearer "), "Basic " + kWrite,
        "Bearer" + kWrite, kWrite, "Bearer " + kWrite + " " + kWrite,
        // Two Authorization headers, as the server combines them.
        "Bearer " + kWrite + ", Bearer " + kWrite}) {
    AccessDecision decision = decide(bad);
    EXPECT_EQ(decision.http_status(), 401) << bad;
    EXPECT_EQ(decision.reason, "malformed_authorization") << bad;
    EXPECT_NE(decision.www_authenticate().find("error=\"invalid_token\""), std::string::npos);
  }
  AccessDecision unknown = decide("Bearer " + kWrite + "x");
  EXPECT_EQ(unknown.http_status(), 401);
  EXPECT_EQ(unknown.reason, "invalid_token");
  EXPECT_EQ(unknown.message.find(kWrite), std::string::npos);
}

TEST(AccessPolicy, ChallengesFollowRfc6750) {
  AccessPolicy policy = Policy();
  EXPECT_EQ(policy.Decide("POST", "/v1/kv", nullptr).www_authenticate(), "Bearer realm=\"synod\"");
  const std::string read = Bearer(kRead);
  EXPECT_EQ(policy.Decide("POST", "/v1/kv", &read).www_authenticate(),
            "Bearer realm=\"synod\", error=\"insufficient_scope\", scope=\"write\"");
}

TEST(AccessPolicy, NewTokensAreLongRandomAndAccepted) {
  const std::string a = NewApiToken();
  const std::string b = NewApiToken();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  Result<AccessPolicy> policy = AccessPolicy::Parse("write " + a + "\n", "f");
  ASSERT_TRUE(policy.ok()) << policy.error();
  EXPECT_EQ(policy.value().ScopeOf(a), ApiScope::kWrite);
}

TEST(RefusalLogLimiter, LogsABurstThenOneASecond) {
  RefusalLogLimiter limiter(3, std::chrono::seconds(1));
  MonoTime now{std::chrono::seconds(100)};
  int logged = 0;
  for (int i = 0; i < 100; ++i) logged += limiter.ShouldLog(now);
  EXPECT_EQ(logged, 3);
  EXPECT_EQ(limiter.TakeSuppressed(), 97u);
  EXPECT_EQ(limiter.TakeSuppressed(), 0u);
  now += std::chrono::milliseconds(500);
  EXPECT_FALSE(limiter.ShouldLog(now));
  now += std::chrono::milliseconds(500);
  EXPECT_TRUE(limiter.ShouldLog(now));
  EXPECT_EQ(limiter.TakeSuppressed(), 1u);
  EXPECT_FALSE(limiter.ShouldLog(now));
  // A quiet minute refills the burst, no more.
  now += std::chrono::minutes(1);
  logged = 0;
  for (int i = 0; i < 10; ++i) logged += limiter.ShouldLog(now);
  EXPECT_EQ(logged, 3);
  // Time going back (it cannot on a monotonic clock) gives nothing.
  EXPECT_FALSE(limiter.ShouldLog(now - std::chrono::seconds(30)));
}

}  // namespace
}  // namespace synod
