#include "timers/timer_state.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "timers/schedule.h"

namespace synod {
namespace {

constexpr int64_t kSecond = TimerState::kSecond;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 3600 * kSecond;
constexpr int64_t kT0 = 1'795'961'100 * kSecond;  // 2026-11-29T14:05:00Z

std::string Id(uint64_t n) {
  return Uuid{0x0000'0000'0000'4000ull | n << 16, 0x8000'0000'0000'0000ull | n}.ToString();
}

Uuid U(const std::string& id) { return *Uuid::Parse(id); }

// A valid spec: 3 attempts, backoff 1 s doubling up to 60 s.
wire::TimerSpec Spec() {
  wire::TimerSpec spec;
  spec.set_url("https://example.com/hook");
  spec.set_method("POST");
  spec.set_timeout_ms(10'000);
  spec.set_max_attempts(3);
  spec.set_initial_backoff_nanos(kSecond);
  spec.set_max_backoff_nanos(60 * kSecond);
  spec.set_backoff_multiplier(2.0);
  return spec;
}

wire::TimerCreate In(const std::string& id, int64_t delay, wire::TimerSpec spec = Spec()) {
  wire::TimerCreate create;
  create.set_id(id);
  *create.mutable_spec() = std::move(spec);
  create.set_delay_nanos(delay);
  return create;
}

wire::TimerCreate At(const std::string& id, int64_t at, wire::TimerSpec spec = Spec()) {
  wire::TimerCreate create;
  create.set_id(id);
  *create.mutable_spec() = std::move(spec);
  create.set_at_nanos(at);
  return create;
}

wire::TimerCreate Recurring(const std::string& id, wire::TimerSpec spec) {
  wire::TimerCreate create;
  create.set_id(id);
  *create.mutable_spec() = std::move(spec);
  return create;
}

wire::TimerRecord Parse(const std::string& bytes) {
  wire::TimerRecord record;
  EXPECT_TRUE(record.ParseFromString(bytes));
  return record;
}

class Sink final : public SectionSink {
 public:
  void Add(std::string_view record) override { records.emplace_back(record); }
  std::vector<std::string> records;
};

std::vector<std::string> Dump(const TimerState& state, size_t budget = 1 << 20) {
  Sink sink;
  std::unique_ptr<SectionCapture> capture = state.Capture();
  while (!capture->WriteSome(sink, budget)) {
  }
  return sink.records;
}

std::map<std::string, std::string> ById(const TimerState& state) {
  std::map<std::string, std::string> records;
  for (const std::string& bytes : Dump(state)) records[Parse(bytes).id()] = bytes;
  return records;
}

// The indexes and counts agree with the records.
::testing::AssertionResult Consistent(const TimerState& state) {
  TimerState::Index pending, finished;
  std::array<size_t, 5> counts{};
  const std::vector<std::string> records = Dump(state);
  for (const std::string& bytes : records) {
    const wire::TimerRecord record = Parse(bytes);
    const Uuid id = U(record.id());
    ++counts[record.status()];
    if (record.status() == wire::TIMER_WAITING) {
      pending.emplace(record.next_attempt_nanos(), id);
    } else {
      finished.emplace(record.finished_nanos(), id);
    }
    std::optional<wire::TimerRecord> got = state.Get(id);
    if (!got || got->SerializeAsString() != bytes) {
      return ::testing::AssertionFailure() << "Get disagrees with the capture for " << record.id();
    }
  }
  if (records.size() != state.size()) {
    return ::testing::AssertionFailure() << records.size() << " records, size() " << state.size();
  }
  if (pending != state.pending()) return ::testing::AssertionFailure() << "pending() differs";
  if (finished != state.finished()) return ::testing::AssertionFailure() << "finished() differs";
  for (int status = 0; status < 5; ++status) {
    if (counts[status] != state.count(static_cast<wire::TimerStatus>(status))) {
      return ::testing::AssertionFailure()
             << "count(" << status << ") is " << state.count(static_cast<wire::TimerStatus>(status))
             << ", records say " << counts[status];
    }
  }
  return ::testing::AssertionSuccess();
}

// Everything observable about a state, to check that a refused command changed nothing.
struct Observed {
  std::map<std::string, std::string> records;
  TimerState::Index pending, finished;
  bool operator==(const Observed&) const = default;
};
Observed Observe(const TimerState& state) {
  return Observed{ById(state), state.pending(), state.finished()};
}

// What a TimerState's listener was told.
struct Heard {
  std::vector<std::pair<Uuid, std::optional<int64_t>>> changes;
  int resets = 0;
  std::vector<std::pair<wire::TimerStatus, int32_t>> attempts;  // status after, HTTP status
  // The next attempt times told, in order (nullopt: no longer pending).
  std::vector<std::optional<int64_t>> times() const {
    std::vector<std::optional<int64_t>> times;
    for (const auto& change : changes) times.push_back(change.second);
    return times;
  }
};
void Listen(TimerState& state, Heard& heard) {
  state.SetListener(TimerState::Listener{
      .on_change = [&heard](const Uuid& id,
                            std::optional<int64_t> next) { heard.changes.emplace_back(id, next); },
      .on_reset = [&heard] { ++heard.resets; },
      .on_attempt =
          [&heard](const wire::TimerRecord& record, const wire::TimerAttempt& attempt) {
            heard.attempts.emplace_back(record.status(), attempt.http_status());
          },
  });
}
using Times = std::vector<std::optional<int64_t>>;

// Builds `to` from a snapshot of `from`, written `budget` bytes at a time.
void RoundTrip(const TimerState& from, TimerState& to, size_t budget = 1 << 20) {
  const std::vector<std::string> records = Dump(from, budget);
  std::unique_ptr<SectionLoader> loader = to.NewLoader(1);
  for (const std::string& record : records) ASSERT_TRUE(loader->Add(record).ok());
  ASSERT_TRUE(loader->Finish().ok());
  loader->Install();
}

class TimerStateTest : public ::testing::Test {
 protected:
  Result<std::string> Apply(const Proposal& proposal, int64_t at) {
    EXPECT_EQ(proposal.module, "timers");
    return state_.Apply(ApplyContext{++index_, at}, proposal.version, proposal.body);
  }
  Result<std::string> Create(const wire::TimerCreate& create, int64_t at = kT0) {
    return Apply(TimerState::Create(create), at);
  }
  // Creates, expecting success; returns the record.
  wire::TimerRecord Created(const wire::TimerCreate& create, int64_t at = kT0) {
    Result<std::string> result = Create(create, at);
    EXPECT_TRUE(result.ok()) << result.error();
    return result.ok() ? Parse(result.value()) : wire::TimerRecord();
  }
  wire::TimerRecord Get(const std::string& id) {
    std::optional<wire::TimerRecord> record = state_.Get(U(id));
    EXPECT_TRUE(record.has_value()) << id;
    return record.value_or(wire::TimerRecord());
  }
  // The next attempt of `id` as a firing node would record it.
  wire::TimerComplete Attempt(const std::string& id, int http_status, int64_t started) {
    const wire::TimerRecord record = Get(id);
    wire::TimerComplete complete;
    complete.set_id(id);
    wire::TimerAttempt& attempt = *complete.mutable_attempt();
    attempt.set_occurrence(record.occurrence());
    attempt.set_number(record.attempts() + 1);
    attempt.set_node("node-a");
    attempt.set_term(3);
    attempt.set_due_nanos(record.next_attempt_nanos());
    attempt.set_started_nanos(started);
    attempt.set_ended_nanos(started + 50'000'000);
    attempt.set_http_status(http_status);
    if (http_status == 0) attempt.set_error("connection refused");
    return complete;
  }
  Result<std::string> Complete(const std::string& id, int http_status, int64_t at,
                               int64_t retry_after = 0) {
    wire::TimerComplete complete = Attempt(id, http_status, at - 100'000'000);
    complete.set_retry_after_nanos(retry_after);
    return Apply(TimerState::Complete(complete), at);
  }
  Result<std::string> Skip(const std::string& id, int64_t at) {
    wire::TimerComplete complete = Attempt(id, 0, at);
    complete.mutable_attempt()->set_error("");
    complete.mutable_attempt()->set_skipped(true);
    return Apply(TimerState::Complete(complete), at);
  }

  TimerState state_;
  uint64_t index_ = 0;
};

// --- create ---

TEST_F(TimerStateTest, CreateWithADelayIsDueThatLongAfterTheEntry) {
  const wire::TimerRecord record = Created(In(Id(1), 90 * kSecond));
  EXPECT_EQ(record.id(), Id(1));
  EXPECT_EQ(record.status(), wire::TIMER_WAITING);
  EXPECT_EQ(record.created_nanos(), kT0);
  EXPECT_EQ(record.due_nanos(), kT0 + 90 * kSecond);
  EXPECT_EQ(record.next_attempt_nanos(), kT0 + 90 * kSecond);
  EXPECT_EQ(record.attempts(), 0u);
  EXPECT_EQ(record.occurrence(), 0u);
  EXPECT_EQ(record.completed(), 0u);
  EXPECT_EQ(record.spec().url(), "https://example.com/hook");
  EXPECT_EQ(Get(Id(1)).SerializeAsString(), record.SerializeAsString());
  EXPECT_EQ(state_.size(), 1u);
  EXPECT_EQ(state_.count(wire::TIMER_WAITING), 1u);
  EXPECT_EQ(state_.pending(), (TimerState::Index{{kT0 + 90 * kSecond, U(Id(1))}}));
  EXPECT_TRUE(state_.finished().empty());
  EXPECT_EQ(TimerStatusName(record, kT0), "waiting");
  EXPECT_EQ(TimerStatusName(record, kT0 + 90 * kSecond - 1), "waiting");
  EXPECT_EQ(TimerStatusName(record, kT0 + 90 * kSecond), "executing");

  EXPECT_EQ(Created(In(Id(2), 0)).due_nanos(), kT0);
  EXPECT_TRUE(Consistent(state_));
}

TEST_F(TimerStateTest, CreateAtATimeIsDueThen) {
  EXPECT_EQ(Created(At(Id(1), kT0 + kHour)).due_nanos(), kT0 + kHour);
  // A time already passed is accepted, and due at once.
  const wire::TimerRecord late = Created(At(Id(2), kT0 - 5 * kSecond));
  EXPECT_EQ(late.due_nanos(), kT0 - 5 * kSecond);
  EXPECT_EQ(TimerStatusName(late, kT0), "executing");
  EXPECT_EQ(state_.pending().begin()->second, U(Id(2)));
  // The largest horizon is accepted, one nanosecond more is not.
  EXPECT_TRUE(Create(At(Id(3), kT0 + TimerState::kMaxHorizonNanos)).ok());
  EXPECT_EQ(Create(At(Id(4), kT0 + TimerState::kMaxHorizonNanos + 1)).code(), StatusCode::kInvalid);
  EXPECT_TRUE(Create(In(Id(5), TimerState::kMaxHorizonNanos)).ok());
  EXPECT_EQ(Create(In(Id(6), TimerState::kMaxHorizonNanos + 1)).code(), StatusCode::kInvalid);
  EXPECT_EQ(Create(In(Id(7), -1)).code(), StatusCode::kInvalid);
  EXPECT_EQ(Create(At(Id(8), -1)).code(), StatusCode::kInvalid);
  EXPECT_EQ(state_.size(), 4u);
  EXPECT_TRUE(Consistent(state_));
}

TEST_F(TimerStateTest, CreateNeedsAUuidAndAStart) {
  EXPECT_EQ(Create(In("timer-1", kSecond)).code(), StatusCode::kInvalid);
  EXPECT_EQ(Create(In("", kSecond)).code(), StatusCode::kInvalid);
  wire::TimerCreate no_start = In(Id(1), kSecond);
  no_start.clear_delay_nanos();
  EXPECT_EQ(Create(no_start).code(), StatusCode::kInvalid);
  EXPECT_EQ(state_.size(), 0u);
  // An upper-case id is stored in the canonical form.
  std::string upper = Id(0xabc);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_NE(upper, Id(0xabc));
  EXPECT_EQ(Created(In(upper, kSecond)).id(), Id(0xabc));
  EXPECT_EQ(Get(Id(0xabc)).id(), Id(0xabc));
}

TEST_F(TimerStateTest, ATimerIdCannotBeReused) {
  Created(In(Id(1), kMinute));
  const Observed before = Observe(state_);
  EXPECT_EQ(Create(In(Id(1), 2 * kMinute), kT0 + kSecond).code(), StatusCode::kConflict);
  EXPECT_EQ(Observe(state_), before);
  // Not even once the first has finished.
  ASSERT_TRUE(Apply(TimerState::Cancel(Id(1)), kT0 + kSecond).ok());
  EXPECT_EQ(Create(In(Id(1), kMinute), kT0 + 2 * kSecond).code(), StatusCode::kConflict);
  EXPECT_EQ(state_.size(), 1u);
}

TEST_F(TimerStateTest, UndecodableOrEmptyCommandsAreRefused) {
  EXPECT_EQ(state_.Apply(ApplyContext{1, kT0}, 1, "\xff\xff\xff").code(), StatusCode::kInvalid);
  EXPECT_EQ(state_.Apply(ApplyContext{2, kT0}, 1, "").code(), StatusCode::kInvalid);
  EXPECT_EQ(state_.name(), "timers");
  EXPECT_EQ(state_.size(), 0u);
}

// --- invalid specs ---

TEST_F(TimerStateTest, InvalidSpecsAreRefusedAndCreateNothing) {
  Heard heard;
  Listen(state_, heard);
  struct Case {
    const char* what;
    std::function<void(wire::TimerSpec&)> change;
    StatusCode code = StatusCode::kInvalid;
  };
  auto header = [](const std::string& name, const std::string& value) {
    return [=](wire::TimerSpec& spec) {
      wire::TimerHeader* added = spec.add_headers();
      added->set_name(name);
      added->set_value(value);
    };
  };
  auto url = [](const std::string& text) {
    return [=](wire::TimerSpec& spec) { spec.set_url(text); };
  };
  const std::vector<Case> cases = {
      {"no url", url("")},
      {"ftp", url("ftp://example.com/x")},
      {"javascript", url("javascript:alert(1)")},
      {"file", url("file:///etc/passwd")},
      {"relative", url("/hook")},
      {"no scheme", url("example.com/hook")},
      {"scheme only", url("http://")},
      {"no host", url("https:///path")},
      {"port, no host", url("http://:8080/x")},
      {"query, no host", url("http://?x=1")},
      {"fragment, no host", url("http://#x")},
      {"space", url("https://example.com/a b")},
      {"leading space", url(" https://example.com/")},
      {"newline", url("https://example.com/\r\nX-Evil: 1")},
      {"tab", url("https://example.com/\t")},
      {"non-ascii", url("https://exämple.com/")},
      {"too long", url("https://example.com/" + std::string(2048, 'a'))},
      {"method", [](wire::TimerSpec& spec) { spec.set_method("FETCH"); }},
      {"no method", [](wire::TimerSpec& spec) { spec.set_method(""); }},
      {"Idempotency-Key", header("Idempotency-Key", "x")},
      {"idempotency-key", header("idempotency-key", "x")},
      {"Synod-Timer-Id", header("Synod-Timer-Id", "x")},
      {"synod-attempt", header("synod-attempt", "1")},
      {"SYNOD-TERM", header("SYNOD-TERM", "1")},
      {"webhook-signature", header("Webhook-Signature", "v1,x")},
      {"Host", header("Host", "evil.example")},
      {"Content-Length", header("content-length", "0")},
      {"Transfer-Encoding", header("Transfer-Encoding", "chunked")},
      {"Connection", header("Connection", "close")},
      {"empty name", header("", "x")},
      {"space in name", header("X Bad", "x")},
      {"colon in name", header("X-Bad:", "x")},
      {"newline in name", header("X-Bad\r\nX-Evil", "x")},
      {"CRLF injection", header("X-Ok", "a\r\nX-Evil: 1")},
      {"LF injection", header("X-Ok", "a\nX-Evil: 1")},
      {"CR", header("X-Ok", "a\rb")},
      {"NUL", header("X-Ok", std::string("a\0b", 3))},
      {"long name", header(std::string(129, 'x'), "x")},
      {"long value", header("X-Ok", std::string(4097, 'x'))},
      {"33 headers",
       [](wire::TimerSpec& spec) {
         for (int i = 0; i < 33; ++i) {
           wire::TimerHeader* added = spec.add_headers();
           added->set_name("X-H" + std::to_string(i));
           added->set_value("v");
         }
       }},
      {"body over 64 KiB",
       [](wire::TimerSpec& spec) {
         spec.set_body(std::string(64 * 1024 + 1, 'x'));
         spec.set_has_body(true);
       },
       StatusCode::kTooLarge},
      {"timeout 0", [](wire::TimerSpec& spec) { spec.set_timeout_ms(0); }},
      {"timeout over 300 s", [](wire::TimerSpec& spec) { spec.set_timeout_ms(300'001); }},
      {"max_attempts 0", [](wire::TimerSpec& spec) { spec.set_max_attempts(0); }},
      {"max_attempts 101", [](wire::TimerSpec& spec) { spec.set_max_attempts(101); }},
      {"initial backoff 0", [](wire::TimerSpec& spec) { spec.set_initial_backoff_nanos(0); }},
      {"max below initial", [](wire::TimerSpec& spec) { spec.set_max_backoff_nanos(kSecond / 2); }},
      {"max backoff over a day",
       [](wire::TimerSpec& spec) { spec.set_max_backoff_nanos(24 * kHour + 1); }},
      {"multiplier below 1", [](wire::TimerSpec& spec) { spec.set_backoff_multiplier(0.5); }},
      {"multiplier over 10", [](wire::TimerSpec& spec) { spec.set_backoff_multiplier(10.5); }},
      {"negative late_after", [](wire::TimerSpec& spec) { spec.set_late_after_nanos(-1); }},
      {"late_after over 10 years",
       [](wire::TimerSpec& spec) { spec.set_late_after_nanos(TimerState::kMaxHorizonNanos + 1); }},
      {"unknown late policy",
       [](wire::TimerSpec& spec) { spec.set_late_policy(static_cast<wire::LatePolicy>(7)); }},
      {"every under 1 s", [](wire::TimerSpec& spec) { spec.set_every_nanos(kSecond - 1); }},
      {"negative every", [](wire::TimerSpec& spec) { spec.set_every_nanos(-kSecond); }},
      {"every over 10 years",
       [](wire::TimerSpec& spec) { spec.set_every_nanos(TimerState::kMaxHorizonNanos + 1); }},
      {"every and cron",
       [](wire::TimerSpec& spec) {
         spec.set_every_nanos(kMinute);
         spec.set_cron("* * * * *");
       }},
      {"bad cron", [](wire::TimerSpec& spec) { spec.set_cron("61 * * * *"); }},
      {"long idempotency key",
       [](wire::TimerSpec& spec) { spec.set_idempotency_key(std::string(129, 'k')); }},
  };
  uint64_t n = 0;
  for (const Case& bad : cases) {
    wire::TimerSpec spec = Spec();
    bad.change(spec);
    Result<std::string> result = Create(In(Id(++n), kMinute, spec));
    EXPECT_EQ(result.code(), bad.code) << bad.what;
    EXPECT_FALSE(result.ok() || result.error().empty()) << bad.what;
    EXPECT_EQ(TimerState::CheckSpec(spec).code(), bad.code) << bad.what;
  }
  EXPECT_EQ(state_.size(), 0u);
  EXPECT_TRUE(state_.pending().empty());
  EXPECT_EQ(state_.count(wire::TIMER_WAITING), 0u);
  EXPECT_TRUE(heard.changes.empty());
}

TEST_F(TimerStateTest, SpecsAtTheLimitsAreAccepted) {
  std::vector<std::function<void(wire::TimerSpec&)>> changes = {
      [](wire::TimerSpec& spec) { spec.set_url("http://localhost:8080/x?y=1#z"); },
      [](wire::TimerSpec& spec) { spec.set_url("HTTPS://EXAMPLE.COM"); },
      [](wire::TimerSpec& spec) { spec.set_url("http://127.0.0.1"); },
      [](wire::TimerSpec& spec) { spec.set_url("https://e.com/" + std::string(2048 - 14, 'a')); },
      [](wire::TimerSpec& spec) { spec.set_method("GET"); },
      [](wire::TimerSpec& spec) { spec.set_method("PUT"); },
      [](wire::TimerSpec& spec) { spec.set_method("PATCH"); },
      [](wire::TimerSpec& spec) { spec.set_method("DELETE"); },
      [](wire::TimerSpec& spec) {
        for (int i = 0; i < 32; ++i) {
          wire::TimerHeader* added = spec.add_headers();
          added->set_name("X-H" + std::to_string(i));
          added->set_value(std::string(4096, 'v'));
        }
      },
      [](wire::TimerSpec& spec) {
        wire::TimerHeader* added = spec.add_headers();
        added->set_name("Authorization");
        added->set_value("Bearer abc: def\t=");
      },
      [](wire::TimerSpec& spec) {
        spec.set_body(std::string(64 * 1024, 'x'));
        spec.set_has_body(true);
      },
      [](wire::TimerSpec& spec) { spec.set_timeout_ms(1); },
      [](wire::TimerSpec& spec) { spec.set_timeout_ms(300'000); },
      [](wire::TimerSpec& spec) { spec.set_max_attempts(100); },
      [](wire::TimerSpec& spec) { spec.set_idempotency_key(std::string(128, 'k')); },
      [](wire::TimerSpec& spec) { spec.set_late_policy(wire::LATE_FAIL); },
  };
  uint64_t n = 0;
  for (const auto& change : changes) {
    wire::TimerSpec spec = Spec();
    change(spec);
    ++n;
    EXPECT_TRUE(TimerState::CheckSpec(spec).ok())
        << n << ": " << TimerState::CheckSpec(spec).message();
    Result<std::string> result = Create(In(Id(n), kMinute, spec));
    EXPECT_TRUE(result.ok()) << n << ": " << result.error();
  }
  EXPECT_EQ(state_.size(), n);
}

// --- attempts ---

TEST_F(TimerStateTest, A2xxAnswerFinishesTheTimerDone) {
  Created(In(Id(1), kMinute));
  const int64_t due = kT0 + kMinute;
  EXPECT_EQ(TimerStatusName(Get(Id(1)), due + kSecond), "executing");
  Result<std::string> result = Complete(Id(1), 204, due + kSecond);
  ASSERT_TRUE(result.ok()) << result.error();
  const wire::TimerRecord record = Get(Id(1));
  EXPECT_EQ(record.status(), wire::TIMER_DONE);
  EXPECT_EQ(record.finished_nanos(), due + kSecond);
  EXPECT_EQ(record.attempts(), 1u);
  EXPECT_EQ(record.completed(), 1u);
  EXPECT_NE(record.outcome().find("204"), std::string::npos) << record.outcome();
  ASSERT_EQ(record.history_size(), 1);
  EXPECT_EQ(record.history(0).number(), 1u);
  EXPECT_EQ(record.history(0).node(), "node-a");
  EXPECT_EQ(record.history(0).http_status(), 204);
  EXPECT_EQ(TimerStatusName(record, due + kHour), "done");
  EXPECT_TRUE(state_.pending().empty());
  EXPECT_EQ(state_.finished(), (TimerState::Index{{due + kSecond, U(Id(1))}}));
  EXPECT_EQ(state_.count(wire::TIMER_DONE), 1u);
  EXPECT_EQ(state_.count(wire::TIMER_WAITING), 0u);
  EXPECT_TRUE(Consistent(state_));

  // Every 2xx is a success, 1xx and 3xx are not.
  for (int status : {200, 201, 299}) {
    const std::string id = Id(100 + static_cast<uint64_t>(status));
    Created(In(id, 0), due);
    ASSERT_TRUE(Complete(id, status, due + kSecond).ok());
    EXPECT_EQ(Get(id).status(), wire::TIMER_DONE) << status;
  }
  for (int status : {100, 199, 300, 302, 404, 500}) {
    const std::string id = Id(1000 + static_cast<uint64_t>(status));
    Created(In(id, 0), due);
    ASSERT_TRUE(Complete(id, status, due + kSecond).ok());
    EXPECT_EQ(Get(id).status(), wire::TIMER_WAITING) << status;
    EXPECT_EQ(Get(id).attempts(), 1u) << status;
  }
  EXPECT_TRUE(Consistent(state_));
}

TEST_F(TimerStateTest, TheListenerHearsOfEachAttemptOnce) {
  Heard heard;
  Listen(state_, heard);
  Created(In(Id(1), kMinute));
  const int64_t due = kT0 + kMinute;
  ASSERT_TRUE(Complete(Id(1), 503, due + kSecond).ok());
  ASSERT_TRUE(Complete(Id(1), 200, due + kMinute).ok());
  EXPECT_FALSE(Complete(Id(1), 200, due + kMinute).ok());  // already finished: not heard
  using Attempts = std::vector<std::pair<wire::TimerStatus, int32_t>>;
  EXPECT_EQ(heard.attempts, (Attempts{{wire::TIMER_WAITING, 503}, {wire::TIMER_DONE, 200}}));
}

TEST_F(TimerStateTest, FailedAttemptsAreRetriedWithBackoffThenTheTimerFails) {
  int64_t now = kT0 + kMinute;
  Created(In(Id(1), kMinute));
  Heard heard;
  Listen(state_, heard);

  // Attempt 1: 500; the next within [0.8, 1.2) of 1 s.
  ASSERT_TRUE(Complete(Id(1), 500, now).ok());
  wire::TimerRecord record = Get(Id(1));
  EXPECT_EQ(record.status(), wire::TIMER_WAITING);
  EXPECT_EQ(record.attempts(), 1u);
  EXPECT_EQ(record.due_nanos(), kT0 + kMinute);  // the occurrence's due time stays
  EXPECT_GE(record.next_attempt_nanos(), now + 800'000'000 - 1);
  EXPECT_LE(record.next_attempt_nanos(), now + 1'200'000'000);
  EXPECT_NE(record.outcome().find("500"), std::string::npos) << record.outcome();
  // Retrying counts as executing even before the next attempt is due: it cannot be cancelled.
  EXPECT_EQ(TimerStatusName(record, now), "executing");
  EXPECT_EQ(state_.pending(), (TimerState::Index{{record.next_attempt_nanos(), U(Id(1))}}));
  EXPECT_EQ(heard.changes, (decltype(heard.changes){{U(Id(1)), record.next_attempt_nanos()}}));

  // Attempt 2: no answer; the next within [0.8, 1.2) of 2 s.
  now = record.next_attempt_nanos() + 10'000'000;
  ASSERT_TRUE(Complete(Id(1), 0, now).ok());
  record = Get(Id(1));
  EXPECT_EQ(record.attempts(), 2u);
  EXPECT_GE(record.next_attempt_nanos(), now + 1'600'000'000 - 1);
  EXPECT_LE(record.next_attempt_nanos(), now + 2'400'000'000);
  EXPECT_NE(record.outcome().find("connection refused"), std::string::npos) << record.outcome();

  // Attempt 3 of 3: the timer fails.
  now = record.next_attempt_nanos();
  ASSERT_TRUE(Complete(Id(1), 503, now).ok());
  record = Get(Id(1));
  EXPECT_EQ(record.status(), wire::TIMER_FAILED);
  EXPECT_EQ(record.attempts(), 3u);
  EXPECT_EQ(record.completed(), 1u);
  EXPECT_EQ(record.finished_nanos(), now);
  EXPECT_NE(record.outcome().find("3 attempts"), std::string::npos) << record.outcome();
  EXPECT_NE(record.outcome().find("503"), std::string::npos) << record.outcome();
  ASSERT_EQ(record.history_size(), 3);
  EXPECT_EQ(record.history(0).http_status(), 500);
  EXPECT_EQ(record.history(1).error(), "connection refused");
  EXPECT_EQ(record.history(2).http_status(), 503);
  EXPECT_EQ(TimerStatusName(record, now), "failed");
  EXPECT_TRUE(state_.pending().empty());
  EXPECT_EQ(state_.count(wire::TIMER_FAILED), 1u);
  ASSERT_EQ(heard.changes.size(), 3u);
  EXPECT_EQ(heard.changes[2], (std::pair<Uuid, std::optional<int64_t>>{U(Id(1)), std::nullopt}));
  EXPECT_TRUE(Consistent(state_));
}

TEST_F(TimerStateTest, BackoffStaysWithinThePolicyBounds) {
  wire::TimerSpec spec = Spec();
  spec.set_max_attempts(100);
  spec.set_initial_backoff_nanos(kSecond);
  spec.set_max_backoff_nanos(4 * kSecond);
  spec.set_backoff_multiplier(3.0);
  for (uint64_t n = 1; n <= 20; ++n) {
    Created(In(Id(n), 0, spec));
    int64_t now = kT0;
    for (uint32_t failed = 1; failed <= 6; ++failed) {
      now += kSecond;
      ASSERT_TRUE(Complete(Id(n), 500, now).ok());
      const int64_t base =
          std::min<int64_t>(4 * kSecond, kSecond * static_cast<int64_t>(std::pow(3.0, failed - 1)));
      const int64_t wait = Get(Id(n)).next_attempt_nanos() - now;
      EXPECT_GE(wait, base * 8 / 10 - 1) << n << " after " << failed;
      EXPECT_LE(wait, base * 12 / 10) << n << " after " << failed;
      now = Get(Id(n)).next_attempt_nanos();
    }
  }
}

TEST_F(TimerStateTest, RetryAfterIsHonouredUpToAnHour) {
  const int64_t now = kT0 + kSecond;
  Created(In(Id(1), 0));
  ASSERT_TRUE(Complete(Id(1), 429, now, 120 * kSecond).ok());
  EXPECT_EQ(Get(Id(1)).next_attempt_nanos(), now + 120 * kSecond);

  // Longer than an hour: an hour.
  Created(In(Id(2), 0));
  ASSERT_TRUE(Complete(Id(2), 503, now, 5 * kHour).ok());
  EXPECT_EQ(Get(Id(2)).next_attempt_nanos(), now + kHour);

  // Shorter than the backoff: the backoff.
  Created(In(Id(3), 0));
  ASSERT_TRUE(Complete(Id(3), 503, now, 1'000).ok());
  EXPECT_GE(Get(Id(3)).next_attempt_nanos(), now + 800'000'000 - 1);
}

TEST_F(TimerStateTest, AnAttemptIsRecordedOnce) {
  Created(In(Id(1), 0));
  const wire::TimerComplete first = Attempt(Id(1), 500, kT0);
  ASSERT_TRUE(Apply(TimerState::Complete(first), kT0 + kSecond).ok());
  const Observed before = Observe(state_);

  // The same attempt recorded by another node.
  wire::TimerComplete again = first;
  again.mutable_attempt()->set_node("node-b");
  again.mutable_attempt()->set_http_status(200);
  EXPECT_EQ(Apply(TimerState::Complete(again), kT0 + 2 * kSecond).code(), StatusCode::kConflict);
  // An attempt that skips one, and one of another occurrence.
  wire::TimerComplete skipping = Attempt(Id(1), 200, kT0);
  skipping.mutable_attempt()->set_number(3);
  EXPECT_EQ(Apply(TimerState::Complete(skipping), kT0 + 2 * kSecond).code(), StatusCode::kConflict);
  wire::TimerComplete other = Attempt(Id(1), 200, kT0);
  other.mutable_attempt()->set_occurrence(1);
  EXPECT_EQ(Apply(TimerState::Complete(other), kT0 + 2 * kSecond).code(), StatusCode::kConflict);
  EXPECT_EQ(Observe(state_), before);

  // Unknown and malformed ids.
  wire::TimerComplete unknown = Attempt(Id(1), 200, kT0);
  unknown.set_id(Id(2));
  EXPECT_EQ(Apply(TimerState::Complete(unknown), kT0).code(), StatusCode::kNotFound);
  unknown.set_id("nope");
  EXPECT_EQ(Apply(TimerState::Complete(unknown), kT0).code(), StatusCode::kInvalid);
  EXPECT_EQ(Observe(state_), before);
}

// Two nodes firing the same late timer (a restarted owner and its backup) both claim it: the
// log orders the claims, and only the first one's node may send it.
TEST_F(TimerStateTest, OneClaimOfAnAttemptWinsUntilItExpires) {
  Created(In(Id(1), 0));  // due at kT0, timeout 10 s
  auto claim = [&](const std::string& node, int64_t at, uint32_t version) {
    wire::TimerBegin begin;
    begin.set_id(Id(1));
    begin.set_occurrence(0);
    begin.set_number(1);
    begin.set_node(node);
    return Apply(TimerState::Begin(begin, version), at);
  };
  ASSERT_TRUE(claim("node-a", kT0 + 5 * kSecond, TimerState::kClaimVersion).ok());
  wire::TimerRecord record = Get(Id(1));
  EXPECT_EQ(record.begun_attempt(), 1u);
  EXPECT_EQ(record.begun_node(), "node-a");
  EXPECT_EQ(record.begun_nanos(), kT0 + 5 * kSecond);
  EXPECT_EQ(TimerState::ClaimExpiry(record), kT0 + 17 * kSecond);  // + timeout + grace

  // Another node: refused while the claim stands, as is any version 1 Begin.
  Result<std::string> second = claim("node-b", kT0 + 5 * kSecond, TimerState::kClaimVersion);
  EXPECT_EQ(second.code(), StatusCode::kConflict);
  EXPECT_NE(second.error().find("under way on node-a"), std::string::npos) << second.error();
  EXPECT_EQ(claim("node-b", kT0 + 16 * kSecond, TimerState::kClaimVersion).code(),
            StatusCode::kConflict);
  EXPECT_EQ(claim("node-a", kT0 + 20 * kSecond, 1).code(), StatusCode::kConflict);
  EXPECT_EQ(Get(Id(1)).begun_node(), "node-a");

  // The holder claims it again (it restarted and cannot know whether it sent it).
  ASSERT_TRUE(claim("node-a", kT0 + 6 * kSecond, TimerState::kClaimVersion).ok());
  EXPECT_EQ(Get(Id(1)).begun_nanos(), kT0 + 6 * kSecond);
  // Once it expired (node-a crashed), another node takes it over.
  ASSERT_TRUE(claim("node-b", kT0 + 18 * kSecond, TimerState::kClaimVersion).ok());
  EXPECT_EQ(Get(Id(1)).begun_node(), "node-b");

  // Recording the attempt ends the claim; the next attempt is free to claim.
  wire::TimerComplete done = Attempt(Id(1), 500, kT0 + 18 * kSecond);
  ASSERT_TRUE(Apply(TimerState::Complete(done), kT0 + 19 * kSecond).ok());
  record = Get(Id(1));
  EXPECT_EQ(record.begun_attempt(), 0u);
  EXPECT_EQ(record.begun_nanos(), 0);
  EXPECT_EQ(claim("node-a", kT0 + 19 * kSecond, TimerState::kClaimVersion).code(),
            StatusCode::kConflict);  // attempt 1 is recorded
}

// An announcement of version 1 has no time: its claim runs from the attempt's due time.
TEST_F(TimerStateTest, AnAnnouncementStandsAgainstClaimsFromTheDueTime) {
  Created(In(Id(1), 0));
  wire::TimerBegin begin;
  begin.set_id(Id(1));
  begin.set_occurrence(0);
  begin.set_number(1);
  begin.set_node("node-a");
  ASSERT_TRUE(Apply(TimerState::Begin(begin, 1), kT0 + kSecond).ok());
  EXPECT_EQ(Get(Id(1)).begun_nanos(), 0);
  begin.set_node("node-b");
  EXPECT_EQ(Apply(TimerState::Begin(begin, 1), kT0 + 30 * kSecond).code(), StatusCode::kConflict);
  EXPECT_EQ(Apply(TimerState::Begin(begin, TimerState::kClaimVersion), kT0 + 11 * kSecond).code(),
            StatusCode::kConflict);
  EXPECT_TRUE(Apply(TimerState::Begin(begin, TimerState::kClaimVersion), kT0 + 12 * kSecond).ok());
}

TEST_F(TimerStateTest, AFinishedTimerTakesNoMoreAttempts) {
  Created(In(Id(1), 0));
  ASSERT_TRUE(Complete(Id(1), 200, kT0 + kSecond).ok());
  const Observed before = Observe(state_);
  EXPECT_EQ(Complete(Id(1), 200, kT0 + 2 * kSecond).code(), StatusCode::kConflict);
  EXPECT_EQ(Observe(state_), before);

  Created(In(Id(2), kMinute));
  ASSERT_TRUE(Apply(TimerState::Cancel(Id(2)), kT0).ok());
  EXPECT_EQ(Complete(Id(2), 200, kT0 + kMinute).code(), StatusCode::kConflict);
  EXPECT_EQ(Get(Id(2)).status(), wire::TIMER_CANCELLED);
  EXPECT_EQ(Get(Id(2)).history_size(), 0);
}

TEST_F(TimerStateTest, HistoryKeepsTheMostRecentAttempts) {
  wire::TimerSpec spec = Spec();
  spec.set_max_attempts(100);
  Created(In(Id(1), 0, spec));
  int64_t now = kT0;
  for (int i = 1; i <= 25; ++i) {
    now += kMinute;
    ASSERT_TRUE(Complete(Id(1), 500 + i, now).ok());
  }
  const wire::TimerRecord record = Get(Id(1));
  EXPECT_EQ(record.attempts(), 25u);
  ASSERT_EQ(record.history_size(), static_cast<int>(TimerState::kHistory));
  EXPECT_EQ(record.history(0).number(), 6u);  // oldest first
  EXPECT_EQ(record.history(19).number(), 25u);
  EXPECT_EQ(record.history(19).http_status(), 525);
}

// --- late policy ---

TEST_F(TimerStateTest, LateAttemptsAreSkippedOrFailedByPolicy) {
  wire::TimerSpec skip = Spec();
  skip.set_late_policy(wire::LATE_SKIP);
  skip.set_late_after_nanos(kMinute);
  wire::TimerSpec fail = skip;
  fail.set_late_policy(wire::LATE_FAIL);
  Created(In(Id(1), kMinute, skip));
  Created(In(Id(2), kMinute, fail));
  const int64_t late = kT0 + kMinute + 5 * kMinute;

  ASSERT_TRUE(Skip(Id(1), late).ok());
  wire::TimerRecord record = Get(Id(1));
  EXPECT_EQ(record.status(), wire::TIMER_SKIPPED);
  EXPECT_EQ(record.finished_nanos(), late);
  EXPECT_TRUE(record.outcome().starts_with("skipped")) << record.outcome();
  ASSERT_EQ(record.history_size(), 1);
  EXPECT_TRUE(record.history(0).skipped());
  EXPECT_EQ(TimerStatusName(record, late), "skipped");

  ASSERT_TRUE(Skip(Id(2), late).ok());
  record = Get(Id(2));
  EXPECT_EQ(record.status(), wire::TIMER_FAILED);
  EXPECT_TRUE(record.outcome().starts_with("failed")) << record.outcome();
  EXPECT_EQ(TimerStatusName(record, late), "failed");

  EXPECT_EQ(state_.count(wire::TIMER_SKIPPED), 1u);
  EXPECT_EQ(state_.count(wire::TIMER_FAILED), 1u);
  EXPECT_TRUE(Consistent(state_));
}

// --- cancel and reschedule ---

TEST_F(TimerStateTest, CancelWhileWaiting) {
  Created(In(Id(1), kMinute));
  Result<std::string> result = Apply(TimerState::Cancel(Id(1)), kT0 + kSecond);
  ASSERT_TRUE(result.ok()) << result.error();
  EXPECT_EQ(Parse(result.value()).status(), wire::TIMER_CANCELLED);
  const wire::TimerRecord record = Get(Id(1));
  EXPECT_EQ(record.status(), wire::TIMER_CANCELLED);
  EXPECT_EQ(record.finished_nanos(), kT0 + kSecond);
  EXPECT_EQ(TimerStatusName(record, kT0 + kHour), "cancelled");
  EXPECT_TRUE(state_.pending().empty());
  EXPECT_EQ(state_.count(wire::TIMER_CANCELLED), 1u);

  // Twice: the second is refused.
  const Observed before = Observe(state_);
  EXPECT_EQ(Apply(TimerState::Cancel(Id(1)), kT0 + 2 * kSecond).code(), StatusCode::kConflict);
  EXPECT_EQ(Observe(state_), before);
  EXPECT_EQ(Apply(TimerState::Cancel(Id(2)), kT0).code(), StatusCode::kNotFound);
  EXPECT_EQ(Apply(TimerState::Cancel("not-a-uuid"), kT0).code(), StatusCode::kInvalid);
  EXPECT_TRUE(Consistent(state_));
}

TEST_F(TimerStateTest, CancelIsRefusedOnceTheTimerIsExecutingOrFinished) {
  Created(In(Id(1), kMinute));
  // Due: it may be being fired right now.
  EXPECT_EQ(Apply(TimerState::Cancel(Id(1)), kT0 + kMinute).code(), StatusCode::kConflict);
  EXPECT_EQ(Apply(TimerState::Cancel(Id(1)), kT0 + kHour).code(), StatusCode::kConflict);
  EXPECT_EQ(Get(Id(1)).status(), wire::TIMER_WAITING);

  // Retrying, even between attempts.
  Created(In(Id(2), 0));
  ASSERT_TRUE(Complete(Id(2), 500, kT0 + kSecond).ok());
  ASSERT_GT(Get(Id(2)).next_attempt_nanos(), kT0 + 2 * kSecond - 300'000'000);
  EXPECT_EQ(Apply(TimerState::Cancel(Id(2)), kT0 + kSecond + 1).code(), StatusCode::kConflict);
  EXPECT_EQ(Get(Id(2)).status(), wire::TIMER_WAITING);

  // Done.
  Created(In(Id(3), 0));
  ASSERT_TRUE(Complete(Id(3), 200, kT0 + kSecond).ok());
  EXPECT_EQ(Apply(TimerState::Cancel(Id(3)), kT0 + 2 * kSecond).code(), StatusCode::kConflict);
  EXPECT_EQ(Get(Id(3)).status(), wire::TIMER_DONE);
  EXPECT_TRUE(Consistent(state_));
}

TEST_F(TimerStateTest, RescheduleMovesAWaitingTimer) {
  Created(In(Id(1), kMinute));
  Heard heard;
  Listen(state_, heard);

  Result<std::string> result = Apply(TimerState::Reschedule([] {
                                       wire::TimerReschedule reschedule;
                                       reschedule.set_id(Id(1));
                                       reschedule.set_delay_nanos(kHour);
                                       return reschedule;
                                     }()),
                                     kT0 + kSecond);
  ASSERT_TRUE(result.ok()) << result.error();
  EXPECT_EQ(Parse(result.value()).due_nanos(), kT0 + kSecond + kHour);
  EXPECT_EQ(Get(Id(1)).due_nanos(), kT0 + kSecond + kHour);
  EXPECT_EQ(Get(Id(1)).next_attempt_nanos(), kT0 + kSecond + kHour);
  EXPECT_EQ(state_.pending(), (TimerState::Index{{kT0 + kSecond + kHour, U(Id(1))}}));

  // Earlier, to an absolute time (even one already passed).
  wire::TimerReschedule at;
  at.set_id(Id(1));
  at.set_at_nanos(kT0 - kHour);
  ASSERT_TRUE(Apply(TimerState::Reschedule(at), kT0 + 2 * kSecond).ok());
  EXPECT_EQ(state_.pending(), (TimerState::Index{{kT0 - kHour, U(Id(1))}}));
  EXPECT_EQ(heard.times(), (Times{kT0 + kSecond + kHour, kT0 - kHour}));
  EXPECT_EQ(state_.size(), 1u);
  EXPECT_TRUE(Consistent(state_));
}

TEST_F(TimerStateTest, RescheduleIsRefusedWhenNotWaitingOrOutOfRange) {
  Created(In(Id(1), kMinute));
  auto reschedule = [](const std::string& id, std::optional<int64_t> delay,
                       std::optional<int64_t> at = std::nullopt) {
    wire::TimerReschedule command;
    command.set_id(id);
    if (delay) command.set_delay_nanos(*delay);
    if (at) command.set_at_nanos(*at);
    return TimerState::Reschedule(command);
  };
  const Observed before = Observe(state_);
  EXPECT_EQ(Apply(reschedule(Id(1), std::nullopt), kT0).code(), StatusCode::kInvalid);
  EXPECT_EQ(Apply(reschedule(Id(1), -1), kT0).code(), StatusCode::kInvalid);
  EXPECT_EQ(Apply(reschedule(Id(1), TimerState::kMaxHorizonNanos + 1), kT0).code(),
            StatusCode::kInvalid);
  EXPECT_EQ(Apply(reschedule(Id(1), std::nullopt, -1), kT0).code(), StatusCode::kInvalid);
  EXPECT_EQ(
      Apply(reschedule(Id(1), std::nullopt, kT0 + TimerState::kMaxHorizonNanos + 1), kT0).code(),
      StatusCode::kInvalid);
  EXPECT_EQ(Apply(reschedule(Id(2), kSecond), kT0).code(), StatusCode::kNotFound);
  EXPECT_EQ(Apply(reschedule("x", kSecond), kT0).code(), StatusCode::kInvalid);
  // Due already.
  EXPECT_EQ(Apply(reschedule(Id(1), kHour), kT0 + kMinute).code(), StatusCode::kConflict);
  EXPECT_EQ(Observe(state_), before);

  // Retrying, and finished.
  ASSERT_TRUE(Complete(Id(1), 500, kT0 + kMinute).ok());
  EXPECT_EQ(Apply(reschedule(Id(1), kHour), kT0 + kMinute + 1).code(), StatusCode::kConflict);
  Created(In(Id(3), kMinute));
  ASSERT_TRUE(Apply(TimerState::Cancel(Id(3)), kT0).ok());
  EXPECT_EQ(Apply(reschedule(Id(3), kHour), kT0).code(), StatusCode::kConflict);
  EXPECT_EQ(Get(Id(3)).status(), wire::TIMER_CANCELLED);
  EXPECT_TRUE(Consistent(state_));
}

// --- recurring ---

TEST_F(TimerStateTest, EveryMovesToTheNextOccurrenceSkippingMissedOnes) {
  wire::TimerSpec spec = Spec();
  spec.set_every_nanos(kMinute);
  // Without a start: the first occurrence is one period after the entry.
  wire::TimerRecord record = Created(Recurring(Id(1), spec));
  EXPECT_EQ(record.due_nanos(), kT0 + kMinute);
  Heard heard;
  Listen(state_, heard);

  ASSERT_TRUE(Complete(Id(1), 200, kT0 + kMinute + kSecond).ok());
  record = Get(Id(1));
  EXPECT_EQ(record.status(), wire::TIMER_WAITING);
  EXPECT_EQ(record.occurrence(), 1u);
  EXPECT_EQ(record.attempts(), 0u);
  EXPECT_EQ(record.completed(), 1u);
  EXPECT_EQ(record.due_nanos(), kT0 + 2 * kMinute);
  EXPECT_EQ(record.next_attempt_nanos(), kT0 + 2 * kMinute);
  EXPECT_EQ(TimerStatusName(record, kT0 + kMinute + 2 * kSecond), "waiting");
  EXPECT_EQ(heard.times(), (Times{kT0 + 2 * kMinute}));

  // Recorded 5.5 periods late: the missed occurrences are skipped, the next is in the future.
  ASSERT_TRUE(Complete(Id(1), 200, kT0 + 7 * kMinute + 30 * kSecond).ok());
  record = Get(Id(1));
  EXPECT_EQ(record.occurrence(), 2u);
  EXPECT_EQ(record.completed(), 2u);
  EXPECT_EQ(record.due_nanos(), kT0 + 8 * kMinute);
  // Exactly on a period boundary: that one is not in the future, the next is.
  ASSERT_TRUE(Complete(Id(1), 200, kT0 + 9 * kMinute).ok());
  EXPECT_EQ(Get(Id(1)).due_nanos(), kT0 + 10 * kMinute);

  // An occurrence whose attempts all fail moves on too; the timer keeps going.
  int64_t now = kT0 + 10 * kMinute;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Complete(Id(1), 500, now).ok());
    if (i < 2) now = Get(Id(1)).next_attempt_nanos();
  }
  record = Get(Id(1));
  EXPECT_EQ(record.status(), wire::TIMER_WAITING);
  EXPECT_EQ(record.occurrence(), 4u);
  EXPECT_EQ(record.completed(), 4u);
  EXPECT_EQ(record.attempts(), 0u);
  EXPECT_EQ(record.due_nanos(), kT0 + 11 * kMinute);
  EXPECT_EQ(record.history_size(), 6);
  EXPECT_EQ(record.history(5).occurrence(), 3u);
  EXPECT_EQ(record.history(5).number(), 3u);
  EXPECT_EQ(state_.count(wire::TIMER_WAITING), 1u);
  EXPECT_TRUE(state_.finished().empty());

  // A stale record of the previous occurrence is refused.
  wire::TimerComplete stale = Attempt(Id(1), 200, now);
  stale.mutable_attempt()->set_occurrence(3);
  stale.mutable_attempt()->set_number(1);
  EXPECT_EQ(Apply(TimerState::Complete(stale), now).code(), StatusCode::kConflict);

  // Between occurrences it is waiting, so it can be cancelled.
  ASSERT_TRUE(Apply(TimerState::Cancel(Id(1)), now + kSecond).ok());
  EXPECT_EQ(Get(Id(1)).status(), wire::TIMER_CANCELLED);
  EXPECT_TRUE(Consistent(state_));
}

TEST_F(TimerStateTest, EveryWithADelayStartsThen) {
  wire::TimerSpec spec = Spec();
  spec.set_every_nanos(kHour);
  EXPECT_EQ(Created(In(Id(1), 10 * kSecond, spec)).due_nanos(), kT0 + 10 * kSecond);
  ASSERT_TRUE(Complete(Id(1), 200, kT0 + 11 * kSecond).ok());
  EXPECT_EQ(Get(Id(1)).due_nanos(), kT0 + 10 * kSecond + kHour);
}

TEST_F(TimerStateTest, CronMovesToTheNextMatchingMinute) {
  wire::TimerSpec spec = Spec();
  spec.set_cron("0 * * * *");  // hourly; kT0 is 14:05
  wire::TimerRecord record = Created(Recurring(Id(1), spec));
  EXPECT_EQ(FormatRfc3339(record.due_nanos()), "2026-11-29T15:00:00Z");
  ASSERT_TRUE(Complete(Id(1), 200, record.due_nanos() + kSecond).ok());
  record = Get(Id(1));
  EXPECT_EQ(FormatRfc3339(record.due_nanos()), "2026-11-29T16:00:00Z");
  EXPECT_EQ(record.occurrence(), 1u);
  // Late: 18:30 -> 19:00.
  ASSERT_TRUE(Complete(Id(1), 200, record.due_nanos() + 2 * kHour + 30 * kMinute).ok());
  EXPECT_EQ(FormatRfc3339(Get(Id(1)).due_nanos()), "2026-11-29T19:00:00Z");
  EXPECT_EQ(Get(Id(1)).completed(), 2u);

  // A cron expression that never matches cannot be created.
  spec.set_cron("0 0 30 2 *");
  EXPECT_EQ(Create(Recurring(Id(2), spec)).code(), StatusCode::kInvalid);
  EXPECT_EQ(state_.size(), 1u);
}

// --- idempotency ---

TEST_F(TimerStateTest, AnIdempotencyKeyReturnsTheFirstTimerForADay) {
  wire::TimerSpec spec = Spec();
  spec.set_idempotency_key("order-42");
  const wire::TimerRecord first = Created(In(Id(1), 10 * kHour, spec));

  // Another create with the key within 24 h: the first timer, nothing new.
  Result<std::string> again = Create(In(Id(2), kMinute, spec), kT0 + kHour);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(Parse(again.value()).id(), Id(1));
  EXPECT_FALSE(state_.Get(U(Id(2))).has_value());
  // The same request sent again (same id): the first timer, not a conflict.
  again = Create(In(Id(1), kMinute, spec), kT0 + 2 * kHour);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again.value(), first.SerializeAsString());
  // Even once the first has finished.
  ASSERT_TRUE(Apply(TimerState::Cancel(Id(1)), kT0 + 3 * kHour).ok());
  again = Create(In(Id(2), kMinute, spec), kT0 + 4 * kHour);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Parse(again.value()).id(), Id(1));
  again = Create(In(Id(2), kMinute, spec), kT0 + TimerState::kIdempotencyWindowNanos - 1);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Parse(again.value()).id(), Id(1));
  EXPECT_EQ(state_.size(), 1u);

  // 24 h after the first: a new timer, which the key then names.
  const int64_t later = kT0 + TimerState::kIdempotencyWindowNanos;
  again = Create(In(Id(2), kMinute, spec), later);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Parse(again.value()).id(), Id(2));
  EXPECT_EQ(state_.size(), 2u);
  again = Create(In(Id(3), kMinute, spec), later + kHour);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Parse(again.value()).id(), Id(2));

  // Other keys and no key are independent.
  wire::TimerSpec other = spec;
  other.set_idempotency_key("order-43");
  EXPECT_EQ(Parse(Create(In(Id(4), kMinute, other), later).value()).id(), Id(4));
  EXPECT_EQ(Parse(Create(In(Id(5), kMinute), later).value()).id(), Id(5));
  EXPECT_EQ(state_.size(), 4u);
  EXPECT_TRUE(Consistent(state_));
}

TEST_F(TimerStateTest, AnInvalidSpecIsRefusedEvenWithAKnownIdempotencyKey) {
  wire::TimerSpec spec = Spec();
  spec.set_idempotency_key("k");
  Created(In(Id(1), kMinute, spec));
  spec.set_url("ftp://example.com");
  EXPECT_EQ(Create(In(Id(2), kMinute, spec)).code(), StatusCode::kInvalid);
}

// --- compaction ---

TEST_F(TimerStateTest, CompactRemovesFinishedTimersBeforeTheCutoff) {
  wire::TimerSpec keyed = Spec();
  keyed.set_idempotency_key("k1");
  // Five timers cancelled at T0+1s..T0+5s, one done, one still waiting, one retrying.
  for (uint64_t n = 1; n <= 5; ++n) {
    Created(In(Id(n), kHour, n == 1 ? keyed : Spec()));
    ASSERT_TRUE(Apply(TimerState::Cancel(Id(n)), kT0 + static_cast<int64_t>(n) * kSecond).ok());
  }
  Created(In(Id(6), 0));
  ASSERT_TRUE(Complete(Id(6), 200, kT0 + 10 * kSecond).ok());
  Created(In(Id(7), kHour));
  Created(In(Id(8), 0));
  ASSERT_TRUE(Complete(Id(8), 500, kT0 + kSecond).ok());
  ASSERT_EQ(state_.finished().size(), 6u);

  // Finished strictly before T0+3s: two.
  Result<std::string> removed = Apply(TimerState::Compact(kT0 + 3 * kSecond, 1000), kT0 + kMinute);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed.value(), "2");
  EXPECT_FALSE(state_.Get(U(Id(1))).has_value());
  EXPECT_FALSE(state_.Get(U(Id(2))).has_value());
  EXPECT_TRUE(state_.Get(U(Id(3))).has_value());
  EXPECT_EQ(state_.size(), 6u);
  EXPECT_TRUE(Consistent(state_));

  // The removed timer's idempotency key is free again.
  EXPECT_EQ(Parse(Create(In(Id(9), kHour, keyed), kT0 + kMinute).value()).id(), Id(9));

  // Nothing to do: nothing removed.
  EXPECT_EQ(Apply(TimerState::Compact(kT0, 1000), kT0 + kMinute).value(), "0");

  // At most two finished: the oldest go.
  EXPECT_EQ(Apply(TimerState::Compact(0, 2), kT0 + kMinute).value(), "2");
  EXPECT_FALSE(state_.Get(U(Id(3))).has_value());
  EXPECT_FALSE(state_.Get(U(Id(4))).has_value());
  EXPECT_TRUE(state_.Get(U(Id(5))).has_value());
  EXPECT_TRUE(state_.Get(U(Id(6))).has_value());
  EXPECT_EQ(state_.finished().size(), 2u);

  // Waiting and retrying timers are never removed, however old.
  EXPECT_EQ(Apply(TimerState::Compact(kT0 + 100 * kHour, 0), kT0 + kMinute).value(), "2");
  EXPECT_TRUE(state_.finished().empty());
  EXPECT_EQ(state_.size(), 3u);
  EXPECT_TRUE(state_.Get(U(Id(7))).has_value());
  EXPECT_TRUE(state_.Get(U(Id(8))).has_value());
  EXPECT_TRUE(state_.Get(U(Id(9))).has_value());
  EXPECT_EQ(state_.count(wire::TIMER_WAITING), 3u);
  EXPECT_TRUE(Consistent(state_));
}

// --- consistency under a random workload ---

TEST(TimerStateRandom, IndexesCountsAndReplicasStayInStep) {
  TimerState a, b;
  std::mt19937_64 random(20261129);
  int64_t now = kT0;
  std::vector<std::string> ids;
  uint64_t index = 0;
  int refused = 0;
  for (int step = 0; step < 3000; ++step) {
    now += static_cast<int64_t>(random() % (3 * kSecond));
    Proposal proposal;
    const int kind = static_cast<int>(random() % 10);
    if (kind < 4 || ids.empty()) {
      wire::TimerSpec spec = Spec();
      if (random() % 4 == 0) spec.set_idempotency_key("key-" + std::to_string(random() % 20));
      if (random() % 5 == 0)
        spec.set_every_nanos(static_cast<int64_t>(1 + random() % 30) * kSecond);
      if (random() % 6 == 0) spec.set_late_policy(wire::LATE_SKIP);
      const std::string id = Id(1 + random() % 2000);
      ids.push_back(id);
      wire::TimerCreate create =
          random() % 2
              ? In(id, static_cast<int64_t>(random() % (20 * kSecond)), spec)
              : At(id, now + static_cast<int64_t>(random() % (40 * kSecond)) - 10 * kSecond, spec);
      proposal = TimerState::Create(create);
    } else if (kind < 8) {
      // An attempt of a pending timer (sometimes a stale one).
      const std::string id = ids[random() % ids.size()];
      std::optional<wire::TimerRecord> record = a.Get(U(id));
      wire::TimerComplete complete;
      complete.set_id(id);
      wire::TimerAttempt& attempt = *complete.mutable_attempt();
      attempt.set_occurrence(record ? record->occurrence() : 0);
      attempt.set_number(record ? record->attempts() + 1 - (random() % 8 == 0) : 1);
      attempt.set_started_nanos(now);
      const int outcome = static_cast<int>(random() % 4);
      if (outcome == 0) attempt.set_http_status(200);
      if (outcome == 1) attempt.set_http_status(500);
      if (outcome == 2) attempt.set_error("timeout");
      if (outcome == 3) attempt.set_skipped(true);
      if (random() % 5 == 0)
        complete.set_retry_after_nanos(static_cast<int64_t>(random() % (10 * kSecond)));
      proposal = TimerState::Complete(complete);
    } else if (kind == 8) {
      const std::string id = ids[random() % ids.size()];
      if (random() % 2) {
        proposal = TimerState::Cancel(id);
      } else {
        wire::TimerReschedule reschedule;
        reschedule.set_id(id);
        reschedule.set_delay_nanos(static_cast<int64_t>(random() % (30 * kSecond)));
        proposal = TimerState::Reschedule(reschedule);
      }
    } else {
      proposal = TimerState::Compact(now - static_cast<int64_t>(random() % (60 * kSecond)),
                                     random() % 300);
    }
    ++index;
    Result<std::string> from_a = a.Apply(ApplyContext{index, now}, 1, proposal.body);
    Result<std::string> from_b = b.Apply(ApplyContext{index, now}, 1, proposal.body);
    ASSERT_EQ(from_a.code(), from_b.code());
    if (from_a.ok()) {
      ASSERT_EQ(from_a.value(), from_b.value());
    } else {
      ++refused;
    }
    if (step % 50 == 0 || step == 2999) {
      ASSERT_TRUE(Consistent(a)) << "step " << step;
      ASSERT_EQ(ById(a), ById(b)) << "step " << step;
      ASSERT_EQ(a.pending(), b.pending());
      ASSERT_EQ(a.finished(), b.finished());
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(a.size(), 0u);
  EXPECT_GT(a.count(wire::TIMER_WAITING), 0u);

  // And a replica restored from a snapshot continues in step.
  TimerState c;
  RoundTrip(a, c, 4096);
  EXPECT_EQ(ById(c), ById(a));
  EXPECT_TRUE(Consistent(c));
  for (uint64_t n = 0; n < 200; ++n) {
    now += kSecond;
    wire::TimerSpec spec = Spec();
    spec.set_idempotency_key("key-" + std::to_string(n % 20));
    const Proposal proposal = TimerState::Create(In(Id(5000 + n), kMinute, spec));
    Result<std::string> from_a = a.Apply(ApplyContext{++index, now}, 1, proposal.body);
    Result<std::string> from_c = c.Apply(ApplyContext{index, now}, 1, proposal.body);
    ASSERT_EQ(from_a.ok(), from_c.ok());
    if (from_a.ok()) {
      EXPECT_EQ(from_a.value(), from_c.value()) << n;
    }
  }
  EXPECT_EQ(ById(c), ById(a));
}

// --- snapshots ---

TEST_F(TimerStateTest, ASnapshotRestoresEverything) {
  wire::TimerSpec keyed = Spec();
  keyed.set_idempotency_key("order-1");
  wire::TimerSpec every = Spec();
  every.set_every_nanos(kMinute);
  every.set_body(std::string(10'000, 'b'));
  every.set_has_body(true);
  Created(In(Id(1), kHour, keyed));  // waiting, keyed
  Created(In(Id(2), 0));             // retrying
  ASSERT_TRUE(Complete(Id(2), 500, kT0 + kSecond).ok());
  Created(In(Id(3), 0));  // done
  ASSERT_TRUE(Complete(Id(3), 200, kT0 + kSecond).ok());
  Created(In(Id(4), kHour));  // cancelled
  ASSERT_TRUE(Apply(TimerState::Cancel(Id(4)), kT0 + 2 * kSecond).ok());
  Created(Recurring(Id(5), every));  // recurring, one occurrence done
  ASSERT_TRUE(Complete(Id(5), 200, kT0 + kMinute).ok());
  for (uint64_t n = 100; n < 400; ++n) Created(In(Id(n), static_cast<int64_t>(n) * kSecond));

  TimerState restored;
  Heard heard;
  Listen(restored, heard);
  RoundTrip(state_, restored, 1000);  // many small pieces

  EXPECT_EQ(ById(restored), ById(state_));
  EXPECT_EQ(restored.size(), state_.size());
  EXPECT_EQ(restored.pending(), state_.pending());
  EXPECT_EQ(restored.finished(), state_.finished());
  for (int status = 0; status < 5; ++status) {
    EXPECT_EQ(restored.count(static_cast<wire::TimerStatus>(status)),
              state_.count(static_cast<wire::TimerStatus>(status)));
  }
  EXPECT_TRUE(Consistent(restored));
  // The listener survives the restore and hears of it once, not of each timer.
  EXPECT_EQ(heard.resets, 1);
  EXPECT_TRUE(heard.changes.empty());
  // The idempotency key still names the first timer.
  Result<std::string> again = restored.Apply(ApplyContext{1, kT0 + kHour}, 1,
                                             TimerState::Create(In(Id(9), kMinute, keyed)).body);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Parse(again.value()).id(), Id(1));
  // And the restored state carries on: a retry, then a new timer.
  EXPECT_TRUE(
      restored.Apply(ApplyContext{2, kT0 + kHour}, 1, TimerState::Create(In(Id(10), kMinute)).body)
          .ok());
  EXPECT_EQ(heard.changes, (decltype(heard.changes){{U(Id(10)), kT0 + kHour + kMinute}}));
}

TEST_F(TimerStateTest, ACaptureIsAFrozenView) {
  for (uint64_t n = 1; n <= 50; ++n) Created(In(Id(n), kMinute));
  const std::map<std::string, std::string> before = ById(state_);
  std::unique_ptr<SectionCapture> capture = state_.Capture();
  // Changed after the capture, before it is written.
  ASSERT_TRUE(Apply(TimerState::Cancel(Id(1)), kT0).ok());
  Created(In(Id(51), kMinute));
  ASSERT_TRUE(Apply(TimerState::Compact(kT0 + 1, 0), kT0).ok());
  Sink sink;
  while (!capture->WriteSome(sink, 100)) {
  }
  std::map<std::string, std::string> written;
  for (const std::string& bytes : sink.records) written[Parse(bytes).id()] = bytes;
  EXPECT_EQ(written, before);
}

TEST(TimerStateSnapshot, KeepsTheNewestTimerOfAReusedIdempotencyKey) {
  // A key reused after its 24 h names the second timer; a node restored from a snapshot must
  // agree, whatever order the two records come in.
  for (uint64_t n = 1; n <= 16; ++n) {
    TimerState live;
    wire::TimerSpec spec = Spec();
    spec.set_idempotency_key("order-42");
    const std::string first = Id(n), second = Id(1000 + n), third = Id(2000 + n);
    ASSERT_TRUE(
        live.Apply(ApplyContext{1, kT0}, 1, TimerState::Create(In(first, kHour, spec)).body).ok());
    const int64_t later = kT0 + 25 * kHour;
    Result<std::string> created =
        live.Apply(ApplyContext{2, later}, 1, TimerState::Create(In(second, kHour, spec)).body);
    ASSERT_TRUE(created.ok());
    ASSERT_EQ(Parse(created.value()).id(), second);

    TimerState restored;
    RoundTrip(live, restored);
    for (TimerState* state : {&live, &restored}) {
      Result<std::string> again = state->Apply(ApplyContext{3, later + kHour}, 1,
                                               TimerState::Create(In(third, kHour, spec)).body);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(Parse(again.value()).id(), second)
          << (state == &live ? "live" : "restored") << ", pair " << n;
      EXPECT_EQ(state->size(), 2u);
    }
  }
}

TEST(TimerStateSnapshot, TheLoaderRejectsBadRecordsAndLeavesTheStateAlone) {
  TimerState state;
  ASSERT_TRUE(state.Apply(ApplyContext{1, kT0}, 1, TimerState::Create(In(Id(1), kHour)).body).ok());
  const std::map<std::string, std::string> before = ById(state);

  wire::TimerRecord good;
  good.set_id(Id(2));
  *good.mutable_spec() = Spec();
  good.set_due_nanos(kT0);
  good.set_next_attempt_nanos(kT0);

  {
    std::unique_ptr<SectionLoader> loader = state.NewLoader(1);
    EXPECT_EQ(loader->Add("\xff\xff\xff\xff").code(), StatusCode::kInvalid);
  }
  {
    wire::TimerRecord bad = good;
    bad.set_id("not-a-uuid");
    EXPECT_EQ(state.NewLoader(1)->Add(bad.SerializeAsString()).code(), StatusCode::kInvalid);
    bad.set_id("");
    EXPECT_EQ(state.NewLoader(1)->Add(bad.SerializeAsString()).code(), StatusCode::kInvalid);
  }
  {
    wire::TimerRecord bad = good;
    bad.set_status(static_cast<wire::TimerStatus>(9));
    EXPECT_EQ(state.NewLoader(1)->Add(bad.SerializeAsString()).code(), StatusCode::kInvalid);
  }
  {
    std::unique_ptr<SectionLoader> loader = state.NewLoader(1);
    ASSERT_TRUE(loader->Add(good.SerializeAsString()).ok());
    EXPECT_EQ(loader->Add(good.SerializeAsString()).code(), StatusCode::kInvalid);
    wire::TimerRecord upper = good;
    std::string id = good.id();
    for (char& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    upper.set_id(id);
    EXPECT_EQ(loader->Add(upper.SerializeAsString()).code(), StatusCode::kInvalid);
  }
  // Nothing installed: the state is as it was.
  EXPECT_EQ(ById(state), before);
  EXPECT_TRUE(Consistent(state));

  // An empty section installs an empty state.
  std::unique_ptr<SectionLoader> loader = state.NewLoader(1);
  ASSERT_TRUE(loader->Finish().ok());
  loader->Install();
  EXPECT_EQ(state.size(), 0u);
  EXPECT_TRUE(state.pending().empty());
  EXPECT_EQ(state.count(wire::TIMER_WAITING), 0u);
}

// --- the listener and status names ---

TEST_F(TimerStateTest, TheListenerHearsOfEveryChangeAfterItIsMade) {
  Heard heard;
  int checked = 0;
  // Told after the change: what the state says then agrees with what it is told.
  state_.SetListener(TimerState::Listener{
      .on_change =
          [&](const Uuid& id, std::optional<int64_t> next) {
            heard.changes.emplace_back(id, next);
            std::optional<wire::TimerRecord> record = state_.Get(id);
            if (next) {
              EXPECT_TRUE(record && record->status() == wire::TIMER_WAITING &&
                          record->next_attempt_nanos() == *next)
                  << id.ToString();
              EXPECT_TRUE(state_.pending().contains({*next, id}));
            } else {
              EXPECT_TRUE(!record || record->status() != wire::TIMER_WAITING) << id.ToString();
            }
            ++checked;
          },
      .on_reset = [&] { ++heard.resets; },
      .on_attempt = nullptr,
  });
  Created(In(Id(1), kMinute));
  Created(At(Id(2), kT0 - kHour));
  EXPECT_EQ(heard.changes,
            (decltype(heard.changes){{U(Id(1)), kT0 + kMinute}, {U(Id(2)), kT0 - kHour}}));
  heard.changes.clear();
  // Refused commands, and a create answered by an earlier one, say nothing.
  EXPECT_FALSE(Create(In(Id(1), kMinute)).ok());
  EXPECT_FALSE(Apply(TimerState::Cancel(Id(2)), kT0).ok());
  EXPECT_TRUE(heard.changes.empty());
  // Finishing, retrying and removing do.
  ASSERT_TRUE(Apply(TimerState::Cancel(Id(1)), kT0).ok());
  ASSERT_TRUE(Complete(Id(2), 200, kT0).ok());
  Created(In(Id(3), 0));
  ASSERT_TRUE(Complete(Id(3), 500, kT0 + kSecond).ok());
  const int64_t retry = Get(Id(3)).next_attempt_nanos();
  ASSERT_EQ(Apply(TimerState::Compact(kT0 + kSecond, 100), kT0 + kSecond).value(), "2");
  ASSERT_EQ(heard.changes.size(), 6u);
  EXPECT_EQ(heard.changes[0], (std::pair<Uuid, std::optional<int64_t>>{U(Id(1)), std::nullopt}));
  EXPECT_EQ(heard.changes[1], (std::pair<Uuid, std::optional<int64_t>>{U(Id(2)), std::nullopt}));
  EXPECT_EQ(heard.changes[2], (std::pair<Uuid, std::optional<int64_t>>{U(Id(3)), kT0}));
  EXPECT_EQ(heard.changes[3], (std::pair<Uuid, std::optional<int64_t>>{U(Id(3)), retry}));
  EXPECT_EQ(heard.times()[4], std::nullopt);  // removed
  EXPECT_EQ(heard.times()[5], std::nullopt);
  EXPECT_EQ(std::set<Uuid>({heard.changes[4].first, heard.changes[5].first}),
            (std::set<Uuid>{U(Id(1)), U(Id(2))}));
  EXPECT_EQ(heard.resets, 0);
  EXPECT_EQ(checked, 8);
}

TEST(TimerStatusNameTest, NamesEveryStatus) {
  wire::TimerRecord record;
  record.set_next_attempt_nanos(100);
  EXPECT_EQ(TimerStatusName(record, 99), "waiting");
  EXPECT_EQ(TimerStatusName(record, 100), "executing");
  record.set_attempts(1);
  EXPECT_EQ(TimerStatusName(record, 0), "executing");
  record.set_status(wire::TIMER_DONE);
  EXPECT_EQ(TimerStatusName(record, 0), "done");
  record.set_status(wire::TIMER_FAILED);
  EXPECT_EQ(TimerStatusName(record, 0), "failed");
  record.set_status(wire::TIMER_CANCELLED);
  EXPECT_EQ(TimerStatusName(record, 0), "cancelled");
  record.set_status(wire::TIMER_SKIPPED);
  EXPECT_EQ(TimerStatusName(record, 0), "skipped");
}

}  // namespace
}  // namespace synod
