#include "core/status.h"

namespace synod {

bool IsRequestError(StatusCode code) {
  return code == StatusCode::kInvalid || code == StatusCode::kNotFound ||
         code == StatusCode::kConflict || code == StatusCode::kTooLarge;
}

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kError:
      return "error";
    case StatusCode::kInvalid:
      return "invalid";
    case StatusCode::kNotFound:
      return "not found";
    case StatusCode::kConflict:
      return "conflict";
    case StatusCode::kTooLarge:
      return "too large";
    case StatusCode::kNotLeader:
      return "not leader";
    case StatusCode::kNoQuorum:
      return "no quorum";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kBusy:
      return "busy";
    case StatusCode::kUnsupported:
      return "unsupported";
    case StatusCode::kUnknownOutcome:
      return "unknown outcome";
  }
  return "error";
}

}  // namespace synod
