#include "api/access_policy.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

namespace synod {
namespace {

constexpr size_t kMaxFileBytes = 1024 * 1024;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Fields separated by blanks.
std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && IsBlank(line[at])) ++at;
    size_t end = at;
    while (end < line.size() && !IsBlank(line[end])) ++end;
    if (end > at) fields.push_back(line.substr(at, end - at));
    at = end;
  }
  return fields;
}

// The path's non-empty segments, as the router splits them (HttpRouter::Dispatch), so that what
// is open here is exactly what those routes serve.
std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t at = 0;
  while (at < path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > at) segments.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return segments;
}

// Liveness and the dashboard's static files: open even when reads need a token.
bool IsPublicRead(std::string_view path) {
  const std::vector<std::string_view> segments = Segments(path);
  if (segments.empty()) return true;  // "/": the dashboard page
  if (segments.size() == 1) {
    return segments[0] == "healthz" || segments[0] == "docs" || segments[0] == "openapi.json";
  }
  return segments.size() == 2 && segments[0] == "assets";
}

// The token of "Bearer <token>" (the scheme is case-insensitive, RFC 9110 section 11.1), or
// nullopt if the header is anything else.
std::optional<std::string_view> BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() || !IsBlank(header[kScheme.size()])) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return std::nullopt;
  }
  std::vector<std::string_view> rest = Fields(header.substr(kScheme.size()));
  if (rest.size() != 1) return std::nullopt;
  return rest[0];
}

const char* ScopeName(ApiScope scope) { return scope == ApiScope::kWrite ? "write" : "read"; }

}  // namespace

int AccessDecision::http_status() const {
  switch (verdict) {
    case Verdict::kAllow:
      return 200;
    case Verdict::kUnauthorized:
      return 401;
    case Verdict::kForbidden:
      return 403;
  }
  return 401;
}

std::string AccessDecision::www_authenticate() const {
  std::string value = "Bearer realm=\"synod\"";
  if (reason == "invalid_token" || reason == "malformed_authorization") {
    value += ", error=\"invalid_token\"";
  } else if (reason == "insufficient_scope") {
    value += ", error=\"insufficient_scope\", scope=\"write\"";
  }
  return value;
}

AccessPolicy::Digest AccessPolicy::Sha256(std::string_view token) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
  return digest;
}

Result<AccessPolicy> AccessPolicy::Parse(std::string_view text, const std::string& source) {
  AccessPolicy policy;
  std::vector<size_t> line_of;  // the line of each entry, for duplicates
  std::string first_read;
  std::string first_write;
  size_t number = 0;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++number;
    const std::vector<std::string_view> fields = Fields(line);
    if (fields.empty() || fields[0].front() == '#') continue;
    // Never quote a field: a line written the wrong way round has its token where the scope
    // should be.
    const std::string where = source + " line " + std::to_string(number) + ": ";
    if (fields.size() != 2) {
      return Status::Invalid(where + "expected \"<scope> <token>\" (scope read or write), found " +
                             std::to_string(fields.size()) + " field" +
                             (fields.size() == 1 ? "" : "s"));
    }
    ApiScope scope;
    if (fields[0] == "read") {
      scope = ApiScope::kRead;
    } else if (fields[0] == "write") {
      scope = ApiScope::kWrite;
    } else {
      return Status::Invalid(where + "the scope (first field) must be \"read\" or \"write\"");
    }
    const std::string_view token = fields[1];
    if (token.size() < kMinTokenLength) {
      return Status::Invalid(where + "the token is shorter than " +
                             std::to_string(kMinTokenLength) + " characters");
    }
    if (!std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
      return Status::Invalid(where + "the token holds a character that is not printable ASCII");
    }
    const Digest digest = Sha256(token);
    for (size_t i = 0; i < policy.entries_.size(); ++i) {
      if (policy.entries_[i].digest == digest) {
        return Status::Invalid(where + "the same token as line " + std::to_string(line_of[i]));
      }
    }
    policy.entries_.push_back(Entry{scope, digest});
    line_of.push_back(number);
    std::string& first = scope == ApiScope::kRead ? first_read : first_write;
    if (first.empty()) first = std::string(token);
  }
  if (policy.entries_.empty()) {
    return Status::Invalid(source + ": no token (one \"<read|write> <token>\" per line)");
  }
  // The peer token: the least it takes to read, a read token if there is one.
  policy.peer_token_ = !first_read.empty() ? std::move(first_read) : std::move(first_write);
  return policy;
}

Result<AccessPolicy> AccessPolicy::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error("cannot read " + path + ": " + std::strerror(errno));
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) {
    return Status::Invalid(path + ": larger than " + std::to_string(kMaxFileBytes) + " bytes");
  }
  return Parse(text, path);
}

std::optional<ApiScope> AccessPolicy::Required(std::string_view method,
                                               std::string_view path) const {
  if (method == "GET" || method == "HEAD") {
    if (!reads_require_token_ || IsPublicRead(path)) return std::nullopt;
    return ApiScope::kRead;
  }
  return ApiScope::kWrite;
}

std::optional<ApiScope> AccessPolicy::ScopeOf(std::string_view token) const {
  const Digest digest = Sha256(token);
  // Every entry, whatever matched before: the time taken does not depend on where a match is.
  bool read = false;
  bool write = false;
  for (const Entry& entry : entries_) {
    const bool match = CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    read |= match;
    write |= match && entry.scope == ApiScope::kWrite;
  }
  if (write) return ApiScope::kWrite;
  if (read) return ApiScope::kRead;
  return std::nullopt;
}

AccessDecision AccessPolicy::Decide(std::string_view method, std::string_view path,
                                    const std::string* authorization) const {
  using Verdict = AccessDecision::Verdict;
  const std::optional<ApiScope> required = Required(method, path);
  if (!required) return AccessDecision{};
  const std::string needs = std::string(ScopeName(*required)) + " scope";
  if (authorization == nullptr) {
    return AccessDecision{
        Verdict::kUnauthorized, "missing_token",
        "this request needs a bearer token with " + needs + " (Authorization: Bearer <token>)"};
  }
  const std::optional<std::string_view> token = BearerToken(*authorization);
  if (!token) {
    return AccessDecision{Verdict::kUnauthorized, "malformed_authorization",
                          "the Authorization header must be \"Bearer <token>\""};
  }
  const std::optional<ApiScope> scope = ScopeOf(*token);
  if (!scope) {
    return AccessDecision{Verdict::kUnauthorized, "invalid_token", "the bearer token is not valid"};
  }
  if (*required == ApiScope::kWrite && *scope != ApiScope::kWrite) {
    return AccessDecision{Verdict::kForbidden, "insufficient_scope",
                          "the bearer token may only read; this request needs write scope"};
  }
  return AccessDecision{};
}

std::string NewApiToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  token.reserve(2 * sizeof bytes);
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 0xf]);
  }
  OPENSSL_cleanse(bytes, sizeof bytes);
  return token;
}

bool RefusalLogLimiter::ShouldLog(MonoTime now) {
  if (!started_) {
    started_ = true;
  } else if (now > last_) {
    tokens_ = std::min<double>(burst_, tokens_ + std::chrono::duration<double>(now - last_) /
                                                     std::chrono::duration<double>(interval_));
  }
  last_ = std::max(last_, now);
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return true;
  }
  ++suppressed_;
  return false;
}

uint64_t RefusalLogLimiter::TakeSuppressed() { return std::exchange(suppressed_, 0); }

}  // namespace synod
