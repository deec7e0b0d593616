#include "api/web_routes.h"

#include <functional>
#include <string>

#include "web/web_assets.h"

namespace synod {
namespace {

const WebAsset* FindAsset(std::string_view name) {
  for (const WebAsset& asset : WebAssets()) {
    if (asset.name == name) return &asset;
  }
  return nullptr;
}

std::string ContentTypeOf(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".json")) return "application/json";
  return "application/octet-stream";
}

void ServeAsset(const WebAsset& asset, const HttpRequest& request, HttpResponder respond) {
  // The build's content never changes while the node runs: its hash names it.
  const std::string etag = "\"" + std::to_string(std::hash<std::string_view>{}(asset.plain)) + "\"";
  HttpResponse response;
  response.content_type = ContentTypeOf(asset.name);
  response.headers.emplace_back("ETag", etag);
  response.headers.emplace_back("Cache-Control", "no-cache");
  response.headers.emplace_back("Vary", "Accept-Encoding");
  if (auto match = request.headers.find("if-none-match");
      match != request.headers.end() && match->second == etag) {
    response.status = 304;
    respond(std::move(response));
    return;
  }
  if (AcceptsGzip(request)) {
    response.body = asset.gzip;
    response.headers.emplace_back("Content-Encoding", "gzip");
  } else {
    response.body = asset.plain;
  }
  respond(std::move(response));
}

HttpHandler Page(std::string_view name) {
  const WebAsset* asset = FindAsset(name);
  return [asset, name](const HttpRequest& request, HttpResponder respond) {
    if (asset == nullptr) {
      return respond(HttpResponse::Error(500, std::string(name) + " is missing from this build"));
    }
    ServeAsset(*asset, request, std::move(respond));
  };
}

}  // namespace

void AddWebRoutes(HttpRouter& router) {
  router.Handle("GET", "/", Page("dashboard.html"));
  router.Handle("GET", "/docs", Page("docs.html"));
  router.Handle("GET", "/openapi.json", Page("openapi.json"));
  router.Handle("GET", "/assets/{name}", [](const HttpRequest& request, HttpResponder respond) {
    const std::string& name = request.path_params.at("name");
    const WebAsset* asset = FindAsset(name);
    if (asset == nullptr) return respond(HttpResponse::Error(404, "no such asset: " + name));
    ServeAsset(*asset, request, std::move(respond));
  });
}

}  // namespace synod
