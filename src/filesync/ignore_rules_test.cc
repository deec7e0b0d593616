#include "filesync/ignore_rules.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace synod {
namespace {

using std::string_literals::operator""s;

IgnoreRules Rules(std::string_view text) {
  auto parsed = IgnoreRules::Parse(text);
  EXPECT_TRUE(parsed.ok()) << parsed.error();
  return parsed.ok() ? std::move(parsed).value() : IgnoreRules();
}

Status ParseError(std::string_view text) {
  auto parsed = IgnoreRules::Parse(text);
  EXPECT_FALSE(parsed.ok()) << "accepted: " << text.substr(0, 200);
  return parsed.status();
}

bool File(const IgnoreRules& rules, std::string_view path) { return rules.Ignored(path, false); }
bool Dir(const IgnoreRules& rules, std::string_view path) { return rules.Ignored(path, true); }

// --- Parsing: comments, blanks, whitespace, escapes ---

TEST(IgnoreRulesParse, NoRulesIgnoresNothing) {
  const IgnoreRules none;
  EXPECT_EQ(none.size(), 0u);
  EXPECT_FALSE(File(none, "a"));
  EXPECT_FALSE(Dir(none, "a/b"));
  EXPECT_EQ(Rules("").size(), 0u);
  EXPECT_EQ(Rules("\n\n").size(), 0u);
}

TEST(IgnoreRulesParse, SkipsBlankLinesAndComments) {
  const IgnoreRules rules = Rules("# build output\n\n   \n*.o\n  # not a comment\n#*.c\n");
  EXPECT_EQ(rules.size(), 2u);
  EXPECT_TRUE(File(rules, "main.o"));
  EXPECT_FALSE(File(rules, "main.c"));
  EXPECT_TRUE(File(rules, "  # not a comment"));  // '#' only starts a comment in column 0
}

TEST(IgnoreRulesParse, BackslashHashIsALiteralHash) {
  const IgnoreRules rules = Rules("\\#notes\n");
  EXPECT_EQ(rules.size(), 1u);
  EXPECT_TRUE(File(rules, "#notes"));
  EXPECT_TRUE(File(rules, "a/#notes"));
  EXPECT_FALSE(File(rules, "notes"));
}

TEST(IgnoreRulesParse, TrimsTrailingSpacesUnlessEscaped) {
  const IgnoreRules trimmed = Rules("foo   \n");
  EXPECT_TRUE(File(trimmed, "foo"));
  EXPECT_FALSE(File(trimmed, "foo "));
  const IgnoreRules escaped = Rules("foo\\ \n");
  EXPECT_TRUE(File(escaped, "foo "));
  EXPECT_FALSE(File(escaped, "foo"));
  const IgnoreRules escaped_then_more = Rules("foo\\    \n");  // one escaped space survives
  EXPECT_TRUE(File(escaped_then_more, "foo "));
  const IgnoreRules escaped_backslash = Rules("foo\\\\ \n");  // "foo\\ ": the space goes
  EXPECT_TRUE(File(escaped_backslash, "foo\\"));
  EXPECT_FALSE(File(escaped_backslash, "foo\\ "));
  const IgnoreRules inner = Rules("a b\n");  // inner spaces are kept
  EXPECT_TRUE(File(inner, "a b"));
  EXPECT_FALSE(File(inner, "ab"));
}

TEST(IgnoreRulesParse, StripsCarriageReturns) {
  const IgnoreRules rules = Rules("# windows\r\n*.tmp\r\nbuild/\r\n\r\nlast\r");
  EXPECT_EQ(rules.size(), 3u);
  EXPECT_TRUE(File(rules, "x.tmp"));
  EXPECT_TRUE(Dir(rules, "build"));
  EXPECT_FALSE(File(rules, "build"));
  EXPECT_TRUE(File(rules, "last"));
}

TEST(IgnoreRulesParse, LastLineNeedsNoNewline) { EXPECT_TRUE(File(Rules("a\nb"), "b")); }

// --- Negation and order ---

TEST(IgnoreRulesNegation, ALaterRuleWins) {
  const IgnoreRules rules = Rules("*.log\n!keep.log\n");
  EXPECT_TRUE(File(rules, "debug.log"));
  EXPECT_FALSE(File(rules, "keep.log"));
  EXPECT_FALSE(File(rules, "a/b/keep.log"));
  const IgnoreRules reversed = Rules("!keep.log\n*.log\n");
  EXPECT_TRUE(File(reversed, "keep.log"));
  const IgnoreRules again = Rules("*.log\n!keep.log\nkeep.log\n");
  EXPECT_TRUE(File(again, "keep.log"));
}

TEST(IgnoreRulesNegation, BackslashBangIsALiteralBang) {
  const IgnoreRules rules = Rules("\\!important!.txt\n");
  EXPECT_TRUE(File(rules, "!important!.txt"));
  EXPECT_FALSE(File(rules, "important!.txt"));
}

TEST(IgnoreRulesNegation, CannotReincludeAFileInsideAnIgnoredDirectory) {
  // gitignore: "It is not possible to re-include a file if a parent directory of that file is
  // excluded."
  const IgnoreRules rules = Rules("build/\n!build/keep.txt\n");
  EXPECT_TRUE(File(rules, "build/keep.txt"));
  EXPECT_TRUE(Dir(rules, "build"));
  const IgnoreRules deep = Rules("/a\n!/a/b/c\n!/a/b\n");
  EXPECT_TRUE(File(deep, "a/b/c"));
}

TEST(IgnoreRulesNegation, ButCanReincludeWhenOnlyTheContentsAreIgnored) {
  const IgnoreRules rules = Rules("build/*\n!build/keep.txt\n");
  EXPECT_FALSE(Dir(rules, "build"));
  EXPECT_FALSE(File(rules, "build/keep.txt"));
  EXPECT_TRUE(File(rules, "build/other.txt"));
  EXPECT_TRUE(File(rules, "build/sub/keep.txt"));  // build/sub is ignored
}

TEST(IgnoreRulesNegation, GitDocumentationExcludeEverythingExceptFooBar) {
  const IgnoreRules rules = Rules(
      "# exclude everything except directory foo/bar\n"
      "/*\n"
      "!/foo\n"
      "/foo/*\n"
      "!/foo/bar\n");
  EXPECT_EQ(rules.size(), 4u);
  EXPECT_FALSE(Dir(rules, "foo"));
  EXPECT_FALSE(Dir(rules, "foo/bar"));
  EXPECT_FALSE(File(rules, "foo/bar/file.c"));
  EXPECT_FALSE(File(rules, "foo/bar/deep/file.c"));
  EXPECT_TRUE(File(rules, "foo/baz"));
  EXPECT_TRUE(File(rules, "foo/baz/file.c"));
  EXPECT_TRUE(File(rules, "top.txt"));
  EXPECT_TRUE(File(rules, "other/foo/bar"));
}

// --- Directory-only patterns ---

TEST(IgnoreRulesDirectoryOnly, TrailingSlashMatchesDirectoriesOnly) {
  // gitignore: "frotz/" matches "frotz" and "a/frotz" that is a directory.
  const IgnoreRules rules = Rules("frotz/\n");
  EXPECT_TRUE(Dir(rules, "frotz"));
  EXPECT_TRUE(Dir(rules, "a/frotz"));
  EXPECT_TRUE(File(rules, "a/frotz/file"));
  EXPECT_FALSE(File(rules, "frotz"));
  EXPECT_FALSE(File(rules, "a/frotz"));
  EXPECT_FALSE(File(rules, "frotz2/file"));
}

TEST(IgnoreRulesDirectoryOnly, NegatedDirectoryOnly) {
  const IgnoreRules rules = Rules("cache*\n!cache/\n");
  EXPECT_FALSE(Dir(rules, "cache"));
  EXPECT_FALSE(File(rules, "cache/x"));
  EXPECT_TRUE(File(rules, "cache"));  // a file named cache: the negation is for directories
  EXPECT_TRUE(File(rules, "cache.db"));
}

// --- Anchoring ---

TEST(IgnoreRulesAnchoring, LeadingSlashAnchorsAtTheRoot) {
  const IgnoreRules rules = Rules("/TODO\n");
  EXPECT_TRUE(File(rules, "TODO"));
  EXPECT_FALSE(File(rules, "src/TODO"));
}

TEST(IgnoreRulesAnchoring, MiddleSlashAnchorsAtTheRoot) {
  // gitignore: "doc/frotz/" matches "doc/frotz" but not "a/doc/frotz"; "doc/frotz" and
  // "/doc/frotz" have the same effect.
  for (const char* text : {"doc/frotz/\n", "doc/frotz\n", "/doc/frotz\n"}) {
    const IgnoreRules rules = Rules(text);
    EXPECT_TRUE(Dir(rules, "doc/frotz")) << text;
    EXPECT_TRUE(File(rules, "doc/frotz/x")) << text;
    EXPECT_FALSE(Dir(rules, "a/doc/frotz")) << text;
  }
}

TEST(IgnoreRulesAnchoring, NoSlashMatchesTheBasenameAtAnyDepth) {
  const IgnoreRules rules = Rules("node_modules\n*.pyc\n");
  EXPECT_TRUE(Dir(rules, "node_modules"));
  EXPECT_TRUE(Dir(rules, "web/app/node_modules"));
  EXPECT_TRUE(File(rules, "web/app/node_modules/react/index.js"));
  EXPECT_TRUE(File(rules, "a/b/c.pyc"));
  EXPECT_FALSE(File(rules, "a/node_modules2"));
}

TEST(IgnoreRulesAnchoring, GitDocumentationHelloStar) {
  // "hello.*" matches any file or directory whose name begins with "hello.".
  const IgnoreRules rules = Rules("hello.*\n");
  EXPECT_TRUE(File(rules, "hello.c"));
  EXPECT_TRUE(Dir(rules, "a/hello.d"));
  EXPECT_FALSE(File(rules, "hello"));
  EXPECT_FALSE(File(rules, "ahello.c"));
}

TEST(IgnoreRulesAnchoring, GitDocumentationDocStarHtml) {
  // "doc/frotz/*.html"-style: a '*' does not cross '/'.
  const IgnoreRules rules = Rules("doc/*.html\n");
  EXPECT_TRUE(File(rules, "doc/index.html"));
  EXPECT_FALSE(File(rules, "doc/api/index.html"));
  EXPECT_FALSE(File(rules, "a/doc/index.html"));
}

TEST(IgnoreRulesAnchoring, GitDocumentationFooStar) {
  // "foo/*" matches "foo/test.json" and the directory "foo/bar", not "foo/bar/hello.c" itself;
  // that one is ignored all the same, because its directory is.
  const IgnoreRules rules = Rules("foo/*\n");
  EXPECT_TRUE(File(rules, "foo/test.json"));
  EXPECT_TRUE(Dir(rules, "foo/bar"));
  EXPECT_TRUE(File(rules, "foo/bar/hello.c"));
  EXPECT_FALSE(Dir(rules, "foo"));
  EXPECT_FALSE(File(rules, "a/foo/test.json"));
  const IgnoreRules reincluded = Rules("foo/*\n!foo/bar/\n");
  EXPECT_FALSE(File(reincluded, "foo/bar/hello.c"));
}

// --- Wildcards ---

TEST(IgnoreRulesWildcards, StarMatchesAnyRunWithinAComponent) {
  const IgnoreRules rules = Rules("a*b\n");
  EXPECT_TRUE(File(rules, "ab"));
  EXPECT_TRUE(File(rules, "axxxb"));
  EXPECT_TRUE(File(rules, "a*b"));
  EXPECT_FALSE(File(rules, "axxxbc"));
  const IgnoreRules anchored = Rules("/a*b\n");
  EXPECT_FALSE(File(anchored, "ax/yb"));
  const IgnoreRules everything = Rules("*\n");
  EXPECT_TRUE(File(everything, ".hidden"));  // no special case for dot files
  EXPECT_TRUE(File(everything, "x/y"));
  const IgnoreRules dot_o = Rules("*.o\n");
  EXPECT_TRUE(File(dot_o, ".o"));
  EXPECT_FALSE(File(dot_o, "o"));
}

TEST(IgnoreRulesWildcards, QuestionMarkMatchesOneCharacter) {
  const IgnoreRules rules = Rules("?.c\n");
  EXPECT_TRUE(File(rules, "a.c"));
  EXPECT_TRUE(File(rules, "\xc3\xa9.c"));          // é: one character, two bytes
  EXPECT_TRUE(File(rules, "\xf0\x9f\x98\x80.c"));  // an emoji: one character, four bytes
  EXPECT_FALSE(File(rules, "ab.c"));
  EXPECT_FALSE(File(rules, ".c"));
  const IgnoreRules anchored = Rules("a?b/c\n");
  EXPECT_FALSE(File(anchored, "a/b/c"));  // '?' never matches '/'
  EXPECT_TRUE(File(anchored, "axb/c"));
}

TEST(IgnoreRulesWildcards, BracketClasses) {
  const IgnoreRules set = Rules("[abc].txt\n");
  EXPECT_TRUE(File(set, "a.txt"));
  EXPECT_TRUE(File(set, "c.txt"));
  EXPECT_FALSE(File(set, "d.txt"));
  EXPECT_FALSE(File(set, "ab.txt"));
  const IgnoreRules range = Rules("log[0-9][0-9]\n");
  EXPECT_TRUE(File(range, "log07"));
  EXPECT_FALSE(File(range, "log7"));
  EXPECT_FALSE(File(range, "log7a"));
  for (const char* text : {"[!a]x\n", "[^a]x\n"}) {
    const IgnoreRules negated = Rules(text);
    EXPECT_TRUE(File(negated, "bx")) << text;
    EXPECT_TRUE(File(negated, "\xc3\xa9x")) << text;
    EXPECT_FALSE(File(negated, "ax")) << text;
    EXPECT_FALSE(File(negated, "x")) << text;
  }
  const IgnoreRules bracket_first = Rules("[]a]\n");  // ']' first is a member
  EXPECT_TRUE(File(bracket_first, "]"));
  EXPECT_TRUE(File(bracket_first, "a"));
  const IgnoreRules negated_bracket = Rules("[!]]\n");
  EXPECT_FALSE(File(negated_bracket, "]"));
  EXPECT_TRUE(File(negated_bracket, "x"));
  const IgnoreRules dash = Rules("[a-]\n[-z]\n");  // a '-' at either end is a member
  EXPECT_TRUE(File(dash, "-"));
  EXPECT_TRUE(File(dash, "a"));
  EXPECT_TRUE(File(dash, "z"));
  EXPECT_FALSE(File(dash, "m"));
  const IgnoreRules escaped = Rules("[\\]\\\\]\n");  // ']' and '\' escaped inside
  EXPECT_TRUE(File(escaped, "]"));
  EXPECT_TRUE(File(escaped, "\\"));
  EXPECT_FALSE(File(escaped, "a"));
  const IgnoreRules unicode = Rules("[\xc3\xa0-\xc3\xbc]\n");  // à-ü
  EXPECT_TRUE(File(unicode, "\xc3\xa9"));                      // é
  EXPECT_FALSE(File(unicode, "e"));
  const IgnoreRules posix = Rules("[[:digit:]][[:upper:]][[:space:][:punct:]]\n");
  EXPECT_TRUE(File(posix, "1A "));
  EXPECT_TRUE(File(posix, "9Z!"));
  EXPECT_FALSE(File(posix, "1a "));
  const IgnoreRules not_posix = Rules("[[:x]\n");  // no ":]": '[' and ':' are members
  EXPECT_TRUE(File(not_posix, "["));
  EXPECT_TRUE(File(not_posix, ":"));
  const IgnoreRules slash = Rules("a[/]b\n");  // a class never matches '/'
  EXPECT_FALSE(File(slash, "a/b"));
}

TEST(IgnoreRulesWildcards, BackslashEscapesWildcards) {
  const IgnoreRules rules = Rules("\\*\n\\?x\n\\[a]\n");
  EXPECT_TRUE(File(rules, "*"));
  EXPECT_FALSE(File(rules, "anything"));
  EXPECT_TRUE(File(rules, "?x"));
  EXPECT_FALSE(File(rules, "ax"));
  EXPECT_TRUE(File(rules, "[a]"));
  EXPECT_FALSE(File(rules, "a"));
  const IgnoreRules not_globstar = Rules("a/\\*\\*/b\n");
  EXPECT_TRUE(File(not_globstar, "a/**/b"));
  EXPECT_FALSE(File(not_globstar, "a/x/b"));
}

TEST(IgnoreRulesWildcards, MatchingIsCaseSensitive) {
  const IgnoreRules rules = Rules("Makefile\n");
  EXPECT_TRUE(File(rules, "Makefile"));
  EXPECT_FALSE(File(rules, "makefile"));
}

TEST(IgnoreRulesWildcards, UnicodeLiterals) {
  const IgnoreRules rules = Rules("caf\xc3\xa9*\n");
  EXPECT_TRUE(File(rules, "caf\xc3\xa9"));
  EXPECT_TRUE(File(rules, "caf\xc3\xa9-menu.txt"));
  EXPECT_FALSE(File(rules, "cafe"));
}

// --- "**" ---

TEST(IgnoreRulesGlobstar, LeadingMatchesAnyLeadingDirectories) {
  // gitignore: "**/foo" matches file or directory "foo" anywhere; "**/foo/bar" matches "bar"
  // anywhere directly under a directory "foo".
  const IgnoreRules foo = Rules("**/foo\n");
  EXPECT_TRUE(File(foo, "foo"));
  EXPECT_TRUE(File(foo, "a/foo"));
  EXPECT_TRUE(Dir(foo, "a/b/c/foo"));
  EXPECT_FALSE(File(foo, "a/foo2"));
  const IgnoreRules foo_bar = Rules("**/foo/bar\n");
  EXPECT_TRUE(File(foo_bar, "foo/bar"));
  EXPECT_TRUE(File(foo_bar, "x/y/foo/bar"));
  EXPECT_FALSE(File(foo_bar, "foo/x/bar"));
  EXPECT_FALSE(File(foo_bar, "bar"));
}

TEST(IgnoreRulesGlobstar, TrailingMatchesEverythingInside) {
  // gitignore: "abc/**" matches all files inside directory "abc", relative to the root.
  const IgnoreRules rules = Rules("abc/**\n");
  EXPECT_TRUE(File(rules, "abc/x"));
  EXPECT_TRUE(File(rules, "abc/x/y/z"));
  EXPECT_FALSE(Dir(rules, "abc"));  // not the directory itself
  EXPECT_FALSE(File(rules, "abc"));
  EXPECT_FALSE(File(rules, "a/abc/x"));
  // So a negation can still take something inside back, unlike with "abc/".
  const IgnoreRules reincluded = Rules("abc/**\n!abc/keep\n");
  EXPECT_FALSE(File(reincluded, "abc/keep"));
  EXPECT_TRUE(File(reincluded, "abc/other"));
  const IgnoreRules directories_inside = Rules("abc/**/\n");
  EXPECT_TRUE(Dir(directories_inside, "abc/d"));
  EXPECT_FALSE(File(directories_inside, "abc/f"));
  const IgnoreRules root = Rules("/**\n");
  EXPECT_TRUE(File(root, "x"));
  EXPECT_TRUE(File(root, "x/y"));
}

TEST(IgnoreRulesGlobstar, MiddleMatchesZeroOrMoreDirectories) {
  // gitignore: "a/**/b" matches "a/b", "a/x/b", "a/x/y/b" and so on.
  const IgnoreRules rules = Rules("a/**/b\n");
  EXPECT_TRUE(File(rules, "a/b"));
  EXPECT_TRUE(File(rules, "a/x/b"));
  EXPECT_TRUE(File(rules, "a/x/y/b"));
  EXPECT_TRUE(File(rules, "a/b/inside"));
  EXPECT_FALSE(File(rules, "a/x/y/c"));
  EXPECT_FALSE(File(rules, "z/a/b"));
  const IgnoreRules twice = Rules("a/**/m/**/z\n");
  EXPECT_TRUE(File(twice, "a/m/z"));
  EXPECT_TRUE(File(twice, "a/1/m/2/3/z"));
  EXPECT_FALSE(File(twice, "a/1/2/3/z"));
  const IgnoreRules both = Rules("**/logs/**/*.log\n");
  EXPECT_TRUE(File(both, "logs/a.log"));
  EXPECT_TRUE(File(both, "srv/logs/2026/11/a.log"));
  EXPECT_FALSE(File(both, "srv/logs/2026/11/a.txt"));
}

TEST(IgnoreRulesGlobstar, OtherRunsOfStarsActAsOneStar) {
  const IgnoreRules rules = Rules("a**b\n/x/y**\n");
  EXPECT_TRUE(File(rules, "axyzb"));
  EXPECT_FALSE(File(rules, "a/x/b"));
  EXPECT_TRUE(File(rules, "x/yes"));
  EXPECT_FALSE(File(rules, "x/no"));
  const IgnoreRules unanchored = Rules("**\n");
  EXPECT_TRUE(File(unanchored, "any/thing"));
}

// --- Errors and hostile input ---

TEST(IgnoreRulesErrors, MalformedLinesNameTheLine) {
  const struct {
    const char* text;
    const char* message;
  } kCases[] = {
      {"ok\n[abc\n", ".synodignore line 2: unclosed '[' in \"[abc\""},
      {"a[\n", ".synodignore line 1: unclosed '[' in \"a[\""},
      {"[]\n", ".synodignore line 1: unclosed '[' in \"[]\""},
      {"[!]\n", ".synodignore line 1: unclosed '[' in \"[!]\""},
      {"[a\\]\n", ".synodignore line 1: unclosed '[' in \"[a\\\\]\""},
      {"#\n\n[z-a]\n", ".synodignore line 3: reversed range in '[...]' in \"[z-a]\""},
      {"[[:alfa:]]\n",
       ".synodignore line 1: unknown character class \"[:alfa:]\" in "
       "\"[[:alfa:]]\""},
      {"foo\\\n", ".synodignore line 1: lone '\\' at the end in \"foo\\\\\""},
      {"!\n", ".synodignore line 1: no pattern in \"!\""},
      {"/\n", ".synodignore line 1: no pattern in \"/\""},
      {"!/\n", ".synodignore line 1: no pattern in \"!/\""},
      {"a\rb\n", ".synodignore line 1: control character at byte 1 in \"a\\x0db\""},
      {"x\n\xff\n", ".synodignore line 2: invalid UTF-8 at byte 0 (invalid byte) in \"\\xff\""},
      {"\xc0\xae\xc0\xae\n",
       ".synodignore line 1: invalid UTF-8 at byte 0 (overlong encoding) "
       "in \"\\xc0\\xae\\xc0\\xae\""},
  };
  for (const auto& c : kCases) {
    const Status status = ParseError(c.text);
    EXPECT_EQ(status.code(), StatusCode::kInvalid) << c.text;
    EXPECT_EQ(status.message(), c.message);
  }
}

TEST(IgnoreRulesErrors, NulBytesAreRejected) {
  const Status status = ParseError("a\0b\n"s);
  EXPECT_EQ(status.code(), StatusCode::kInvalid);
  EXPECT_EQ(status.message(), ".synodignore line 1: control character at byte 1 in \"a\\x00b\"");
  EXPECT_EQ(ParseError("# comment\0\n"s).code(), StatusCode::kInvalid);  // in comments too
  EXPECT_EQ(ParseError("\0"s).code(), StatusCode::kInvalid);
}

TEST(IgnoreRulesErrors, TabsAreKeptLiterallyAndMatchNoSyncPath) {
  const IgnoreRules rules = Rules("a\tb\n\t\n");
  EXPECT_EQ(rules.size(), 2u);
  EXPECT_FALSE(File(rules, "ab"));
  EXPECT_FALSE(File(rules, "a b"));
}

TEST(IgnoreRulesErrors, LineLengthLimit) {
  const std::string longest(kMaxIgnoreLineBytes, 'x');
  EXPECT_TRUE(File(Rules("a\n" + longest + "\r\n"), longest));
  const Status status = ParseError("a\n" + longest + "y\n");
  EXPECT_EQ(status.code(), StatusCode::kTooLarge);
  EXPECT_EQ(status.message(), ".synodignore line 2: 4097 bytes long, over the limit of 4096");
  EXPECT_EQ(ParseError("#" + std::string(1'000'000, 'c')).code(), StatusCode::kTooLarge);
  EXPECT_EQ(ParseError(std::string(1'000'000, ' ')).code(), StatusCode::kTooLarge);
}

TEST(IgnoreRulesErrors, RuleCountLimit) {
  std::string text;
  for (size_t i = 0; i < kMaxIgnoreRules; ++i) text += "f" + std::to_string(i) + "\n# c\n\n";
  const IgnoreRules rules = Rules(text);
  EXPECT_EQ(rules.size(), kMaxIgnoreRules);
  EXPECT_TRUE(File(rules, "dir/f9999"));
  EXPECT_FALSE(File(rules, "dir/f10000"));
  const Status status = ParseError(text + "\nf10000\n");
  EXPECT_EQ(status.code(), StatusCode::kTooLarge);
  EXPECT_EQ(status.message(), ".synodignore line 30002: more than 10000 rules");
}

TEST(IgnoreRulesErrors, OddPathsGetAnAnswerWithoutTrouble) {
  const IgnoreRules rules = Rules("*\n");
  EXPECT_TRUE(File(rules, "a//b"));
  EXPECT_TRUE(File(rules, "\xff\xfe"));
  EXPECT_TRUE(File(rules, "a\0b"s));
  EXPECT_TRUE(File(rules, ""));
  const IgnoreRules strict = Rules("x\n[!a]\n");
  EXPECT_FALSE(File(strict, ""));
  EXPECT_TRUE(File(strict, "\xff"));  // an invalid byte is "not 'a'"
  EXPECT_FALSE(File(strict, "a/"));
}

// --- No exponential blow-up ---

// A backtracking matcher needs on the order of C(n, k) steps for k stars against n characters
// that almost match; these run in well under a second with a polynomial one.
TEST(IgnoreRulesPerformance, ManyStarsAgainstLongNames) {
  const auto start = std::chrono::steady_clock::now();
  std::string stars;
  for (int i = 0; i < 30; ++i) stars += "*a";
  const IgnoreRules rules = Rules("*a*a*a*a*b\n" + stars + "*b\n[a]*[a]*[a]*?*[a]*b\n");
  const std::string name(255, 'a');
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(File(rules, name));
    EXPECT_FALSE(File(rules, "d/" + name));
  }
  EXPECT_TRUE(File(rules, name + "b"));
  // A 4096-byte line of stars.
  std::string long_stars;
  while (long_stars.size() + 2 < kMaxIgnoreLineBytes) long_stars += "*a";
  const IgnoreRules long_rules = Rules(long_stars + "*b\n");
  EXPECT_FALSE(File(long_rules, name));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(IgnoreRulesPerformance, ManyGlobstarsAgainstDeepPaths) {
  const auto start = std::chrono::steady_clock::now();
  const IgnoreRules rules = Rules("**/a/**/a/**/a/**/a/**/a/**/b\n/**/a*a*a*a*b/**/c\n");
  std::string deep = "a";
  while (deep.size() + 2 <= 4096) deep += "/a";  // 2048 components, 4095 bytes
  EXPECT_FALSE(File(rules, deep));
  EXPECT_FALSE(Dir(rules, deep));
  EXPECT_TRUE(File(rules, deep.substr(0, 4091) + "/b"));  // 4093 bytes
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace synod
