// .synodignore: which paths of a synced folder are neither announced nor synced.
//
// The file has gitignore semantics (https://git-scm.com/docs/gitignore), one pattern a line:
//  - blank lines and lines starting with '#' are skipped ("\#" starts a pattern with '#'); a
//    trailing '\r' is stripped (CRLF files); trailing spaces are trimmed unless escaped ("a\ ");
//  - a leading '!' negates the pattern: a path it matches is included again ("\!" starts a
//    pattern with '!'); among the rules that match a path, the last one decides;
//  - a trailing '/' matches directories only;
//  - a pattern with a '/' at the start or in the middle is anchored at the folder root ("/a",
//    "a/b"); otherwise it matches the basename at any depth ("*.o", "build");
//  - '*' matches any run of characters other than '/', '?' one character other than '/',
//    "[abc]", "[a-z]", "[!a]" or "[^a]" one character in (or not in) a set, with the POSIX
//    classes "[[:alpha:]]" etc. (ASCII only); '\' makes the next character literal;
//  - "**/" at the start matches any leading directories (also none), "/**" at the end everything
//    inside, "/**/" zero or more directories; other runs of '*' act as a single '*'.
// Characters are UTF-8 code points ('?' matches "é" as one character); matching is case
// sensitive. As in git, a path is ignored if it or any of its parent directories is ignored, and
// a negation cannot re-include a path whose parent directory is ignored.
//
// Parse is linear in the size of the text (callers cap how much of a file they read), and
// matching takes time polynomial in the pattern and path lengths for any input: no backtracking
// blow-up. An IgnoreRules is immutable after Parse, and safe to use from several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace synod {

inline constexpr size_t kMaxIgnoreLineBytes = 4096;
inline constexpr size_t kMaxIgnoreRules = 10'000;

class IgnoreRules {
 public:
  // No rules: ignores nothing (a folder without a .synodignore).
  IgnoreRules() = default;

  // Errors name the 1-based line: Invalid for a malformed line (an unclosed '[', a reversed
  // range "[z-a]", an unknown class "[[:foo:]]", a lone trailing '\', a lone "!" or "/", a
  // control character other than tab, invalid UTF-8); TooLarge for a line over 4096 bytes (the
  // '\n' and a trailing '\r' not counted) or more than 10,000 rules.
  static Result<IgnoreRules> Parse(std::string_view text);

  // Whether `path` (a sync path, see CheckSyncPath; anything else gets a defined but unspecified
  // answer) is ignored; `is_directory` says whether it names a directory. Its parent directories
  // are directories.
  bool Ignored(std::string_view path, bool is_directory) const;

  // The number of rules: the lines that are not blank or comments.
  size_t size() const { return rules_.size(); }

 private:
  struct CharClass {
    std::vector<std::pair<char32_t, char32_t>> ranges;  // inclusive
    bool negated = false;
  };
  // One character of a component: a literal, '?', a class, or '*' (any run).
  struct Unit {
    enum Kind : uint8_t { kLiteral, kAnyChar, kClass, kStar };
    Kind kind = kLiteral;
    char32_t literal = 0;
    uint32_t class_index = 0;  // into Rule::classes
  };
  // One component of an anchored pattern: a glob, "**" (zero or more components), or any one
  // component (a trailing "/**" becomes "any one" then "**").
  struct Segment {
    enum Kind : uint8_t { kGlob, kGlobstar, kAnyComponent };
    Kind kind = kGlob;
    std::vector<Unit> units;
  };
  struct Rule {
    std::vector<Segment> segments;  // exactly one kGlob if !anchored
    std::vector<CharClass> classes;
    bool negated = false;
    bool directory_only = false;
    bool anchored = false;
  };

  static Status ParseRule(std::string_view line, size_t line_number, Rule& rule);
  static bool MatchGlob(const Rule& rule, const std::vector<Unit>& units,
                        const std::vector<char32_t>& component);
  static bool MatchRule(const Rule& rule, const std::vector<std::vector<char32_t>>& components,
                        size_t count, bool is_directory);

  std::vector<Rule> rules_;
};

}  // namespace synod
