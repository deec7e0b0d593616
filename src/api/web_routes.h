// The browser's side of the API: the dashboard at /, its files under /assets/{name}, the API docs
// at /docs and the OpenAPI document at /openapi.json, all from the assets embedded in the binary.
// Sent gzip-compressed to clients that accept it; revalidated by ETag.
#pragma once

#include "net/http_server.h"

namespace synod {

void AddWebRoutes(HttpRouter& router);

}  // namespace synod
