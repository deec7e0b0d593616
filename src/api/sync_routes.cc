#include "api/sync_routes.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "filesync/folder.h"

namespace synod {
namespace {

constexpr size_t kMaxListed = 100'000;

const char* KindName(wire::FileKind kind) {
  switch (kind) {
    case wire::KIND_DIRECTORY:
      return "directory";
    case wire::KIND_SYMLINK:
      return "symlink";
    default:
      return "file";
  }
}

nlohmann::json EntryJson(const wire::FileEntry& entry) {
  nlohmann::json json = {
      {"path", entry.path()},        {"version", entry.version()},
      {"deleted", entry.deleted()},  {"origin", entry.origin_name()},
      {"origin_id", entry.origin()}, {"committed_at_nanos", entry.committed_at_nanos()}};
  if (entry.deleted()) return json;
  json["kind"] = KindName(entry.kind());
  json["mode"] = entry.mode();
  json["mtime_nanos"] = entry.mtime_nanos();
  if (entry.kind() == wire::KIND_FILE) {
    json["size"] = entry.size();
    json["hash"] = HexOf(entry.hash());
    json["blocks"] = entry.blocks_size();
  } else if (entry.kind() == wire::KIND_SYMLINK) {
    json["target"] = entry.target();
  }
  return json;
}

// Entries accepted by `keep`, ordered by path, at most kMaxListed.
template <typename Keep>
nlohmann::json ListEntries(const FileIndex& index, Keep keep) {
  std::vector<const wire::FileEntry*> entries;
  index.ForEach([&](const wire::FileEntry& entry) {
    if (keep(entry)) entries.push_back(&entry);
  });
  std::sort(entries.begin(), entries.end(),
            [](const auto* a, const auto* b) { return a->path() < b->path(); });
  nlohmann::json files = nlohmann::json::array();
  for (const wire::FileEntry* entry : entries) {
    if (files.size() == kMaxListed) break;
    files.push_back(EntryJson(*entry));
  }
  return {{"files", files}, {"total", entries.size()}, {"truncated", entries.size() > kMaxListed}};
}

}  // namespace

void AddSyncRoutes(HttpRouter& router, const FileIndex& index, const SyncService* sync,
                   const ReadPolicy& reads) {
  router.Handle("GET", "/v1/sync", [&index, sync](const HttpRequest&, HttpResponder respond) {
    if (sync == nullptr) {
      return respond(HttpResponse::Json(200, {{"enabled", false}, {"index_files", index.live()}}));
    }
    respond(HttpResponse::Json(200, sync->StatusJson()));
  });
  router.Handle(
      "GET", "/v1/sync/files", reads([&index](const HttpRequest& request, HttpResponder respond) {
        auto prefix = request.query.find("prefix");
        const std::string wanted = prefix == request.query.end() ? "" : prefix->second;
        auto deleted = request.query.find("deleted");
        const bool with_deleted =
            deleted != request.query.end() && (deleted->second == "1" || deleted->second == "true");
        respond(HttpResponse::Json(200, ListEntries(index, [&](const wire::FileEntry& entry) {
                                     return (with_deleted || !entry.deleted()) &&
                                            entry.path().compare(0, wanted.size(), wanted) == 0;
                                   })));
      }));
  router.Handle(
      "GET", "/v1/sync/conflicts", reads([&index](const HttpRequest&, HttpResponder respond) {
        respond(HttpResponse::Json(
            200, ListEntries(index, [](const wire::FileEntry& entry) {
              return !entry.deleted() && entry.path().find(".sync-conflict-") != std::string::npos;
            })));
      }));
}

}  // namespace synod
