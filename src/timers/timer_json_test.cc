#include "timers/timer_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "timers/schedule.h"
#include "timers/timer_state.h"

namespace synod {
namespace {

using nlohmann::json;

constexpr int64_t kSecond = TimerState::kSecond;
constexpr int64_t kT0 = 1'795'961'100 * kSecond;                         // 2026-11-29T14:05:00Z
constexpr int64_t kMaxSeconds = TimerState::kMaxHorizonNanos / kSecond;  // 316,224,000
constexpr char kUrl[] = "https://example.com/hook";

bool Mentions(const Status& status, std::string_view field) {
  return status.message().find(field) != std::string::npos;
}

// --- the seed's POST /timer/ ---

wire::TimerCreate Seed(const json& request, int64_t* delay_seconds = nullptr) {
  int64_t ignored = -1;
  Result<wire::TimerCreate> create =
      ParseSeedTimer(request.dump(), delay_seconds ? delay_seconds : &ignored);
  EXPECT_TRUE(create.ok()) << request.dump() << ": " << create.error();
  return create.ok() ? create.value() : wire::TimerCreate();
}

Status SeedError(std::string_view body) {
  int64_t delay = -1;
  Result<wire::TimerCreate> create = ParseSeedTimer(body, &delay);
  EXPECT_FALSE(create.ok()) << body;
  return create.status();
}

TEST(ParseSeedTimer, DefaultsToOneSecond) {
  int64_t delay = -1;
  const wire::TimerCreate create = Seed({{"url", kUrl}}, &delay);
  EXPECT_EQ(delay, 1);
  ASSERT_EQ(create.start_case(), wire::TimerCreate::kDelayNanos);
  EXPECT_EQ(create.delay_nanos(), kSecond);
  EXPECT_TRUE(create.id().empty());  // the caller names it
  const wire::TimerSpec& spec = create.spec();
  EXPECT_EQ(spec.url(), kUrl);
  EXPECT_TRUE(spec.append_id());
  EXPECT_EQ(spec.method(), "POST");
  EXPECT_FALSE(spec.has_body());
  EXPECT_TRUE(TimerState::CheckSpec(spec).ok());
  // The default retry policy.
  const RetryPolicy defaults;
  EXPECT_EQ(spec.max_attempts(), defaults.max_attempts);
  EXPECT_EQ(spec.initial_backoff_nanos(), defaults.initial_backoff_nanos);
  EXPECT_EQ(spec.max_backoff_nanos(), defaults.max_backoff_nanos);
  EXPECT_EQ(spec.backoff_multiplier(), defaults.multiplier);
}

TEST(ParseSeedTimer, SumsHoursMinutesAndSeconds) {
  int64_t delay = -1;
  EXPECT_EQ(
      Seed({{"hours", 1}, {"minutes", 2}, {"seconds", 3}, {"url", kUrl}}, &delay).delay_nanos(),
      3723 * kSecond);
  EXPECT_EQ(delay, 3723);
  // Hours or minutes alone keep the one default second.
  EXPECT_EQ(Seed({{"hours", 2}, {"url", kUrl}}, &delay).delay_nanos(), 7201 * kSecond);
  EXPECT_EQ(Seed({{"minutes", 1}, {"seconds", 0}, {"url", kUrl}}, &delay).delay_nanos(),
            60 * kSecond);
  EXPECT_EQ(Seed({{"seconds", 0}, {"url", kUrl}}, &delay).delay_nanos(), 0);
  EXPECT_EQ(delay, 0);
  // Whole floats are integers; unknown fields are ignored.
  EXPECT_EQ(Seed({{"seconds", 5.0}, {"url", kUrl}, {"color", "blue"}}, &delay).delay_nanos(),
            5 * kSecond);
  // Exactly 10 years is the limit.
  EXPECT_EQ(Seed({{"seconds", kMaxSeconds}, {"url", kUrl}}, &delay).delay_nanos(),
            TimerState::kMaxHorizonNanos);
}

TEST(ParseSeedTimer, RejectsWrongTypesNamingTheField) {
  EXPECT_TRUE(Mentions(SeedError(R"({"seconds": "5", "url": "https://e.com"})"), "seconds"));
  EXPECT_TRUE(Mentions(SeedError(R"({"minutes": true, "url": "https://e.com"})"), "minutes"));
  EXPECT_TRUE(Mentions(SeedError(R"({"hours": [1], "url": "https://e.com"})"), "hours"));
  EXPECT_TRUE(Mentions(SeedError(R"({"hours": {}, "url": "https://e.com"})"), "hours"));
  EXPECT_TRUE(Mentions(SeedError(R"({"seconds": 1.5, "url": "https://e.com"})"), "seconds"));
  EXPECT_TRUE(Mentions(SeedError(R"({"seconds": 5, "url": null})"), "url"));
  EXPECT_TRUE(Mentions(SeedError(R"({"seconds": 5, "url": 5})"), "url"));
  EXPECT_TRUE(Mentions(SeedError(R"({"seconds": 5, "url": ["https://e.com"]})"), "url"));
  EXPECT_TRUE(Mentions(SeedError(R"({"seconds": 5})"), "url"));
  for (const char* body : {R"({"seconds": "5", "url": "https://e.com"})", R"({"seconds": 5})"}) {
    EXPECT_EQ(SeedError(body).code(), StatusCode::kInvalid) << body;
  }
}

TEST(ParseSeedTimer, RejectsNegativeHugeAndFarNumbers) {
  EXPECT_TRUE(Mentions(SeedError(R"({"seconds": -1, "url": "https://e.com"})"), "seconds"));
  EXPECT_TRUE(Mentions(SeedError(R"({"hours": -1, "url": "https://e.com"})"), "hours"));
  EXPECT_TRUE(Mentions(SeedError(R"({"minutes": -0.0001, "url": "https://e.com"})"), "minutes"));
  for (const char* number :
       {"1e300", "-1e300", "9223372036854775807", "9223372036854775808", "18446744073709551615",
        "18446744073709551616", "-9223372036854775808", "1e15", "1e20"}) {
    for (const char* field : {"hours", "minutes", "seconds"}) {
      const std::string body =
          std::string(R"({"url": "https://e.com", ")") + field + "\": " + number + "}";
      const Status error = SeedError(body);
      EXPECT_EQ(error.code(), StatusCode::kInvalid) << body;
      EXPECT_TRUE(Mentions(error, field)) << body << ": " << error.message();
    }
  }
  // Over 10 years, in one field or in the sum.
  EXPECT_EQ(SeedError(R"({"seconds": 316224001, "url": "https://e.com"})").code(),
            StatusCode::kInvalid);
  EXPECT_EQ(SeedError(R"({"hours": 87841, "url": "https://e.com"})").code(), StatusCode::kInvalid);
  EXPECT_EQ(SeedError(R"({"hours": 87840, "minutes": 1, "url": "https://e.com"})").code(),
            StatusCode::kInvalid);
  EXPECT_EQ(SeedError(R"({"hours": 87840, "url": "https://e.com"})").code(),
            StatusCode::kInvalid);  // plus the default second
  EXPECT_EQ(SeedError(R"({"hours": 87840, "minutes": 5270400, "url": "https://e.com"})").code(),
            StatusCode::kInvalid);
}

TEST(ParseSeedTimer, RejectsBadUrlsAndBodies) {
  for (const char* url :
       {"", "ftp://e.com/x", "e.com/hook", "http://", "https://e.com/a b", "javascript:alert(1)"}) {
    const std::string body = json{{"url", url}}.dump();
    EXPECT_EQ(SeedError(body).code(), StatusCode::kInvalid) << body;
  }
  for (const char* body : {"", "{", "{\"url\": ", "not json", "{\"url\": \"https://e.com\",}",
                           "{'url': 'https://e.com'}"}) {
    EXPECT_EQ(SeedError(body).code(), StatusCode::kInvalid) << body;
  }
  for (const char* body :
       {"[]", "5", "\"https://e.com\"", "null", "true", R"([{"url": "https://e.com"}])"}) {
    EXPECT_EQ(SeedError(body).code(), StatusCode::kInvalid) << body;
  }
  const std::string huge = json{{"url", kUrl}, {"padding", std::string(128 * 1024, 'x')}}.dump();
  EXPECT_EQ(SeedError(huge).code(), StatusCode::kTooLarge);
}

TEST(ParseSeedTimer, TheResultCreatesATimerDueAfterTheDelay) {
  wire::TimerCreate create = Seed({{"minutes", 1}, {"seconds", 30}, {"url", kUrl}});
  create.set_id("6f1c2a9e-0b7d-4c3a-8e5f-1a2b3c4d5e6f");
  TimerState state;
  Result<std::string> result =
      state.Apply(ApplyContext{1, kT0}, 1, TimerState::Create(create).body);
  ASSERT_TRUE(result.ok()) << result.error();
  wire::TimerRecord record;
  ASSERT_TRUE(record.ParseFromString(result.value()));
  EXPECT_EQ(record.due_nanos(), kT0 + 90 * kSecond);
  EXPECT_EQ(TimeLeftSeconds(record, kT0), 90);
}

// --- POST /v1/timers ---

wire::TimerCreate Native(const json& request, const std::string& header = "") {
  Result<wire::TimerCreate> create = ParseNativeTimer(request.dump(), header);
  EXPECT_TRUE(create.ok()) << request.dump() << ": " << create.error();
  return create.ok() ? create.value() : wire::TimerCreate();
}

Status NativeError(const json& request, const std::string& header = "") {
  Result<wire::TimerCreate> create = ParseNativeTimer(request.dump(), header);
  EXPECT_FALSE(create.ok()) << request.dump();
  return create.status();
}

json With(json request) {
  if (!request.contains("url")) request["url"] = kUrl;
  if (!request.contains("delay") && !request.contains("at") && !request.contains("every") &&
      !request.contains("cron")) {
    request["delay"] = "1m";
  }
  return request;
}

TEST(ParseNativeTimer, AMinimalRequestGetsTheDefaults) {
  const wire::TimerCreate create = Native({{"url", kUrl}, {"delay", "90s"}});
  ASSERT_EQ(create.start_case(), wire::TimerCreate::kDelayNanos);
  EXPECT_EQ(create.delay_nanos(), 90 * kSecond);
  const wire::TimerSpec& spec = create.spec();
  EXPECT_EQ(spec.url(), kUrl);
  EXPECT_FALSE(spec.append_id());
  EXPECT_EQ(spec.method(), "POST");
  EXPECT_EQ(spec.headers_size(), 0);
  EXPECT_FALSE(spec.has_body());
  EXPECT_EQ(spec.timeout_ms(), 10'000u);
  const RetryPolicy defaults;
  EXPECT_EQ(spec.max_attempts(), defaults.max_attempts);
  EXPECT_EQ(spec.initial_backoff_nanos(), defaults.initial_backoff_nanos);
  EXPECT_EQ(spec.max_backoff_nanos(), defaults.max_backoff_nanos);
  EXPECT_EQ(spec.backoff_multiplier(), defaults.multiplier);
  EXPECT_EQ(spec.late_policy(), wire::LATE_FIRE);
  EXPECT_EQ(spec.every_nanos(), 0);
  EXPECT_TRUE(spec.cron().empty());
  EXPECT_TRUE(spec.idempotency_key().empty());
  EXPECT_TRUE(TimerState::CheckSpec(spec).ok());
}

TEST(ParseNativeTimer, DelaysAreDurationStringsOrSeconds) {
  EXPECT_EQ(Native({{"url", kUrl}, {"delay", "1h30m"}}).delay_nanos(), 5400 * kSecond);
  EXPECT_EQ(Native({{"url", kUrl}, {"delay", "250ms"}}).delay_nanos(), 250'000'000);
  EXPECT_EQ(Native({{"url", kUrl}, {"delay", "2d"}}).delay_nanos(), 2 * 86400 * kSecond);
  EXPECT_EQ(Native({{"url", kUrl}, {"delay", 90}}).delay_nanos(), 90 * kSecond);
  EXPECT_EQ(Native({{"url", kUrl}, {"delay", 1.5}}).delay_nanos(), 1'500'000'000);
  EXPECT_EQ(Native({{"url", kUrl}, {"delay", 0}}).delay_nanos(), 0);
  EXPECT_EQ(Native({{"url", kUrl}, {"delay", kMaxSeconds}}).delay_nanos(),
            TimerState::kMaxHorizonNanos);

  for (const json& bad : {json(-1), json(-0.5), json("-5s"), json("soon"), json("5 s"),
                          json("30m1h"), json(""), json(true), json(nullptr), json::array(),
                          json::object(), json(kMaxSeconds + 1), json(1e300), json("3700d")}) {
    const Status error = NativeError({{"url", kUrl}, {"delay", bad}});
    EXPECT_EQ(error.code(), StatusCode::kInvalid) << bad.dump();
    EXPECT_TRUE(Mentions(error, "delay")) << bad.dump() << ": " << error.message();
  }
}

TEST(ParseNativeTimer, AtIsAnRfc3339TimeOrEpochSeconds) {
  wire::TimerCreate create = Native({{"url", kUrl}, {"at", "2026-11-29T14:05:00Z"}});
  ASSERT_EQ(create.start_case(), wire::TimerCreate::kAtNanos);
  EXPECT_EQ(create.at_nanos(), kT0);
  EXPECT_EQ(Native({{"url", kUrl}, {"at", "2026-11-29T15:05:00.5+01:00"}}).at_nanos(),
            kT0 + 500'000'000);
  EXPECT_EQ(Native({{"url", kUrl}, {"at", 1'795'961'100}}).at_nanos(), kT0);
  EXPECT_EQ(Native({{"url", kUrl}, {"at", 1'795'961'100.5}}).at_nanos(), kT0 + 500'000'000);
  EXPECT_EQ(Native({{"url", kUrl}, {"at", 0}}).at_nanos(), 0);

  for (const json& bad :
       {json("tomorrow"), json("2026-11-29"), json("2026-02-30T00:00:00Z"),
        json(" 2026-11-29T14:05:00Z"), json(-1), json(true), json(nullptr), json::object(),
        json(1e300),
        // After what int64 nanoseconds hold (2262-04-11T23:47:16Z): never a wrapped value.
        json(9'300'000'000), json(9'223'372'037), json(253'402'300'799), json(253'402'300'800)}) {
    const Status error = NativeError({{"url", kUrl}, {"at", bad}});
    EXPECT_EQ(error.code(), StatusCode::kInvalid) << bad.dump();
    EXPECT_TRUE(Mentions(error, "at")) << bad.dump() << ": " << error.message();
  }
  EXPECT_EQ(NativeError({{"url", kUrl}, {"at", 1}, {"delay", "1s"}}).code(), StatusCode::kInvalid);
}

TEST(ParseNativeTimer, RecurrenceIsEveryOrCron) {
  wire::TimerCreate create = Native({{"url", kUrl}, {"every", "1m"}});
  EXPECT_EQ(create.start_case(), wire::TimerCreate::START_NOT_SET);
  EXPECT_EQ(create.spec().every_nanos(), 60 * kSecond);
  // With a first time.
  create = Native({{"url", kUrl}, {"every", 3600}, {"delay", "10s"}});
  EXPECT_EQ(create.spec().every_nanos(), 3600 * kSecond);
  EXPECT_EQ(create.delay_nanos(), 10 * kSecond);

  create = Native({{"url", kUrl}, {"cron", "*/5 * * * mon-fri"}});
  EXPECT_EQ(create.start_case(), wire::TimerCreate::START_NOT_SET);
  EXPECT_EQ(create.spec().cron(), "*/5 * * * mon-fri");
  EXPECT_EQ(create.spec().every_nanos(), 0);

  EXPECT_TRUE(Mentions(NativeError({{"url", kUrl}, {"every", "500ms"}}), "every"));
  EXPECT_TRUE(Mentions(NativeError({{"url", kUrl}, {"every", "0s"}}), "every"));
  EXPECT_TRUE(Mentions(NativeError({{"url", kUrl}, {"every", "soon"}}), "every"));
  EXPECT_TRUE(Mentions(NativeError({{"url", kUrl}, {"cron", 5}}), "cron"));
  EXPECT_TRUE(Mentions(NativeError({{"url", kUrl}, {"cron", "61 * * * *"}}), "cron"));
  EXPECT_TRUE(Mentions(NativeError({{"url", kUrl}, {"cron", "* * * *"}}), "cron"));
  EXPECT_EQ(NativeError({{"url", kUrl}, {"every", "1m"}, {"cron", "* * * * *"}}).code(),
            StatusCode::kInvalid);
  // No start at all.
  EXPECT_EQ(NativeError({{"url", kUrl}}).code(), StatusCode::kInvalid);
}

TEST(ParseNativeTimer, MethodHeadersAndBody) {
  wire::TimerCreate create = Native(With({{"method", "get"}}));
  EXPECT_EQ(create.spec().method(), "GET");
  EXPECT_EQ(Native(With({{"method", "Patch"}})).spec().method(), "PATCH");
  EXPECT_EQ(Native(With({{"method", "DELETE"}})).spec().method(), "DELETE");
  EXPECT_TRUE(Mentions(NativeError(With({{"method", "FETCH"}})), "method"));
  EXPECT_TRUE(Mentions(NativeError(With({{"method", 5}})), "method"));

  create = Native(With({{"headers", {{"X-Trace", "abc"}, {"Authorization", "Bearer t"}}}}));
  std::map<std::string, std::string> headers;
  for (const wire::TimerHeader& header : create.spec().headers()) {
    headers[header.name()] = header.value();
  }
  EXPECT_EQ(headers, (std::map<std::string, std::string>{{"X-Trace", "abc"},
                                                         {"Authorization", "Bearer t"}}));
  EXPECT_TRUE(Mentions(NativeError(With({{"headers", {{"X-Count", 5}}}})), "X-Count"));
  EXPECT_TRUE(Mentions(NativeError(With({{"headers", json::array({"X-A: 1"})}})), "headers"));
  EXPECT_TRUE(Mentions(NativeError(With({{"headers", "X-A: 1"}})), "headers"));
  for (const char* reserved : {"Idempotency-Key", "synod-attempt", "Host", "webhook-id"}) {
    EXPECT_EQ(NativeError(With({{"headers", {{reserved, "x"}}}})).code(), StatusCode::kInvalid)
        << reserved;
  }
  EXPECT_EQ(NativeError(With({{"headers", {{"X-A", "1\r\nX-Evil: 2"}}}})).code(),
            StatusCode::kInvalid);
  EXPECT_EQ(NativeError(With({{"headers", {{"X A", "1"}}}})).code(), StatusCode::kInvalid);

  create = Native(With({{"body", R"({"order": 42})"}}));
  EXPECT_TRUE(create.spec().has_body());
  EXPECT_EQ(create.spec().body(), R"({"order": 42})");
  create = Native(With({{"body", ""}}));  // an empty body is a body
  EXPECT_TRUE(create.spec().has_body());
  EXPECT_TRUE(create.spec().body().empty());
  EXPECT_TRUE(Mentions(NativeError(With({{"body", {{"order", 42}}}})), "body"));
  EXPECT_EQ(NativeError(With({{"body", std::string(64 * 1024 + 1, 'x')}})).code(),
            StatusCode::kTooLarge);
  EXPECT_TRUE(Native(With({{"body", std::string(64 * 1024, 'x')}})).spec().has_body());
  EXPECT_EQ(NativeError(With({{"body", std::string(128 * 1024, 'x')}})).code(),
            StatusCode::kTooLarge);
}

TEST(ParseNativeTimer, TimeoutRetryAndLatePolicy) {
  EXPECT_EQ(Native(With({{"timeout", "30s"}})).spec().timeout_ms(), 30'000u);
  EXPECT_EQ(Native(With({{"timeout", 0.5}})).spec().timeout_ms(), 500u);
  EXPECT_EQ(Native(With({{"timeout", "5m"}})).spec().timeout_ms(), 300'000u);
  for (const json& bad : {json("0s"), json(0), json("301s"), json("10m"), json(1e9), json(-1),
                          json("fast"), json(true)}) {
    EXPECT_EQ(NativeError(With({{"timeout", bad}})).code(), StatusCode::kInvalid) << bad.dump();
  }
  EXPECT_TRUE(Mentions(NativeError(With({{"timeout", "fast"}})), "timeout"));

  wire::TimerSpec spec = Native(With({{"retry",
                                       {{"max_attempts", 5},
                                        {"initial_backoff", "2s"},
                                        {"max_backoff", 60},
                                        {"multiplier", 3}}}}))
                             .spec();
  EXPECT_EQ(spec.max_attempts(), 5u);
  EXPECT_EQ(spec.initial_backoff_nanos(), 2 * kSecond);
  EXPECT_EQ(spec.max_backoff_nanos(), 60 * kSecond);
  EXPECT_EQ(spec.backoff_multiplier(), 3.0);
  // Fields not given keep their defaults.
  spec = Native(With({{"retry", {{"max_attempts", 1}}}})).spec();
  EXPECT_EQ(spec.max_attempts(), 1u);
  EXPECT_EQ(spec.initial_backoff_nanos(), RetryPolicy().initial_backoff_nanos);
  EXPECT_EQ(Native(With({{"retry", json::object()}})).spec().max_attempts(),
            RetryPolicy().max_attempts);

  EXPECT_TRUE(Mentions(NativeError(With({{"retry", {{"max_attempts", 0}}}})), "max_attempts"));
  EXPECT_TRUE(Mentions(NativeError(With({{"retry", {{"max_attempts", 101}}}})), "max_attempts"));
  EXPECT_TRUE(Mentions(NativeError(With({{"retry", {{"max_attempts", 2.5}}}})), "max_attempts"));
  EXPECT_TRUE(Mentions(NativeError(With({{"retry", {{"max_attempts", "3"}}}})), "max_attempts"));
  EXPECT_TRUE(Mentions(NativeError(With({{"retry", {{"max_attempts", 1e300}}}})), "max_attempts"));
  EXPECT_TRUE(Mentions(NativeError(With({{"retry", {{"initial_backoff", "x"}}}})),
                       "retry.initial_backoff"));
  EXPECT_TRUE(Mentions(NativeError(With({{"retry", {{"max_backoff", -1}}}})), "retry.max_backoff"));
  EXPECT_TRUE(Mentions(NativeError(With({{"retry", {{"multiplier", "2"}}}})), "multiplier"));
  EXPECT_EQ(NativeError(With({{"retry", {{"multiplier", 0.5}}}})).code(), StatusCode::kInvalid);
  EXPECT_EQ(NativeError(With({{"retry", {{"max_backoff", "2d"}}}})).code(), StatusCode::kInvalid);
  EXPECT_EQ(
      NativeError(With({{"retry", {{"initial_backoff", "10m"}, {"max_backoff", "1m"}}}})).code(),
      StatusCode::kInvalid);
  EXPECT_TRUE(Mentions(NativeError(With({{"retry", 3}})), "retry"));

  spec = Native(With({{"late_policy", "skip"}})).spec();
  EXPECT_EQ(spec.late_policy(), wire::LATE_SKIP);
  EXPECT_EQ(spec.late_after_nanos(), 60 * kSecond);  // the default grace
  spec = Native(With({{"late_policy", "fail"}, {"late_after", "5m"}})).spec();
  EXPECT_EQ(spec.late_policy(), wire::LATE_FAIL);
  EXPECT_EQ(spec.late_after_nanos(), 300 * kSecond);
  EXPECT_EQ(Native(With({{"late_policy", "fire"}})).spec().late_policy(), wire::LATE_FIRE);
  EXPECT_TRUE(Mentions(NativeError(With({{"late_policy", "drop"}})), "late_policy"));
  EXPECT_TRUE(Mentions(NativeError(With({{"late_policy", 1}})), "late_policy"));
  EXPECT_TRUE(Mentions(NativeError(With({{"late_after", "never"}})), "late_after"));

  EXPECT_TRUE(Native(With({{"append_id", true}})).spec().append_id());
  EXPECT_FALSE(Native(With({{"append_id", false}})).spec().append_id());
  EXPECT_TRUE(Mentions(NativeError(With({{"append_id", "yes"}})), "append_id"));
}

TEST(ParseNativeTimer, TheIdempotencyKeyComesFromTheBodyOrTheHeader) {
  EXPECT_EQ(Native(With({}), "from-header").spec().idempotency_key(), "from-header");
  EXPECT_EQ(
      Native(With({{"idempotency_key", "from-body"}}), "from-header").spec().idempotency_key(),
      "from-body");
  EXPECT_EQ(Native(With({{"idempotency_key", "from-body"}})).spec().idempotency_key(), "from-body");
  EXPECT_TRUE(Native(With({})).spec().idempotency_key().empty());
  EXPECT_TRUE(Mentions(NativeError(With({{"idempotency_key", ""}})), "idempotency_key"));
  EXPECT_TRUE(Mentions(NativeError(With({{"idempotency_key", 5}})), "idempotency_key"));
  EXPECT_EQ(NativeError(With({{"idempotency_key", std::string(129, 'k')}})).code(),
            StatusCode::kInvalid);
  EXPECT_EQ(NativeError(With({}), std::string(129, 'k')).code(), StatusCode::kInvalid);
}

TEST(ParseNativeTimer, RejectsBadUrlsAndBadJson) {
  EXPECT_TRUE(Mentions(NativeError({{"delay", "1s"}}), "url"));
  EXPECT_TRUE(Mentions(NativeError({{"delay", "1s"}, {"url", 5}}), "url"));
  EXPECT_TRUE(Mentions(NativeError({{"delay", "1s"}, {"url", nullptr}}), "url"));
  EXPECT_EQ(NativeError({{"delay", "1s"}, {"url", "ftp://e.com"}}).code(), StatusCode::kInvalid);
  EXPECT_EQ(NativeError({{"delay", "1s"}, {"url", "https://"}}).code(), StatusCode::kInvalid);
  for (const char* body : {"", "{", "[]", "null", "\"x\"", "{\"url\": \"https://e.com\""}) {
    Result<wire::TimerCreate> create = ParseNativeTimer(body, "");
    EXPECT_EQ(create.code(), StatusCode::kInvalid) << body;
  }
  const std::string huge =
      json{{"url", kUrl}, {"delay", "1s"}, {"x", std::string(200'000, 'x')}}.dump();
  EXPECT_EQ(ParseNativeTimer(huge, "").code(), StatusCode::kTooLarge);
}

TEST(ParseNativeTimer, EveryParsedRequestIsAcceptedByTheState) {
  TimerState state;
  uint64_t n = 0;
  for (const json& request :
       {With({}), With({{"every", "1m"}}), With({{"cron", "0 9 * * mon"}, {"url", kUrl}}),
        With({{"at", 1'795'961'200}}), With({{"method", "put"}, {"body", "x"}, {"timeout", 1}}),
        With({{"late_policy", "skip"}, {"retry", {{"max_attempts", 100}}}})}) {
    wire::TimerCreate create = Native(request);
    create.set_id(Uuid{0x4000, 0x8000'0000'0000'0000ull | ++n}.ToString());
    Result<std::string> result =
        state.Apply(ApplyContext{n, kT0}, 1, TimerState::Create(create).body);
    EXPECT_TRUE(result.ok()) << request.dump() << ": " << result.error();
  }
  EXPECT_EQ(state.size(), n);
}

// --- PATCH /v1/timers/{id} ---

TEST(ParseReschedule, TakesADelayOrATime) {
  const std::string id = "6f1c2a9e-0b7d-4c3a-8e5f-1a2b3c4d5e6f";
  Result<wire::TimerReschedule> reschedule = ParseReschedule(R"({"delay": "5m"})", id);
  ASSERT_TRUE(reschedule.ok()) << reschedule.error();
  EXPECT_EQ(reschedule.value().id(), id);
  ASSERT_EQ(reschedule.value().start_case(), wire::TimerReschedule::kDelayNanos);
  EXPECT_EQ(reschedule.value().delay_nanos(), 300 * kSecond);

  reschedule = ParseReschedule(R"({"delay": 2.5})", id);
  ASSERT_TRUE(reschedule.ok());
  EXPECT_EQ(reschedule.value().delay_nanos(), 2'500'000'000);

  reschedule = ParseReschedule(R"({"at": "2026-11-29T14:05:00Z"})", id);
  ASSERT_TRUE(reschedule.ok());
  ASSERT_EQ(reschedule.value().start_case(), wire::TimerReschedule::kAtNanos);
  EXPECT_EQ(reschedule.value().at_nanos(), kT0);
  reschedule = ParseReschedule(R"({"at": 1795961100})", id);
  ASSERT_TRUE(reschedule.ok());
  EXPECT_EQ(reschedule.value().at_nanos(), kT0);

  for (const char* bad :
       {"{}", R"({"delay": "5m", "at": 1795961100})", R"({"delay": -5})", R"({"delay": "later"})",
        R"({"at": "noon"})", R"({"at": false})", R"({"delay": null})", "[]", "", "{", "5"}) {
    EXPECT_EQ(ParseReschedule(bad, id).code(), StatusCode::kInvalid) << bad;
  }
  EXPECT_TRUE(Mentions(ParseReschedule(R"({"delay": "later"})", id).status(), "delay"));
  EXPECT_TRUE(Mentions(ParseReschedule(R"({"at": "noon"})", id).status(), "at"));
  EXPECT_EQ(ParseReschedule(std::string(128 * 1024 + 1, ' '), id).code(), StatusCode::kTooLarge);
}

// --- records as users see them ---

class TimerJsonTest : public ::testing::Test {
 protected:
  static constexpr char kId[] = "6f1c2a9e-0b7d-4c3a-8e5f-1a2b3c4d5e6f";

  wire::TimerRecord Create(const json& request, int64_t now = kT0) {
    wire::TimerCreate create = Native(request);
    create.set_id(kId);
    Result<std::string> result =
        state_.Apply(ApplyContext{++index_, now}, 1, TimerState::Create(create).body);
    EXPECT_TRUE(result.ok()) << result.error();
    return *state_.Get(*Uuid::Parse(kId));
  }
  wire::TimerRecord Complete(int http_status, int64_t started, int64_t ended,
                             const std::string& error = "") {
    const wire::TimerRecord record = *state_.Get(*Uuid::Parse(kId));
    wire::TimerComplete complete;
    complete.set_id(kId);
    wire::TimerAttempt& attempt = *complete.mutable_attempt();
    attempt.set_occurrence(record.occurrence());
    attempt.set_number(record.attempts() + 1);
    attempt.set_node("node-a");
    attempt.set_term(7);
    attempt.set_due_nanos(record.next_attempt_nanos());
    attempt.set_started_nanos(started);
    attempt.set_ended_nanos(ended);
    attempt.set_http_status(http_status);
    attempt.set_error(error);
    EXPECT_TRUE(
        state_.Apply(ApplyContext{++index_, ended}, 1, TimerState::Complete(complete).body).ok());
    return *state_.Get(*Uuid::Parse(kId));
  }

  TimerState state_;
  uint64_t index_ = 0;
};

TEST_F(TimerJsonTest, ShowsAWaitingTimer) {
  const wire::TimerRecord record =
      Create({{"url", kUrl},
              {"delay", "90s"},
              {"method", "put"},
              {"headers", {{"X-Trace", "abc"}}},
              {"body", "payload"},
              {"timeout", "2.5s"},
              {"retry", {{"max_attempts", 4}, {"initial_backoff", "2s"}}},
              {"late_policy", "skip"},
              {"late_after", "30s"},
              {"idempotency_key", "order-42"}});
  const json out = TimerJson(record, kT0 + 30 * kSecond);
  EXPECT_EQ(out["id"], kId);
  EXPECT_EQ(out["status"], "waiting");
  EXPECT_EQ(out["time_left"], 60);
  EXPECT_EQ(out["url"], kUrl);
  EXPECT_EQ(out["append_id"], false);
  EXPECT_EQ(out["method"], "PUT");
  EXPECT_EQ(out["headers"], (json{{"X-Trace", "abc"}}));
  EXPECT_EQ(out["body"], "payload");
  EXPECT_EQ(out["timeout_s"], 2.5);
  EXPECT_EQ(out["retry"]["max_attempts"], 4);
  EXPECT_EQ(out["retry"]["initial_backoff_s"], 2.0);
  EXPECT_EQ(out["retry"]["max_backoff_s"], 300.0);
  EXPECT_EQ(out["retry"]["multiplier"], 2.0);
  EXPECT_EQ(out["late_policy"], "skip");
  EXPECT_EQ(out["late_after_s"], 30.0);
  EXPECT_EQ(out["schedule"], json::object());
  EXPECT_EQ(out["created"], "2026-11-29T14:05:00Z");
  EXPECT_EQ(out["due"], "2026-11-29T14:06:30Z");
  EXPECT_EQ(out["due_nanos"], kT0 + 90 * kSecond);
  EXPECT_EQ(out["next_attempt"], "2026-11-29T14:06:30Z");
  EXPECT_EQ(out["attempts"], 0);
  EXPECT_EQ(out["occurrence"], 0);
  EXPECT_EQ(out["completed"], 0);
  EXPECT_TRUE(out["finished"].is_null());
  EXPECT_EQ(out["outcome"], "");
  EXPECT_EQ(out["history"], json::array());
  EXPECT_EQ(out["idempotency_key"], "order-42");
  // Round trips through text.
  EXPECT_EQ(json::parse(out.dump()), out);
}

TEST_F(TimerJsonTest, ShowsAttemptsAndAFinishedTimer) {
  Create({{"url", kUrl}, {"delay", "10s"}});
  const int64_t due = kT0 + 10 * kSecond;
  Complete(0, due + 250'000'000, due + 1'250'000'000, "connection refused");
  wire::TimerRecord record = Complete(503, due + 3 * kSecond, due + 3 * kSecond + 5'000'000);
  json out = TimerJson(record, due + 4 * kSecond);
  EXPECT_EQ(out["status"], "executing");
  EXPECT_EQ(out["time_left"], TimeLeftSeconds(record, due + 4 * kSecond));
  EXPECT_EQ(out["attempts"], 2);
  EXPECT_FALSE(out["next_attempt"].is_null());
  EXPECT_FALSE(out.contains("body"));
  EXPECT_FALSE(out.contains("idempotency_key"));
  ASSERT_EQ(out["history"].size(), 2u);
  const json& first = out["history"][0];
  EXPECT_EQ(first["occurrence"], 0);
  EXPECT_EQ(first["attempt"], 1);
  EXPECT_EQ(first["node"], "node-a");
  EXPECT_EQ(first["term"], 7);
  EXPECT_EQ(first["due"], "2026-11-29T14:05:10Z");
  EXPECT_EQ(first["started"], "2026-11-29T14:05:10.250Z");
  EXPECT_EQ(first["ended"], "2026-11-29T14:05:11.250Z");
  EXPECT_EQ(first["lateness_ms"], 250.0);
  EXPECT_EQ(first["duration_ms"], 1000.0);
  EXPECT_EQ(first["error"], "connection refused");
  EXPECT_FALSE(first.contains("http_status"));
  EXPECT_FALSE(first.contains("skipped"));
  const json& second = out["history"][1];
  EXPECT_EQ(second["attempt"], 2);
  EXPECT_EQ(second["http_status"], 503);
  EXPECT_FALSE(second.contains("error"));
  EXPECT_EQ(second["duration_ms"], 5.0);

  record = Complete(200, due + 10 * kSecond, due + 11 * kSecond);
  out = TimerJson(record, due + 20 * kSecond);
  EXPECT_EQ(out["status"], "done");
  EXPECT_EQ(out["time_left"], 0);
  EXPECT_TRUE(out["next_attempt"].is_null());
  EXPECT_EQ(out["finished"], "2026-11-29T14:05:21Z");
  EXPECT_EQ(out["completed"], 1);
  EXPECT_NE(out["outcome"].get<std::string>().find("200"), std::string::npos);
  EXPECT_EQ(out["history"].size(), 3u);
}

TEST_F(TimerJsonTest, ShowsTheRecurrence) {
  wire::TimerRecord record = Create({{"url", kUrl}, {"every", "90s"}});
  EXPECT_EQ(TimerJson(record, kT0)["schedule"], (json{{"every_s", 90.0}}));
  TimerState other;
  wire::TimerCreate create = Native({{"url", kUrl}, {"cron", "@hourly"}});
  create.set_id(kId);
  ASSERT_TRUE(other.Apply(ApplyContext{1, kT0}, 1, TimerState::Create(create).body).ok());
  record = *other.Get(*Uuid::Parse(kId));
  const json out = TimerJson(record, kT0);
  EXPECT_EQ(out["schedule"], (json{{"cron", "@hourly"}}));
  EXPECT_EQ(out["due"], "2026-11-29T15:00:00Z");
  EXPECT_EQ(out["time_left"], 55 * 60);
}

TEST_F(TimerJsonTest, ShowsSkippedAttempts) {
  Create({{"url", kUrl}, {"delay", "10s"}, {"late_policy", "skip"}});
  const wire::TimerRecord record = *state_.Get(*Uuid::Parse(kId));
  wire::TimerComplete complete;
  complete.set_id(kId);
  complete.mutable_attempt()->set_number(1);
  complete.mutable_attempt()->set_skipped(true);
  complete.mutable_attempt()->set_due_nanos(record.due_nanos());
  complete.mutable_attempt()->set_started_nanos(record.due_nanos() + 120 * kSecond);
  complete.mutable_attempt()->set_ended_nanos(record.due_nanos() + 120 * kSecond);
  ASSERT_TRUE(
      state_.Apply(ApplyContext{9, kT0 + 130 * kSecond}, 1, TimerState::Complete(complete).body)
          .ok());
  const json out = TimerJson(*state_.Get(*Uuid::Parse(kId)), kT0 + 130 * kSecond);
  EXPECT_EQ(out["status"], "skipped");
  EXPECT_EQ(out["history"][0]["skipped"], true);
  EXPECT_EQ(out["history"][0]["lateness_ms"], 120'000.0);
}

TEST(TimeLeftSeconds, CountsDownToZero) {
  wire::TimerRecord record;
  record.set_status(wire::TIMER_WAITING);
  record.set_next_attempt_nanos(kT0 + 90 * kSecond);
  EXPECT_EQ(TimeLeftSeconds(record, kT0), 90);
  EXPECT_EQ(TimeLeftSeconds(record, kT0 + 30 * kSecond), 60);
  EXPECT_EQ(TimeLeftSeconds(record, kT0 + 90 * kSecond), 0);
  EXPECT_EQ(TimeLeftSeconds(record, kT0 + 1000 * kSecond), 0);  // never negative
  // Never increases as time passes, and stays within a second of the truth.
  int64_t previous = TimeLeftSeconds(record, kT0);
  for (int64_t now = kT0; now <= kT0 + 91 * kSecond; now += 137'000'000) {
    const int64_t left = TimeLeftSeconds(record, now);
    EXPECT_LE(left, previous);
    EXPECT_GE(left, 0);
    const double truth = static_cast<double>(kT0 + 90 * kSecond - now) / 1e9;
    EXPECT_LE(std::abs(static_cast<double>(left) - std::max(truth, 0.0)), 1.0) << now - kT0;
    previous = left;
  }
  for (wire::TimerStatus status :
       {wire::TIMER_DONE, wire::TIMER_FAILED, wire::TIMER_CANCELLED, wire::TIMER_SKIPPED}) {
    record.set_status(status);
    EXPECT_EQ(TimeLeftSeconds(record, kT0), 0) << status;
  }
}

}  // namespace
}  // namespace synod
