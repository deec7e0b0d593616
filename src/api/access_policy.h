// API access (--api-token-file): which requests need a bearer token, and whether the one a
// request carries is good enough. The agent asks before routing every request that came from
// the network (see HttpServer::SetGate); nothing here does I/O but AccessPolicy::FromFile.
//
// Contract:
// - A token file holds one token per line, "<scope> <token>", scope "read" or "write" (write
//   implies read); blank lines and lines starting with '#' are skipped. A token is at least
//   kMinTokenLength printable ASCII characters without spaces. Any other line is an error that
//   names the source and the line number; no error message ever contains a token.
// - With a policy, every request that changes state (any method but GET and HEAD) needs a
//   write token; reads need a read or write token only with reads_require_token, and never for
//   the liveness check (/healthz) or the dashboard's static files (/, /assets/*, /docs,
//   /openapi.json), so the page can load and then ask for a token.
// - Tokens are kept as SHA-256 digests and compared in constant time (CRYPTO_memcmp), every
//   entry each time, so the time a check takes says nothing about how close a guess was. The one
//   token a node sends to its peers' APIs (peer_token) is kept in clear.
// Immutable after construction; thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"

namespace synod {

enum class ApiScope { kRead, kWrite };

inline constexpr size_t kMinTokenLength = 16;

struct AccessDecision {
  enum class Verdict { kAllow, kUnauthorized, kForbidden };
  Verdict verdict = Verdict::kAllow;
  // For refusals, the metric label: "missing_token", "malformed_authorization",
  // "invalid_token" (401) or "insufficient_scope" (403).
  std::string_view reason;
  // For refusals, what the client is told (and the log says); never contains a token.
  std::string message;

  bool allowed() const { return verdict == Verdict::kAllow; }
  // 200 when allowed, else 401 or 403.
  int http_status() const;
  // The WWW-Authenticate value for a refusal (RFC 6750): Bearer realm="synod"[, error=...].
  std::string www_authenticate() const;
};

class AccessPolicy {
 public:
  // Parses the text of a token file; `source` (the file's name) starts every error message.
  static Result<AccessPolicy> Parse(std::string_view text, const std::string& source);
  // Reads and parses a token file.
  static Result<AccessPolicy> FromFile(const std::string& path);

  void set_reads_require_token(bool require) { reads_require_token_ = require; }
  bool reads_require_token() const { return reads_require_token_; }

  // The scope (method, path) needs, or nullopt if it is open to anyone.
  std::optional<ApiScope> Required(std::string_view method, std::string_view path) const;
  // The decision for a request; `authorization` is its Authorization header, null if none.
  AccessDecision Decide(std::string_view method, std::string_view path,
                        const std::string* authorization) const;
  // The scope a token grants, or nullopt if the policy does not know it.
  std::optional<ApiScope> ScopeOf(std::string_view token) const;

  // The token this node sends when it reads its peers' APIs (the members of a cluster share the
  // token file): the first read token of the file, else the first write token.
  const std::string& peer_token() const { return peer_token_; }
  size_t token_count() const { return entries_.size(); }

 private:
  using Digest = std::array<unsigned char, 32>;
  struct Entry {
    ApiScope scope;
    Digest digest;
  };

  static Digest Sha256(std::string_view token);

  std::vector<Entry> entries_;
  std::string peer_token_;
  bool reads_require_token_ = false;
};

// A fresh random token (256 bits from OpenSSL's generator, as 64 hex digits) for a token file;
// empty if the generator has no randomness to give.
std::string NewApiToken();

// Bounds how often refusals are logged, so that a flood of bad requests does not flood the log:
// at most `burst` lines, then one more per `interval`. Pure: the time is passed in.
class RefusalLogLimiter {
 public:
  explicit RefusalLogLimiter(unsigned burst = 10,
                             std::chrono::milliseconds interval = std::chrono::seconds(1))
      : burst_(burst), interval_(interval), tokens_(burst) {}

  // Whether to log a refusal seen at `now`. When it says yes, TakeSuppressed() tells how many
  // were left unlogged since the last logged one (and starts counting again).
  bool ShouldLog(MonoTime now);
  uint64_t TakeSuppressed();

 private:
  unsigned burst_;
  std::chrono::milliseconds interval_;
  double tokens_;
  MonoTime last_{};
  bool started_ = false;
  uint64_t suppressed_ = 0;
};

}  // namespace synod
