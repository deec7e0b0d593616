#include "api/overview.h"

#include <memory>

#include "net/gzip.h"

namespace synod {
namespace {

constexpr auto kKeepAnswer = std::chrono::milliseconds(500);
constexpr auto kRefreshEvery = std::chrono::seconds(1);
constexpr auto kFetchTimeout = std::chrono::milliseconds(1500);

const std::map<std::string, std::string> kStale = {{"stale", ""}};

// A neighbour list with what the delay heatmap needs: whom (node id, name, address) and the
// round trip; the rest of /v1/neighbors is not worth carrying for every member every second.
nlohmann::json HeatmapNeighbors(nlohmann::json neighbors) {
  if (!neighbors.is_array()) return neighbors;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& neighbor : neighbors) {
    nlohmann::json kept = nlohmann::json::object();
    for (const char* key : {"node_id", "name", "ip", "rtt_ms", "sdss_delay_ms", "synod"}) {
      if (auto it = neighbor.find(key); it != neighbor.end()) kept[key] = *it;
    }
    out.push_back(std::move(kept));
  }
  return out;
}

}  // namespace

Overview::Overview(EventLoop& loop, const Clock& clock, const HttpRouter& router,
                   const ConsensusService& consensus, std::string self_id)
    : clock_(clock),
      router_(router),
      consensus_(consensus),
      self_id_(std::move(self_id)),
      http_(std::make_unique<AsyncHttpClient>(loop)) {}

void Overview::AddRoutes(HttpRouter& router) {
  router.Handle("GET", "/v1/overview", [this](const HttpRequest& request, HttpResponder respond) {
    auto scope = request.query.find("scope");
    if (scope != request.query.end() && scope->second != "cluster" && scope->second != "local") {
      return respond(HttpResponse::Error(
          400, "scope must be \"cluster\" or \"local\", not \"" + scope->second + "\""));
    }
    Serve(scope == request.query.end() || scope->second == "cluster", AcceptsGzip(request),
          std::move(respond));
  });
}

void Overview::Serve(bool cluster, bool gzip, HttpResponder respond) {
  Cached& cached = cluster ? cluster_ : local_;
  if (!cached.building && !cached.body.empty() && clock_.Monotonic() - cached.built < kKeepAnswer) {
    Answer(cached, gzip, respond);
    return;
  }
  cached.waiting.push_back(Waiting{std::move(respond), gzip});
  if (!cached.building) Build(cluster);
}

void Overview::Answer(const Cached& cached, bool gzip, const HttpResponder& respond) {
  HttpResponse response;
  response.headers.emplace_back("Vary", "Accept-Encoding");
  if (gzip) {
    response.body = cached.gzip_body;
    response.headers.emplace_back("Content-Encoding", "gzip");
  } else {
    response.body = cached.body;
  }
  respond(std::move(response));
}

void Overview::Build(bool cluster) {
  Cached& cached = cluster ? cluster_ : local_;
  cached.building = true;
  std::vector<Part> parts = {
      {"node", "/v1/node", {}},
      {"health", "/healthz", {}},
      {"neighbors", "/v1/neighbors", {}},
      {"sync", "/v1/sync", {}},
  };
  if (!cluster) parts.push_back({"raft", "/v1/cluster", {}});
  if (cluster) {
    parts.insert(
        parts.end(),
        {
            {"cluster", "/v1/cluster", {}},
            {"clock", "/v1/clock", {}},
            {"clock_members", "/v1/clock/members", {}},
            {"ranks", "/v1/ranks", kStale},
            {"commands", "/v1/commands/recent", {{"stale", ""}, {"limit", "20"}}},
            {"timer_stats", "/v1/timers/stats", kStale},
            {"timers", "/v1/timers", {{"stale", ""}, {"status", "waiting"}, {"limit", "20"}}},
        });
    RefreshRemotes();
  }
  Collect(parts, [this, cluster](nlohmann::json result) {
    Cached& cached = cluster ? cluster_ : local_;
    result["generated_at"] = NanosToSeconds(clock_.WallUtcNanos());
    result["self"] = self_id_;
    // A node's own Raft view: term, indexes, snapshots; the member list is the cluster's.
    auto raft_of = [](nlohmann::json view) {
      if (view.is_object()) view.erase("members");
      return view;
    };
    if (!cluster) {
      result["raft"] = raft_of(std::move(result["raft"]));
      result["neighbors"] = HeatmapNeighbors(std::move(result["neighbors"]));
    }
    cached.body = result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (cluster) {
      // "nodes": this node's view and the members' (spliced in as the text they came as).
      const nlohmann::json self = {{"node", result["node"]},
                                   {"health", result["health"]},
                                   {"neighbors", HeatmapNeighbors(result["neighbors"])},
                                   {"sync", result["sync"]},
                                   {"raft", raft_of(result["cluster"])},
                                   {"age_s", 0.0}};
      std::string nodes = RemoteViews();
      nodes += (nodes.empty() ? "" : ",") + nlohmann::json(self_id_).dump() + ":" +
               self.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      cached.body.pop_back();  // the closing brace of a non-empty object
      cached.body += R"(,"nodes":{)" + nodes + "}}";
    }
    cached.gzip_body = GzipCompress(cached.body);
    cached.built = clock_.Monotonic();
    cached.building = false;
    auto waiting = std::move(cached.waiting);
    cached.waiting.clear();
    for (const Waiting& client : waiting) Answer(cached, client.gzip, client.respond);
  });
}

void Overview::Collect(const std::vector<Part>& parts, std::function<void(nlohmann::json)> done) {
  struct Pending {
    nlohmann::json result = nlohmann::json::object();
    size_t remaining = 0;
    std::function<void(nlohmann::json)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->remaining = parts.size();
  pending->done = std::move(done);
  for (const Part& part : parts) {
    HttpRequest request;
    request.method = "GET";
    request.path = part.path;
    request.query = part.query;
    router_.Dispatch(request, [pending, key = part.key](HttpResponse response) {
      nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
      if (response.status >= 300 || body.is_discarded()) {
        std::string error = "answered " + std::to_string(response.status);
        if (body.is_object() && body.contains("error") && body["error"].is_string()) {
          error = body["error"].get<std::string>();
        }
        body = {{"error", error}, {"status", response.status}};
      }
      pending->result[key] = std::move(body);
      if (--pending->remaining == 0) pending->done(std::move(pending->result));
    });
  }
}

void Overview::RefreshRemotes() {
  const MonoTime now = clock_.Monotonic();
  if (!http_ || refreshing_ > 0 || now - last_refresh_ < kRefreshEvery) return;
  last_refresh_ = now;
  std::map<std::string, Remote> kept;
  std::vector<const wire::MemberRecord*> to_fetch;
  for (const wire::MemberRecord* member : consensus_.members().MembersInJoinOrder()) {
    if (member->id() == self_id_ || member->state() == wire::LEFT) continue;
    Remote& remote = kept[member->id()];
    if (auto it = remotes_.find(member->id()); it != remotes_.end()) remote = it->second;
    if (member->state() == wire::DEAD) {
      remote.view = R"({"error":"the cluster has declared this member dead"})";
      remote.fetched = now;
      continue;
    }
    to_fetch.push_back(member);
  }
  remotes_ = std::move(kept);
  for (const wire::MemberRecord* member : to_fetch) {
    ++refreshing_;
    OutgoingHttpRequest request;
    request.method = "GET";
    request.url = scheme_ + member->ip() + ":" + std::to_string(member->api_port()) +
                  "/v1/overview?scope=local";
    request.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(kFetchTimeout);
    request.ca_file = peer_ca_file_;
    if (!peer_token_.empty()) request.headers.push_back("Authorization: Bearer " + peer_token_);
    http_->Send(std::move(request), [this, id = member->id()](Result<HttpReply> reply) {
      --refreshing_;
      auto it = remotes_.find(id);
      if (it == remotes_.end()) return;  // it left meanwhile
      // Kept as text, checked but not parsed: the views are most of a large cluster's overview,
      // and are only passed on.
      std::string view;
      if (!reply.ok()) {
        view = nlohmann::json{{"error", reply.error()}}.dump();
      } else if (reply.value().status != 200) {
        view = nlohmann::json{{"error", "answered " + std::to_string(reply.value().status)}}.dump();
      } else if (reply.value().body.starts_with('{') &&
                 nlohmann::json::accept(reply.value().body)) {
        view = std::move(reply.value().body);
        while (view.back() != '}') view.pop_back();  // whitespace after the object
      } else {
        view = nlohmann::json{{"error", "answered something that is not a JSON object"}}.dump();
      }
      it->second.view = std::move(view);
      it->second.fetched = clock_.Monotonic();
    });
  }
}

std::string Overview::RemoteViews() const {
  std::string nodes;
  const MonoTime now = clock_.Monotonic();
  for (const auto& [id, remote] : remotes_) {
    nodes += nodes.empty() ? "" : ",";
    nodes += nlohmann::json(id).dump() + ":";
    if (remote.view.empty()) {
      nodes += R"({"error":"not fetched yet"})";
      continue;
    }
    // {"age_s": A, ...the view's members}: the view is a checked JSON object.
    nodes += R"({"age_s":)" + nlohmann::json(NanosToSeconds((now - remote.fetched).count())).dump();
    const std::string_view members = std::string_view(remote.view).substr(1);
    if (members[members.find_first_not_of(" \t\r\n")] != '}') nodes += ",";
    nodes += members;
  }
  return nodes;
}

}  // namespace synod
