#include "filesync/sync_path.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "filesync/utf8.h"

namespace synod {
namespace {

using std::string_literals::operator""s;

constexpr int64_t kSecond = 1'000'000'000;
// 2026-11-29T14:05:00Z, as in timers/schedule_test.cc (computed with Python's datetime).
constexpr int64_t k20261129T140500Z = 1'795'961'100 * kSecond;

std::string Error(std::string_view path) {
  const Status status = CheckSyncPath(path);
  EXPECT_FALSE(status.ok()) << QuoteForMessage(path) << " was accepted";
  if (status.ok()) return "ok";
  EXPECT_EQ(status.code(), StatusCode::kInvalid) << status.message();
  return status.message();
}

bool Valid(std::string_view path) { return CheckSyncPath(path).ok(); }

std::string Repeat(std::string_view piece, size_t times) {
  std::string out;
  for (size_t i = 0; i < times; ++i) out.append(piece);
  return out;
}

// --- CheckSyncPath ---

TEST(CheckSyncPath, AcceptsOrdinaryPaths) {
  for (const char* path : {"a",
                           "a/b/c",
                           ".bashrc",
                           "dir/.hidden",
                           "...",
                           "a/.../b",
                           "..a",
                           "a..",
                           ".a.",
                           "a b/c d",
                           "back\\slash",
                           "colon:star*?",
                           "-",
                           "~",
                           "caf\xc3\xa9/na\xc3\xafve",  // café/naïve
                           "\xe6\x97\xa5\xe6\x9c\xac",  // 日本
                           "\xf0\x9f\x98\x80.txt",      // U+1F600
                           "\xef\xbf\xbf",
                           "\xf4\x8f\xbf\xbf",
                           "\xc2\xa0"}) {  // U+FFFF, U+10FFFF, U+00A0
    EXPECT_TRUE(CheckSyncPath(path).ok()) << path << ": " << CheckSyncPath(path).message();
  }
}

TEST(CheckSyncPath, AcceptsTheLimitsExactly) {
  EXPECT_TRUE(Valid(std::string(255, 'x')));
  EXPECT_TRUE(Valid("d/" + std::string(255, 'x')));
  EXPECT_TRUE(Valid(Repeat("\xc3\xa9", 127) + "x"));  // 255 bytes, 128 characters
  // 15 components of 255 bytes, two more of 200 and 55, and 16 slashes: 4096 bytes.
  std::string longest;
  for (int i = 0; i < 15; ++i) longest += std::string(255, 'x') + "/";
  longest += std::string(200, 'y') + "/" + std::string(55, 'z');
  ASSERT_EQ(longest.size(), 4096u);
  EXPECT_TRUE(Valid(longest));
  EXPECT_FALSE(Valid(longest + "y"));
}

TEST(CheckSyncPath, SaysWhatIsWrong) {
  EXPECT_EQ(Error(""), "path is empty");
  EXPECT_EQ(Error("/etc/passwd"), "path \"/etc/passwd\": must be relative, not start with '/'");
  EXPECT_EQ(Error("/"), "path \"/\": must be relative, not start with '/'");
  EXPECT_EQ(Error("a/"), "path \"a/\": ends with '/'");
  EXPECT_EQ(Error("a//b"), "path \"a//b\": empty component (\"//\")");
  EXPECT_EQ(Error("a/../b"), "path \"a/../b\": \"..\" is not allowed");
  EXPECT_EQ(Error(".."), "path \"..\": \"..\" is not allowed");
  EXPECT_EQ(Error("../x"), "path \"../x\": \"..\" is not allowed");
  EXPECT_EQ(Error("a/.."), "path \"a/..\": \"..\" is not allowed");
  EXPECT_EQ(Error("."), "path \".\": \".\" is not allowed");
  EXPECT_EQ(Error("./a"), "path \"./a\": \".\" is not allowed");
  EXPECT_EQ(Error("a/./b"), "path \"a/./b\": \".\" is not allowed");
  EXPECT_EQ(Error("a/" + std::string(256, 'x')),
            "path \"a/" + std::string(98, 'x') + "\"... (258 bytes): component \"" +
                std::string(40, 'x') +
                "\"... (256 bytes) is 256 bytes long, over the limit of 255");
  EXPECT_EQ(Error(std::string(4097, 'x')),
            "path \"" + std::string(100, 'x') +
                "\"... (4097 bytes): 4097 bytes long, over the limit of 4096");
}

TEST(CheckSyncPath, RejectsEveryControlByte) {
  for (int byte = 0; byte < 0x20; ++byte) {
    const std::string path = "a"s + static_cast<char>(byte) + "b";
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02x", byte);
    EXPECT_EQ(Error(path),
              "path \"a"s + hex + "b\": control character " + hex + " at byte 1 is not allowed");
  }
  EXPECT_EQ(Error("a\x7f"), "path \"a\\x7f\": control character \\x7f at byte 1 is not allowed");
  EXPECT_EQ(Error("a\0b"s), "path \"a\\x00b\": control character \\x00 at byte 1 is not allowed");
  EXPECT_EQ(Error("a\nb"), "path \"a\\x0ab\": control character \\x0a at byte 1 is not allowed");
  EXPECT_EQ(Error("\0"s), "path \"\\x00\": control character \\x00 at byte 0 is not allowed");
}

TEST(CheckSyncPath, RejectsInvalidUtf8) {
  const auto utf8_error = [](std::string_view path) {
    const std::string message = Error(path);
    const size_t at = message.find("invalid UTF-8 at byte ");
    return at == std::string::npos ? message : message.substr(at + 22);
  };
  EXPECT_EQ(utf8_error("caf\xe9"), "3 (truncated sequence)");  // Latin-1 é
  EXPECT_EQ(utf8_error("\x80"), "0 (unexpected continuation byte)");
  EXPECT_EQ(utf8_error("a\xbf"), "1 (unexpected continuation byte)");
  EXPECT_EQ(utf8_error("\xc3"), "0 (truncated sequence)");
  EXPECT_EQ(utf8_error("\xc3z"), "0 (truncated sequence)");
  EXPECT_EQ(utf8_error("\xe2\x82"), "0 (truncated sequence)");
  EXPECT_EQ(utf8_error("\xf0\x9f\x98"), "0 (truncated sequence)");
  EXPECT_EQ(utf8_error("\xc0\xaf"), "0 (overlong encoding)");  // '/' in two bytes
  EXPECT_EQ(utf8_error("\xc1\xbf"), "0 (overlong encoding)");
  EXPECT_EQ(utf8_error("\xc0\xae\xc0\xae"), "0 (overlong encoding)");  // ".." in disguise
  EXPECT_EQ(utf8_error("\xe0\x80\xaf"), "0 (overlong encoding)");
  EXPECT_EQ(utf8_error("\xe0\x9f\xbf"), "0 (overlong encoding)");
  EXPECT_EQ(utf8_error("\xf0\x80\x80\xaf"), "0 (overlong encoding)");
  EXPECT_EQ(utf8_error("\xf0\x8f\xbf\xbf"), "0 (overlong encoding)");
  EXPECT_EQ(utf8_error("\xed\xa0\x80"), "0 (surrogate code point)");  // U+D800
  EXPECT_EQ(utf8_error("\xed\xbf\xbf"), "0 (surrogate code point)");  // U+DFFF
  EXPECT_EQ(utf8_error("\xf4\x90\x80\x80"), "0 (code point above U+10FFFF)");
  EXPECT_EQ(utf8_error("\xf5\x80\x80\x80"), "0 (code point above U+10FFFF)");
  EXPECT_EQ(utf8_error("\xf7\xbf\xbf\xbf"), "0 (code point above U+10FFFF)");
  EXPECT_EQ(utf8_error("\xf8\x88\x80\x80\x80"), "0 (invalid byte)");
  EXPECT_EQ(utf8_error("ok/\xff"), "3 (invalid byte)");
  // Just inside the limits.
  EXPECT_TRUE(Valid("\xed\x9f\xbf"));      // U+D7FF
  EXPECT_TRUE(Valid("\xee\x80\x80"));      // U+E000
  EXPECT_TRUE(Valid("\xe0\xa0\x80"));      // U+0800
  EXPECT_TRUE(Valid("\xf0\x90\x80\x80"));  // U+10000
}

TEST(CheckSyncPath, QuotesHostilePathsSafely) {
  // Invalid bytes, quotes and backslashes are escaped; valid UTF-8 is kept.
  EXPECT_EQ(Error("\"/\xff"), "path \"\\\"/\\xff\": invalid UTF-8 at byte 2 (invalid byte)");
  EXPECT_EQ(QuoteForMessage("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(QuoteForMessage("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(QuoteForMessage("caf\xe9"), "\"caf\\xe9\"");
  EXPECT_EQ(QuoteForMessage("\x1b[31m"), "\"\\x1b[31m\"");  // a terminal escape
  // C1 controls, bidi overrides, line separators and the BOM are escaped byte by byte.
  EXPECT_EQ(QuoteForMessage("\xc2\x85"), "\"\\xc2\\x85\"");
  EXPECT_EQ(QuoteForMessage("a\xe2\x80\xae"
                            "b"),
            "\"a\\xe2\\x80\\xaeb\"");
  EXPECT_EQ(QuoteForMessage("\xe2\x80\xa8"), "\"\\xe2\\x80\\xa8\"");
  EXPECT_EQ(QuoteForMessage("\xe2\x81\xa6"), "\"\\xe2\\x81\\xa6\"");
  EXPECT_EQ(QuoteForMessage("\xef\xbb\xbf"), "\"\\xef\\xbb\\xbf\"");
  // Truncation never splits a UTF-8 sequence.
  EXPECT_EQ(QuoteForMessage("ab\xc3\xa9", 3), "\"ab\"... (4 bytes)");
  EXPECT_EQ(QuoteForMessage("ab\xc3\xa9", 4), "\"ab\xc3\xa9\"");
  // A hostile path's message stays short and printable.
  std::string hostile = "/";
  for (int i = 0; i < 10'000; ++i) hostile += static_cast<char>(i % 256);
  for (const std::string& path : {hostile, hostile.substr(1), "x" + hostile}) {
    const std::string message = Error(path);
    EXPECT_LT(message.size(), 600u);
    for (char c : message) {
      EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) << message;
    }
  }
}

TEST(CheckSyncPath, RandomBytesNeverCrashAndDerivedPathsStayValid) {
  // Short strings over an alphabet rich in trouble; whenever one is accepted, the paths derived
  // from it must be accepted too.
  const std::string alphabet = "a/.\0\n\xc3\xa9\xff\xed\xa0 -"s;
  std::mt19937 random(42);
  int accepted = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string path;
    const size_t length = random() % 9;
    for (size_t j = 0; j < length; ++j) path += alphabet[random() % alphabet.size()];
    if (!CheckSyncPath(path).ok()) continue;
    ++accepted;
    EXPECT_TRUE(Valid(TempPathFor(path, random()))) << QuoteForMessage(path);
    EXPECT_TRUE(Valid(ConflictPath(path, static_cast<int64_t>(random()) * kSecond, path)))
        << QuoteForMessage(path);
    EXPECT_TRUE(IsSynodInternal(TempPathFor(path, 7)));
    EXPECT_FALSE(IsSynodInternal(ConflictPath(path, 0, "n")));
  }
  EXPECT_GT(accepted, 500);
}

// --- IsSynodInternal, ParentOf, BaseName ---

TEST(IsSynodInternal, TempFilesAnywhereAndTheTopLevelIgnoreFile) {
  EXPECT_TRUE(IsSynodInternal(".synod-tmp-1f-report.pdf"));
  EXPECT_TRUE(IsSynodInternal("a/b/.synod-tmp-1f-report.pdf"));
  EXPECT_TRUE(IsSynodInternal(".synod-tmp-"));
  EXPECT_TRUE(IsSynodInternal(".synodignore"));
  EXPECT_FALSE(IsSynodInternal("a/.synodignore"));  // only the folder's own
  EXPECT_FALSE(IsSynodInternal(".synodignore2"));
  EXPECT_FALSE(IsSynodInternal(".synodignore/x"));
  EXPECT_FALSE(IsSynodInternal(".synod-tmp"));
  EXPECT_FALSE(IsSynodInternal("x.synod-tmp-1-a"));
  EXPECT_FALSE(IsSynodInternal(".synod-tmp-1/a"));  // a directory by that name: not ours
  EXPECT_FALSE(IsSynodInternal("report.pdf"));
  EXPECT_FALSE(IsSynodInternal(""));
}

TEST(ParentAndBaseName, SplitAtTheLastSlash) {
  EXPECT_EQ(ParentOf("a/b/c"), "a/b");
  EXPECT_EQ(BaseName("a/b/c"), "c");
  EXPECT_EQ(ParentOf("a/b"), "a");
  EXPECT_EQ(BaseName("a/b"), "b");
  EXPECT_EQ(ParentOf("c"), "");
  EXPECT_EQ(BaseName("c"), "c");
  EXPECT_EQ(ParentOf(""), "");
  EXPECT_EQ(BaseName(""), "");
  EXPECT_EQ(BaseName(".bashrc"), ".bashrc");
}

// --- TempPathFor ---

TEST(TempPathFor, SameDirectoryHexUniqueThenTheName) {
  EXPECT_EQ(TempPathFor("a/b/report.pdf", 0xbeef), "a/b/.synod-tmp-beef-report.pdf");
  EXPECT_EQ(TempPathFor("report.pdf", 0), ".synod-tmp-0-report.pdf");
  EXPECT_EQ(TempPathFor("x", std::numeric_limits<uint64_t>::max()),
            ".synod-tmp-ffffffffffffffff-x");
  EXPECT_NE(TempPathFor("x", 1), TempPathFor("x", 2));
}

TEST(TempPathFor, CutsTheNameToKeepTheBasenameWithin255Bytes) {
  const std::string long_name(255, 'n');
  const std::string temp = TempPathFor("d/" + long_name, 0xabc);
  EXPECT_EQ(temp, "d/.synod-tmp-abc-" + std::string(255 - 15, 'n'));
  EXPECT_EQ(BaseName(temp).size(), 255u);
  EXPECT_TRUE(Valid(temp));
  // Two-byte characters are never split.
  const std::string accented = Repeat("\xc3\xa9", 127) + "x";
  const std::string cut = TempPathFor(accented, 0xabcd);  // 239 bytes of room: 119 'é'
  EXPECT_EQ(cut, ".synod-tmp-abcd-" + Repeat("\xc3\xa9", 119));
  EXPECT_TRUE(Valid(cut)) << CheckSyncPath(cut).message();
  const std::string widest = TempPathFor(long_name, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(BaseName(widest).size(), 255u);
  EXPECT_TRUE(Valid(widest));
}

TEST(TempPathFor, KeepsDeepPathsWithin4096Bytes) {
  for (size_t parent_size = 4000; parent_size <= 4096 - 30; ++parent_size) {
    const std::string path = std::string(parent_size, 'p') + "/file.txt";
    if (!Valid(path)) continue;
    const std::string temp = TempPathFor(path, 0xffff);
    EXPECT_TRUE(Valid(temp)) << parent_size << ": " << CheckSyncPath(temp).message();
    EXPECT_TRUE(IsSynodInternal(temp));
  }
}

// --- ConflictPath ---

TEST(ConflictPath, FollowsSyncthingsForm) {
  const int64_t t = k20261129T140500Z;
  EXPECT_EQ(ConflictPath("docs/report.pdf", t, "node-1"),
            "docs/report.sync-conflict-20261129-140500-node-1.pdf");
  EXPECT_EQ(ConflictPath("a.tar.gz", t, "n"), "a.tar.sync-conflict-20261129-140500-n.gz");
  EXPECT_EQ(ConflictPath(".bashrc", t, "n"), ".bashrc.sync-conflict-20261129-140500-n");
  EXPECT_EQ(ConflictPath("home/.config.old", t, "n"),
            "home/.config.sync-conflict-20261129-140500-n.old");
  EXPECT_EQ(ConflictPath("Makefile", t, "n"), "Makefile.sync-conflict-20261129-140500-n");
  EXPECT_EQ(ConflictPath("trailing.", t, "n"), "trailing.sync-conflict-20261129-140500-n.");
  EXPECT_EQ(ConflictPath("...", t, "n"), "...sync-conflict-20261129-140500-n.");
  EXPECT_EQ(ConflictPath("v1.2/notes", t, "n"), "v1.2/notes.sync-conflict-20261129-140500-n");
}

TEST(ConflictPath, TimeIsUtcWholeSeconds) {
  EXPECT_EQ(ConflictPath("f", 0, "n"), "f.sync-conflict-19700101-000000-n");
  EXPECT_EQ(ConflictPath("f", k20261129T140500Z + 999'999'999, "n"),
            "f.sync-conflict-20261129-140500-n");
  EXPECT_EQ(ConflictPath("f", -1, "n"), "f.sync-conflict-19691231-235959-n");
  EXPECT_EQ(ConflictPath("f", 1'709'251'199 * kSecond, "n"),  // 2024-02-29T23:59:59Z
            "f.sync-conflict-20240229-235959-n");
  EXPECT_EQ(ConflictPath("f", 951'782'400 * kSecond, "n"),  // 2000-02-29T00:00:00Z
            "f.sync-conflict-20000229-000000-n");
  EXPECT_EQ(ConflictPath("f", std::numeric_limits<int64_t>::max(), "n"),
            "f.sync-conflict-22620411-234716-n");
  EXPECT_EQ(ConflictPath("f", std::numeric_limits<int64_t>::min(), "n"),
            "f.sync-conflict-16770921-001243-n");
}

TEST(ConflictPath, SanitizesTheNodeName) {
  const int64_t t = 0;
  EXPECT_EQ(ConflictPath("f", t, "Node_9-x"), "f.sync-conflict-19700101-000000-Node_9-x");
  EXPECT_EQ(ConflictPath("f", t, ""), "f.sync-conflict-19700101-000000-node");
  EXPECT_EQ(ConflictPath("f", t, "a b/c.d"), "f.sync-conflict-19700101-000000-a_b_c_d");
  EXPECT_EQ(ConflictPath("f", t, "../.."), "f.sync-conflict-19700101-000000-_____");
  EXPECT_EQ(ConflictPath("f", t, "n\xc3\xa9\xf0\x9f\x98\x80"),  // one '_' per character
            "f.sync-conflict-19700101-000000-n__");
  EXPECT_EQ(ConflictPath("f", t, "\xff\xfe\0"s), "f.sync-conflict-19700101-000000-___");
  EXPECT_EQ(ConflictPath("f", t, std::string(1000, 'k')),
            "f.sync-conflict-19700101-000000-" + std::string(64, 'k'));
}

TEST(ConflictPath, CutsTheNameToKeepTheBasenameWithin255Bytes) {
  const int64_t t = k20261129T140500Z;
  const std::string suffix = ".sync-conflict-20261129-140500-n";  // 32 bytes
  const std::string conflict = ConflictPath("d/" + std::string(251, 'x') + ".txt", t, "n");
  EXPECT_EQ(conflict, "d/" + std::string(255 - 32 - 4, 'x') + suffix + ".txt");
  EXPECT_TRUE(Valid(conflict));
  // Never inside a UTF-8 sequence: 219 bytes of room for NAME hold 109 'é'.
  const std::string accented = ConflictPath(Repeat("\xc3\xa9", 125) + ".txt", t, "n");
  EXPECT_EQ(accented, Repeat("\xc3\xa9", 109) + suffix + ".txt");
  EXPECT_TRUE(Valid(accented));
  // A huge extension is cut once NAME is down to its first character.
  const std::string long_ext = ConflictPath("a." + std::string(253, 'e'), t, "n");
  EXPECT_EQ(long_ext, "a" + suffix + "." + std::string(255 - 1 - 32 - 1, 'e'));
  EXPECT_TRUE(Valid(long_ext));
  // A hidden file stays hidden (NAME keeps its first character).
  const std::string hidden = ConflictPath("." + std::string(254, 'h'), t, "n");
  EXPECT_EQ(BaseName(hidden).size(), 255u);
  EXPECT_EQ(hidden.front(), '.');
  EXPECT_TRUE(Valid(hidden));
  // A four-byte first character is kept whole.
  const std::string emoji = ConflictPath("\xf0\x9f\x98\x80." + std::string(250, 'e'), t, "n");
  EXPECT_TRUE(emoji.starts_with("\xf0\x9f\x98\x80" + suffix + "."));
  EXPECT_TRUE(Valid(emoji)) << CheckSyncPath(emoji).message();
  // A long node name too.
  const std::string node = ConflictPath(std::string(255, 'x'), t, std::string(300, 'k'));
  EXPECT_EQ(BaseName(node).size(), 255u);
  EXPECT_TRUE(Valid(node));
}

TEST(ConflictPath, KeepsDeepPathsValid) {
  // Whatever room the directory leaves, the result is a valid sync path, and not the original.
  for (size_t parent_size = 3800; parent_size <= 4094; ++parent_size) {
    std::string parent;
    while (parent.size() < parent_size) {
      if (!parent.empty()) parent += '/';
      parent += std::string(std::min<size_t>(200, parent_size - parent.size()), 'p');
    }
    if (parent.back() == '/') continue;
    for (const std::string& base : {"f.txt"s, ".x"s, "s"s, "\xc3\xa9\xc3\xa9.txt"s}) {
      const std::string path = parent + "/" + base;
      if (!Valid(path)) continue;
      const std::string conflict = ConflictPath(path, k20261129T140500Z, "node-1");
      EXPECT_TRUE(Valid(conflict))
          << parent_size << " " << base << ": " << CheckSyncPath(conflict).message();
      EXPECT_EQ(ParentOf(conflict), parent);
      if (base != "s") {  // "s" is a prefix of the cut "sync-conflict-..."
        EXPECT_NE(conflict, path);
      }
    }
  }
}

}  // namespace
}  // namespace synod
