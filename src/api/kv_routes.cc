#include "api/kv_routes.h"

#include "api/consistent_read.h"

#include <memory>

#include <nlohmann/json.hpp>

namespace synod {
namespace {

constexpr size_t kMaxIdempotencyKeyBytes = 128;

// The request id of a write: the client's Idempotency-Key, or a new one.
Result<std::string> RequestIdOf(const HttpRequest& request, ConsensusService& consensus) {
  auto it = request.headers.find("idempotency-key");
  if (it == request.headers.end()) return consensus.NewRequestId();
  if (it->second.empty() || it->second.size() > kMaxIdempotencyKeyBytes) {
    return Status::Invalid("Idempotency-Key must be 1-128 bytes");
  }
  // Client keys live in their own space, apart from the ids nodes generate.
  return "client:" + it->second;
}

HttpResponse WithRequestId(HttpResponse response, const std::string& request_id) {
  response.headers.emplace_back("Idempotency-Key", request_id);
  return response;
}

void Write(ConsensusService& consensus, const HttpRequest& request, Proposal proposal,
           HttpResponder respond) {
  Result<std::string> request_id = RequestIdOf(request, consensus);
  if (!request_id.ok()) return respond(HttpResponse::FromStatus(request_id.status()));
  proposal.request_id = request_id.value();
  const std::string shown =
      request_id.value().starts_with("client:") ? request_id.value().substr(7) : request_id.value();
  consensus.Propose(std::move(proposal), [key = request.path_params.at("key"), shown,
                                          respond](Result<Committed> result) {
    if (!result.ok())
      return respond(WithRequestId(HttpResponse::FromStatus(result.status()), shown));
    respond(WithRequestId(HttpResponse::Json(200, {{"key", key}, {"index", result.value().index}}),
                          shown));
  });
}

}  // namespace

void AddKvRoutes(HttpRouter& router, ConsensusService& consensus, const KvState& kv) {
  router.Handle(
      "GET", "/v1/kv/{key}",
      ConsistentRead(consensus, [&kv](const HttpRequest& request, HttpResponder respond) {
        const std::string& key = request.path_params.at("key");
        auto value = kv.Get(key);
        if (!value) {
          return respond(HttpResponse::FromStatus(Status::NotFound("no such key: " + key)));
        }
        respond(HttpResponse::Json(200, {{"key", key}, {"value", *value}}));
      }));
  router.Handle("PUT", "/v1/kv/{key}",
                [&consensus](const HttpRequest& request, HttpResponder respond) {
                  const std::string& key = request.path_params.at("key");
                  if (Status bad = KvState::Check(key, &request.body); !bad.ok()) {
                    return respond(HttpResponse::FromStatus(bad));
                  }
                  Write(consensus, request, KvState::Put(key, request.body), std::move(respond));
                });
  router.Handle("DELETE", "/v1/kv/{key}",
                [&consensus](const HttpRequest& request, HttpResponder respond) {
                  const std::string& key = request.path_params.at("key");
                  if (Status bad = KvState::Check(key, nullptr); !bad.ok()) {
                    return respond(HttpResponse::FromStatus(bad));
                  }
                  Write(consensus, request, KvState::Delete(key), std::move(respond));
                });
  router.Handle("POST", "/v1/kv", [&consensus](const HttpRequest& request, HttpResponder respond) {
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("entries") ||
        !body["entries"].is_object()) {
      return respond(HttpResponse::FromStatus(
          Status::Invalid(R"(expected a JSON object {"entries": {"key": "value", ...}})")));
    }
    const auto& entries = body["entries"];
    if (entries.empty() || entries.size() > kMaxBatchKeys) {
      return respond(HttpResponse::FromStatus(
          Status::Invalid("entries must hold 1-" + std::to_string(kMaxBatchKeys) + " keys")));
    }
    std::vector<Proposal> proposals;
    proposals.reserve(entries.size());
    for (const auto& [key, value] : entries.items()) {
      if (!value.is_string()) {
        return respond(
            HttpResponse::FromStatus(Status::Invalid("the value of " + key + " is not a string")));
      }
      const std::string text = value.get<std::string>();
      if (Status bad = KvState::Check(key, &text); !bad.ok()) {
        return respond(HttpResponse::FromStatus(Status(bad.code(), key + ": " + bad.message())));
      }
      proposals.push_back(KvState::Put(key, text));
    }
    // Each key lands once; the answer waits for all of them.
    struct Progress {
      size_t total = 0;
      size_t left = 0;
      uint64_t index = 0;
      Status failed;
      HttpResponder respond;
    };
    auto progress = std::make_shared<Progress>();
    progress->total = progress->left = proposals.size();
    progress->respond = std::move(respond);
    for (Proposal& proposal : proposals) {
      consensus.Propose(std::move(proposal), [progress](Result<Committed> result) {
        if (result.ok()) {
          progress->index = std::max(progress->index, result.value().index);
        } else if (progress->failed.ok()) {
          progress->failed = result.status();
        }
        if (--progress->left > 0) return;
        if (!progress->failed.ok())
          return progress->respond(HttpResponse::FromStatus(progress->failed));
        progress->respond(
            HttpResponse::Json(200, {{"written", progress->total}, {"index", progress->index}}));
      });
    }
  });
}

}  // namespace synod
