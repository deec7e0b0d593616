// AccessGate: the API's token check (AccessPolicy) as the HTTP server's gate (HttpServer::SetGate).
//
// Why the server's gate and not the router or each route: the gate sees every request that came
// from the network, whatever its path (unknown paths and wrong methods included, so they are
// refused alike and reveal nothing), with the client's address to log, and nothing else. The
// node's own internal dispatches (the overview builds its answer from the node's endpoints
// through HttpRouter::Dispatch) never pass it, so they keep working when reads need a token.
//
// A refusal is answered 401 or 403 with {"error": ...} and WWW-Authenticate, counted by reason
// (for /metrics), and logged with the method, path, client address and reason, never the token;
// at most a burst of lines, then one a second (RefusalLogLimiter), saying how many were left
// out. Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "api/access_policy.h"
#include "core/clock.h"
#include "net/http_server.h"

namespace synod {

class AccessGate {
 public:
  // The metric labels of refusals, in the order refusals() counts them.
  static constexpr std::array<std::string_view, 4> kReasons = {
      "missing_token", "malformed_authorization", "invalid_token", "insufficient_scope"};

  // `clock` must outlive this.
  AccessGate(AccessPolicy policy, const Clock& clock);

  // Null to let the request through; else the refusal to send instead.
  std::optional<HttpResponse> Check(const HttpRequest& request);
  // As an HttpGate; this must outlive the server.
  HttpGate AsGate() {
    return [this](const HttpRequest& request) { return Check(request); };
  }

  const AccessPolicy& policy() const { return policy_; }
  // New tokens (a reloaded file), for every request from now on.
  void Replace(AccessPolicy policy) { policy_ = std::move(policy); }
  // Refusals so far, by reason (kReasons order).
  const std::array<uint64_t, kReasons.size()>& refusals() const { return refusals_; }

 private:
  AccessPolicy policy_;
  const Clock& clock_;
  RefusalLogLimiter log_limiter_;
  std::array<uint64_t, kReasons.size()> refusals_{};
};

}  // namespace synod
