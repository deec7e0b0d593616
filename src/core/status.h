// Status and Result<T>: errors as values.
//
// A Status is either ok or carries a code and a human-readable message that says what went
// wrong, written so that it can be shown to a user as is ("port 7400 on 127.0.0.2 is already in
// use"). Callers branch on the code (an HTTP view maps it to a status), never on the message.
// Result<T> holds either a value or a non-ok Status. Both are cheap to move and not thread-safe
// beyond what their members are.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace synod {

enum class StatusCode : uint8_t {
  kOk = 0,
  kError = 1,            // a failure with no more specific code (I/O, the environment, ...)
  kInvalid = 2,          // the request itself is wrong; retrying it cannot help
  kNotFound = 3,         // what the request names does not exist
  kConflict = 4,         // the request contradicts the current state (already done, in use, ...)
  kTooLarge = 5,         // over a size limit
  kNotLeader = 6,        // this node cannot take the request; another one can
  kNoQuorum = 7,         // not committed: no leader, or no majority within the time allowed
  kUnavailable = 8,      // not done now (shutting down, not a member yet); may work later
  kBusy = 9,             // overloaded; retry later
  kUnsupported = 10,     // a version or feature this node does not know
  kUnknownOutcome = 11,  // the request may or may not have taken effect (retry with its id)
};

// "invalid", "not found", ...: for logs and JSON.
const char* StatusCodeName(StatusCode code);
// Whether the request itself is at fault (invalid, not found, conflict, too large): sending it
// again cannot help. The other errors are the cluster's, and may pass.
bool IsRequestError(StatusCode code);

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {
    assert(code != StatusCode::kOk && "an error status needs an error code");
  }
  static Status Ok() { return Status(); }
  static Status Error(std::string message) {
    return Status(StatusCode::kError, std::move(message));
  }
  static Status Invalid(std::string message) {
    return Status(StatusCode::kInvalid, std::move(message));
  }
  static Status NotFound(std::string message) {
    return Status(StatusCode::kNotFound, std::move(message));
  }
  static Status Conflict(std::string message) {
    return Status(StatusCode::kConflict, std::move(message));
  }
  static Status Unavailable(std::string message) {
    return Status(StatusCode::kUnavailable, std::move(message));
  }
  static Status Unsupported(std::string message) {
    return Status(StatusCode::kUnsupported, std::move(message));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Status error) : state_(std::move(error)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(state_).ok() && "a Result built from a Status must carry an error");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T& value() & { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(state_);
  }
  const std::string& error() const { return status().message(); }
  StatusCode code() const { return status().code(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace synod
