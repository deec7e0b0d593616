#include "api/access_gate.h"

#include <spdlog/spdlog.h>

#include <string>

namespace synod {
namespace {

constexpr size_t kMaxLoggedPath = 200;

// A path as the log shows it: printable ASCII, anything else escaped, at most 200 characters.
std::string LoggedPath(std::string_view path) {
  std::string out;
  for (char c : path.substr(0, kMaxLoggedPath)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  if (path.size() > kMaxLoggedPath) out += "...";
  return out;
}

}  // namespace

AccessGate::AccessGate(AccessPolicy policy, const Clock& clock)
    : policy_(std::move(policy)), clock_(clock) {}

std::optional<HttpResponse> AccessGate::Check(const HttpRequest& request) {
  auto header = request.headers.find("authorization");
  const AccessDecision decision = policy_.Decide(
      request.method, request.path, header == request.headers.end() ? nullptr : &header->second);
  if (decision.allowed()) return std::nullopt;
  for (size_t i = 0; i < kReasons.size(); ++i) {
    if (kReasons[i] == decision.reason) ++refusals_[i];
  }
  if (log_limiter_.ShouldLog(clock_.Monotonic())) {
    const uint64_t left_out = log_limiter_.TakeSuppressed();
    spdlog::warn("api: refused {} {} from {}:{}: {} {}{}", LoggedPath(request.method),
                 LoggedPath(request.path), request.client_ip.ToString(), request.client_port,
                 decision.http_status(), decision.reason,
                 left_out == 0
                     ? std::string()
                     : " (" + std::to_string(left_out) + " more refusals since the last logged)");
  }
  HttpResponse response = HttpResponse::Error(decision.http_status(), decision.message);
  response.headers.emplace_back("WWW-Authenticate", decision.www_authenticate());
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

}  // namespace synod
