// File sync over HTTP.
//   GET /v1/sync               this node: ready, in sync or not, what it still has to fetch
//                              (files, bytes), counters (announced, fetched, reused, conflicts)
//                              and the last errors; {"enabled": false} without --sync-dir
//   GET /v1/sync/files?prefix=&deleted=1
//                              the replicated index (every node holds it), ordered by path,
//                              with each path's version; tombstones only with deleted=1
//   GET /v1/sync/conflicts     the conflict copies in the index
#pragma once

#include "api/consistent_read.h"
#include "filesync/file_index.h"
#include "filesync/sync_service.h"
#include "net/http_server.h"

namespace synod {

// `index` and `sync` (null when this node syncs no folder) must outlive the router.
// `reads` wraps the routes that read the replicated index (files, conflicts).
void AddSyncRoutes(HttpRouter& router, const FileIndex& index, const SyncService* sync,
                   const ReadPolicy& reads);

}  // namespace synod
