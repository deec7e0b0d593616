#include "filesync/sync_path.h"

#include <algorithm>
#include <cstdio>

#include "filesync/utf8.h"

namespace synod {
namespace {

constexpr std::string_view kTempPrefix = ".synod-tmp-";
constexpr std::string_view kIgnoreFile = ".synodignore";
constexpr size_t kMaxNodeNameBytes = 64;

Status Invalid(std::string_view path, const std::string& what) {
  return Status::Invalid("path " + QuoteForMessage(path) + ": " + what);
}

std::string HexByte(unsigned char byte) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "\\x%02x", byte);
  return buffer;
}

// The longest prefix of `text` of at most `max_bytes` that does not end inside a UTF-8 sequence.
std::string_view CutUtf8(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
  return text.substr(0, end);
}

// How many bytes a basename in `parent` may have: 255, less if the whole path would pass 4096.
size_t BaseNameBudget(std::string_view parent) {
  const size_t used = parent.empty() ? 0 : parent.size() + 1;
  const size_t left = used < kMaxSyncPathBytes ? kMaxSyncPathBytes - used : 0;
  return std::min(kMaxSyncPathComponentBytes, left);
}

std::string Join(std::string_view parent, std::string_view base) {
  std::string out;
  out.reserve(parent.size() + 1 + base.size());
  if (!parent.empty()) {
    out.append(parent);
    out += '/';
  }
  out.append(base);
  return out;
}

std::string SanitizeNodeName(std::string_view name) {
  std::string out;
  for (size_t at = 0; at < name.size() && out.size() < kMaxNodeNameBytes;) {
    const Utf8Char decoded = DecodeUtf8(name, at);
    const char32_t c = decoded.error == nullptr ? decoded.code_point : 0;
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
    out += keep ? static_cast<char>(c) : '_';
    at += decoded.length;
  }
  return out.empty() ? "node" : out;
}

// "YYYYMMDD-HHMMSS" of a UTC instant (Howard Hinnant's civil_from_days).
std::string UtcStamp(int64_t utc_nanos) {
  int64_t seconds = utc_nanos / 1'000'000'000;
  if (utc_nanos % 1'000'000'000 < 0) --seconds;
  int64_t days = seconds / 86'400;
  if (seconds % 86'400 < 0) --days;
  const int64_t second_of_day = seconds - days * 86'400;
  const int64_t z = days + 719'468;
  const int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const int64_t doe = z - era * 146'097;
  const int64_t yoe = (doe - doe / 1'460 + doe / 36'524 - doe / 146'096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2);
  char buffer[80];  // the year is 1677-2262 for every int64_t; room for any value anyway
  std::snprintf(buffer, sizeof buffer, "%04lld%02lld%02lld-%02lld%02lld%02lld",
                static_cast<long long>(year), static_cast<long long>(month),
                static_cast<long long>(day), static_cast<long long>(second_of_day / 3600),
                static_cast<long long>(second_of_day / 60 % 60),
                static_cast<long long>(second_of_day % 60));
  return buffer;
}

}  // namespace

Status CheckSyncPath(std::string_view path) {
  if (path.empty()) return Status::Invalid("path is empty");
  if (path.size() > kMaxSyncPathBytes) {
    return Invalid(path, std::to_string(path.size()) + " bytes long, over the limit of " +
                             std::to_string(kMaxSyncPathBytes));
  }
  if (path.front() == '/') return Invalid(path, "must be relative, not start with '/'");
  for (size_t at = 0; at < path.size();) {
    const auto byte = static_cast<unsigned char>(path[at]);
    if (byte < 0x20 || byte == 0x7f) {
      return Invalid(path, "control character " + HexByte(byte) + " at byte " + std::to_string(at) +
                               " is not allowed");
    }
    const Utf8Char decoded = DecodeUtf8(path, at);
    if (decoded.error != nullptr) {
      return Invalid(path,
                     "invalid UTF-8 at byte " + std::to_string(at) + " (" + decoded.error + ")");
    }
    at += decoded.length;
  }
  if (path.back() == '/') return Invalid(path, "ends with '/'");
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view component = path.substr(start, end - start);
    if (component.empty()) return Invalid(path, "empty component (\"//\")");
    if (component == "." || component == "..") {
      return Invalid(path, "\"" + std::string(component) + "\" is not allowed");
    }
    if (component.size() > kMaxSyncPathComponentBytes) {
      return Invalid(path, "component " + QuoteForMessage(component, 40) + " is " +
                               std::to_string(component.size()) +
                               " bytes long, over the limit of " +
                               std::to_string(kMaxSyncPathComponentBytes));
    }
    start = end + 1;
  }
  return Status::Ok();
}

bool IsSynodInternal(std::string_view path) {
  return path == kIgnoreFile || BaseName(path).starts_with(kTempPrefix);
}

std::string_view ParentOf(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

std::string_view BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string TempPathFor(std::string_view path, uint64_t unique) {
  const std::string_view parent = ParentOf(path);
  char hex[24];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(unique));
  std::string base = std::string(kTempPrefix) + hex + "-";
  const size_t budget = BaseNameBudget(parent);
  base.append(CutUtf8(BaseName(path), budget > base.size() ? budget - base.size() : 0));
  return Join(parent, base);
}

std::string ConflictPath(std::string_view path, int64_t at_utc_nanos, std::string_view node_name) {
  const std::string_view parent = ParentOf(path);
  const std::string_view base = BaseName(path);
  const size_t dot = base.rfind('.');
  const bool has_ext = dot != std::string_view::npos && dot > 0;
  const std::string_view name = has_ext ? base.substr(0, dot) : base;
  std::string_view ext = has_ext ? base.substr(dot) : std::string_view();
  const std::string suffix =
      ".sync-conflict-" + UtcStamp(at_utc_nanos) + "-" + SanitizeNodeName(node_name);

  const size_t budget = BaseNameBudget(parent);
  // NAME keeps at least its first character, so that the result is not a hidden file when the
  // original was not one.
  const size_t first = name.empty() ? 0 : DecodeUtf8(name, 0).length;
  if (budget < first + suffix.size()) {
    // Degenerate: the directory is nearly 4096 bytes deep. Keep the path valid; drop the leading
    // '.' so that a one- or two-byte cut is never "." or "..".
    return Join(parent, CutUtf8(std::string_view(suffix).substr(1), budget));
  }
  std::string_view kept_name = name;
  if (name.size() + suffix.size() + ext.size() > budget) {
    const size_t room = budget - suffix.size();
    kept_name =
        room >= ext.size() + first ? CutUtf8(name, room - ext.size()) : name.substr(0, first);
    if (kept_name.size() < first) kept_name = name.substr(0, first);
    ext = CutUtf8(ext, budget - suffix.size() - kept_name.size());
  }
  std::string out(kept_name);
  out += suffix;
  out.append(ext);
  return Join(parent, out);
}

}  // namespace synod
