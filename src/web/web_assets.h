// The dashboard, the API docs page, the OpenAPI document and Chart.js, compiled into the binary
// (src/web/embed_assets.cmake), so that a node serves them with nothing installed and no
// internet. Each is kept plain and gzip-compressed (gzip -9 at build time).
#pragma once

#include <span>
#include <string_view>

namespace synod {

struct WebAsset {
  std::string_view name;  // "dashboard.js"
  std::string_view plain;
  std::string_view gzip;
};

std::span<const WebAsset> WebAssets();

}  // namespace synod
