// GET /v1/overview: everything the dashboard shows, in one answer, for any number of dashboards.
//
// ?scope=local (what other nodes fetch): this node's own view: node, health, neighbours (what the
// delay heatmap needs of them), sync, and its Raft view (term, indexes, snapshots; /v1/cluster
// without the member list).
// ?scope=cluster (the default): the replicated view as this node holds it (members, clock,
// ranks, recent commands, timers) plus every member's local view, by node id.
//
// The parts are the bodies of the node's own endpoints, dispatched internally through the
// router (replicated parts with ?stale: a dashboard shows what this node knows, and says how
// fresh it is), so the overview never disagrees with the API. An answer is kept for 500 ms and
// shared by every request in that time. Members' local views are fetched in the background, at
// most once a second and only while someone asks, and served with their age: a slow or dead
// member never delays the page. The answer is compressed once for clients that take gzip (every
// member's neighbour list makes it large in a big cluster). Loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "consensus/consensus_service.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "net/async_http_client.h"
#include "net/http_server.h"

namespace synod {

class Overview {
 public:
  // `router` serves the parts and must outlive this; so must `consensus`.
  Overview(EventLoop& loop, const Clock& clock, const HttpRouter& router,
           const ConsensusService& consensus, std::string self_id);

  void AddRoutes(HttpRouter& router);
  // Cancels the fetches in flight; members' views are no longer refreshed.
  void Stop() { http_.reset(); }
  // The bearer token sent with the fetches of members' views, for when their reads need one
  // (--api-read-requires-token); empty: none. The parts of this node's own view are dispatched
  // inside the node and need none.
  void SetPeerToken(std::string token) { peer_token_ = std::move(token); }
  // Members' APIs are HTTPS (as this node's is): fetch their views so, trusting the CA in
  // `ca_file` (empty: the system's CAs).
  void UseHttps(std::string ca_file) {
    scheme_ = "https://";
    peer_ca_file_ = std::move(ca_file);
  }

 private:
  struct Part {
    std::string key;
    std::string path;
    std::map<std::string, std::string> query;
  };
  struct Waiting {
    HttpResponder respond;
    bool gzip;  // the client takes gzip
  };
  struct Cached {
    MonoTime built{};
    bool building = false;
    std::string body;
    std::string gzip_body;  // compressed once, for every client that takes it
    std::vector<Waiting> waiting;
  };
  struct Remote {
    std::string view;  // its local overview, or {"error": ...}: a JSON object, as text
    MonoTime fetched{};
  };

  void Serve(bool cluster, bool gzip, HttpResponder respond);
  static void Answer(const Cached& cached, bool gzip, const HttpResponder& respond);
  void Build(bool cluster);
  void Collect(const std::vector<Part>& parts, std::function<void(nlohmann::json)> done);
  void RefreshRemotes();
  // The members' views as the inside of a JSON object: "id":{"age_s":..,...},...
  std::string RemoteViews() const;

  const Clock& clock_;
  const HttpRouter& router_;
  const ConsensusService& consensus_;
  std::string self_id_;
  std::string peer_token_;
  std::string scheme_ = "http://";
  std::string peer_ca_file_;
  std::unique_ptr<AsyncHttpClient> http_;
  Cached local_;
  Cached cluster_;
  std::map<std::string, Remote> remotes_;  // by node id
  MonoTime last_refresh_{};
  size_t refreshing_ = 0;  // fetches in flight
};

}  // namespace synod
