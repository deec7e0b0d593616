// Paths inside a synced folder: validation, and the names Synod derives from them.
//
// A sync path is relative to the folder root and written the same way on every node: components
// separated by single '/', valid UTF-8, no control bytes, no "." or ".." (the full rule is at
// CheckSyncPath). Paths arrive from other nodes and from disk, so they are hostile input until
// CheckSyncPath has passed them; nothing else here asserts on its input, but the results of the
// other functions are only promised to be valid sync paths when their input was one. Everything
// is a pure function of its arguments (no clock, no file system), safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace synod {

inline constexpr size_t kMaxSyncPathBytes = 4096;
inline constexpr size_t kMaxSyncPathComponentBytes = 255;

// Ok iff `path` is non-empty, at most 4096 bytes, does not start with '/', has no empty component
// (no "//", no trailing '/'), no "." or ".." component, no component over 255 bytes, no byte below
// 0x20 and no 0x7f, and is valid UTF-8 (no overlong encodings, surrogates or code points above
// U+10FFFF). Otherwise Invalid, with a message that quotes the path (escaped, truncated) and says
// what is wrong: `path "a/../b": ".." is not allowed`.
Status CheckSyncPath(std::string_view path);

// True for the files Synod itself keeps inside the folder, which are never announced or synced:
// a basename starting with ".synod-tmp-" (a file being assembled) and the top-level
// ".synodignore".
bool IsSynodInternal(std::string_view path);

// "a/b/c" -> "a/b"; "c" -> "" (top level).
std::string_view ParentOf(std::string_view path);
// "a/b/c" -> "c"; "c" -> "c".
std::string_view BaseName(std::string_view path);

// Where to assemble a new version of `path` before renaming it into place: the same directory,
// basename ".synod-tmp-<unique in lower-case hex>-<basename>", the original basename cut (never
// inside a UTF-8 sequence) so that the new basename stays within 255 bytes and the path within
// 4096 bytes. IsSynodInternal is true of the result. If `path` is a valid sync path whose
// directory leaves room for the 28-byte prefix, the result is one too.
std::string TempPathFor(std::string_view path, uint64_t unique);

// Where to keep the losing side of a conflict on `path`, in Syncthing's form:
// "dir/NAME.sync-conflict-YYYYMMDD-HHMMSS-NODE.EXT". EXT is what follows the last '.' of the
// basename when that '.' is not its first byte ("a.tar.gz" -> "a.tar.sync-conflict-...-n.gz",
// ".bashrc" -> ".bashrc.sync-conflict-...-n"). The time is `at_utc_nanos` in UTC, whole seconds
// (rounded down). NODE is `node_name` with every character outside [A-Za-z0-9_-] replaced by
// '_' (one per UTF-8 character), cut to 64 bytes, "node" if empty. If `path` is a valid sync path,
// so is the result: NAME, then EXT, is cut (never inside a UTF-8 sequence) to keep the basename
// within 255 bytes and the path within 4096; in the degenerate case where the directory leaves
// less room than the suffix needs, the suffix itself is cut. The result is not checked against
// the disk: a caller must still make sure it does not name an existing file (two conflicts on
// the same file within a second give the same name).
std::string ConflictPath(std::string_view path, int64_t at_utc_nanos, std::string_view node_name);

}  // namespace synod
