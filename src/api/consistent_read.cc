#include "api/consistent_read.h"

#include <memory>
#include <string>
#include <utility>

namespace synod {
namespace {

HttpResponder WithAppliedIndex(ConsensusService& consensus, HttpResponder respond, bool stale) {
  return [&consensus, respond = std::move(respond), stale](HttpResponse response) {
    response.headers.emplace_back("X-Synod-Applied-Index",
                                  std::to_string(consensus.applied_index()));
    if (stale) {
      if (auto since = consensus.SinceLeaderKnown()) {
        response.headers.emplace_back(
            "X-Synod-Leader-Contact-Ms",
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(*since).count()));
      }
    }
    respond(std::move(response));
  };
}

}  // namespace

HttpHandler ConsistentRead(ConsensusService& consensus, HttpHandler read) {
  auto shared = std::make_shared<HttpHandler>(std::move(read));
  return [&consensus, shared](const HttpRequest& request, HttpResponder respond) {
    const bool stale = request.query.contains("stale");
    HttpResponder answer = WithAppliedIndex(consensus, std::move(respond), stale);
    if (stale) return (*shared)(request, std::move(answer));
    // The request is copied: the confirmation comes after the server's turn has moved on.
    consensus.ConfirmRead([shared, request, answer = std::move(answer)](Status confirmed) mutable {
      if (!confirmed.ok()) return answer(HttpResponse::FromStatus(confirmed));
      (*shared)(request, std::move(answer));
    });
  };
}

}  // namespace synod
