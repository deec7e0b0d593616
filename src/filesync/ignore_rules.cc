#include "filesync/ignore_rules.h"

#include <string>

#include "filesync/utf8.h"

namespace synod {
namespace {

// Path bytes that are not valid UTF-8 become these, which no literal or class range matches.
constexpr char32_t kInvalidByteBase = 0x110000;

Status LineError(StatusCode code, size_t line_number, const std::string& what) {
  return Status(code, ".synodignore line " + std::to_string(line_number) + ": " + what);
}

Status LineInvalid(size_t line_number, std::string_view line, const std::string& what) {
  return LineError(StatusCode::kInvalid, line_number, what + " in " + QuoteForMessage(line));
}

// Adds the ASCII ranges of POSIX class `name` ("alpha", ...); false if there is no such class.
bool AddPosixClass(std::string_view name, std::vector<std::pair<char32_t, char32_t>>& ranges) {
  using R = std::pair<char32_t, char32_t>;
  if (name == "alnum") {
    ranges.insert(ranges.end(), {R{'0', '9'}, R{'A', 'Z'}, R{'a', 'z'}});
  } else if (name == "alpha") {
    ranges.insert(ranges.end(), {R{'A', 'Z'}, R{'a', 'z'}});
  } else if (name == "blank") {
    ranges.insert(ranges.end(), {R{' ', ' '}, R{'\t', '\t'}});
  } else if (name == "cntrl") {
    ranges.insert(ranges.end(), {R{0, 0x1f}, R{0x7f, 0x7f}});
  } else if (name == "digit") {
    ranges.push_back(R{'0', '9'});
  } else if (name == "graph") {
    ranges.push_back(R{0x21, 0x7e});
  } else if (name == "lower") {
    ranges.push_back(R{'a', 'z'});
  } else if (name == "print") {
    ranges.push_back(R{0x20, 0x7e});
  } else if (name == "punct") {
    ranges.insert(ranges.end(), {R{0x21, 0x2f}, R{0x3a, 0x40}, R{0x5b, 0x60}, R{0x7b, 0x7e}});
  } else if (name == "space") {
    ranges.insert(ranges.end(), {R{'\t', '\r'}, R{' ', ' '}});
  } else if (name == "upper") {
    ranges.push_back(R{'A', 'Z'});
  } else if (name == "xdigit") {
    ranges.insert(ranges.end(), {R{'0', '9'}, R{'A', 'F'}, R{'a', 'f'}});
  } else {
    return false;
  }
  return true;
}

std::vector<std::vector<char32_t>> DecodeComponents(std::string_view path) {
  std::vector<std::vector<char32_t>> components(1);
  for (size_t at = 0; at < path.size();) {
    if (path[at] == '/') {
      components.emplace_back();
      ++at;
      continue;
    }
    const Utf8Char decoded = DecodeUtf8(path, at);
    components.back().push_back(decoded.error == nullptr
                                    ? decoded.code_point
                                    : kInvalidByteBase + static_cast<unsigned char>(path[at]));
    at += decoded.length;
  }
  return components;
}

}  // namespace

Result<IgnoreRules> IgnoreRules::Parse(std::string_view text) {
  IgnoreRules rules;
  size_t line_number = 0;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;

    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.size() > kMaxIgnoreLineBytes) {
      return LineError(StatusCode::kTooLarge, line_number,
                       std::to_string(line.size()) + " bytes long, over the limit of " +
                           std::to_string(kMaxIgnoreLineBytes));
    }
    for (size_t at = 0; at < line.size();) {
      const auto byte = static_cast<unsigned char>(line[at]);
      if ((byte < 0x20 && byte != '\t') || byte == 0x7f) {
        return LineInvalid(line_number, line, "control character at byte " + std::to_string(at));
      }
      const Utf8Char decoded = DecodeUtf8(line, at);
      if (decoded.error != nullptr) {
        return LineInvalid(
            line_number, line,
            "invalid UTF-8 at byte " + std::to_string(at) + " (" + decoded.error + ")");
      }
      at += decoded.length;
    }
    // Trailing spaces go unless escaped: "a\ " keeps one, "a\\ " (an escaped '\') keeps none.
    while (line.ends_with(' ')) {
      size_t backslashes = 0;
      while (backslashes + 1 < line.size() && line[line.size() - 2 - backslashes] == '\\') {
        ++backslashes;
      }
      if (backslashes % 2 == 1) break;
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#') continue;

    if (rules.rules_.size() == kMaxIgnoreRules) {
      return LineError(StatusCode::kTooLarge, line_number,
                       "more than " + std::to_string(kMaxIgnoreRules) + " rules");
    }
    Rule rule;
    if (Status status = ParseRule(line, line_number, rule); !status.ok()) return status;
    rules.rules_.push_back(std::move(rule));
  }
  return rules;
}

Status IgnoreRules::ParseRule(std::string_view line, size_t line_number, Rule& rule) {
  std::string_view pattern = line;
  if (pattern.starts_with('!')) {
    rule.negated = true;
    pattern.remove_prefix(1);
  }
  if (pattern.ends_with('/')) {
    rule.directory_only = true;
    pattern.remove_suffix(1);
  }
  if (pattern.empty()) return LineInvalid(line_number, line, "no pattern");
  rule.anchored = pattern.find('/') != std::string_view::npos;
  if (pattern.starts_with('/')) pattern.remove_prefix(1);

  // Reads the code point at `at` and moves past it (the line is valid UTF-8).
  const auto next_char = [&](size_t& at) {
    const Utf8Char decoded = DecodeUtf8(pattern, at);
    at += decoded.length;
    return decoded.code_point;
  };

  std::vector<Segment> segments(1);
  size_t segment_start = 0;
  const auto close_segment = [&](size_t end) {
    if (rule.anchored && pattern.substr(segment_start, end - segment_start) == "**") {
      segments.back().kind = Segment::kGlobstar;
      segments.back().units.clear();
    }
  };
  for (size_t at = 0; at < pattern.size();) {
    std::vector<Unit>& units = segments.back().units;
    const char c = pattern[at];
    if (c == '/') {
      close_segment(at);
      segments.emplace_back();
      segment_start = ++at;
    } else if (c == '*') {
      ++at;
      if (units.empty() || units.back().kind != Unit::kStar) units.push_back({Unit::kStar});
    } else if (c == '?') {
      ++at;
      units.push_back({Unit::kAnyChar});
    } else if (c == '\\') {
      if (++at == pattern.size()) return LineInvalid(line_number, line, "lone '\\' at the end");
      units.push_back({Unit::kLiteral, next_char(at)});
    } else if (c == '[') {
      CharClass char_class;
      size_t j = at + 1;
      if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) {
        char_class.negated = true;
        ++j;
      }
      bool first = true;
      bool closed = false;
      while (j < pattern.size()) {
        if (pattern[j] == ']' && !first) {
          closed = true;
          ++j;
          break;
        }
        first = false;
        if (pattern.substr(j).starts_with("[:")) {
          const size_t colon = pattern.find(":]", j + 2);
          if (colon != std::string_view::npos) {
            const std::string_view name = pattern.substr(j + 2, colon - j - 2);
            if (!AddPosixClass(name, char_class.ranges)) {
              return LineInvalid(line_number, line,
                                 "unknown character class \"[:" + std::string(name) + ":]\"");
            }
            j = colon + 2;
            continue;
          }
        }
        if (pattern[j] == '\\' && ++j == pattern.size()) break;
        const char32_t low = next_char(j);
        char32_t high = low;
        if (j + 1 < pattern.size() && pattern[j] == '-' && pattern[j + 1] != ']') {
          ++j;
          if (pattern[j] == '\\' && ++j == pattern.size()) break;
          high = next_char(j);
          if (high < low) {
            return LineInvalid(line_number, line, "reversed range in '[...]'");
          }
        }
        char_class.ranges.emplace_back(low, high);
      }
      if (!closed) return LineInvalid(line_number, line, "unclosed '['");
      units.push_back({Unit::kClass, 0, static_cast<uint32_t>(rule.classes.size())});
      rule.classes.push_back(std::move(char_class));
      at = j;
    } else {
      units.push_back({Unit::kLiteral, next_char(at)});
    }
  }
  close_segment(pattern.size());
  // A trailing "**" matches everything inside, not the directory itself: one component or more.
  if (segments.back().kind == Segment::kGlobstar) {
    segments.back().kind = Segment::kAnyComponent;
    segments.emplace_back().kind = Segment::kGlobstar;
  }
  rule.segments = std::move(segments);
  return Status::Ok();
}

// The classic wildcard match with a single backtracking point: when a later '*' is reached, an
// earlier one never needs to take more, so each (unit, character) pair is tried O(1) times per
// star restart, O(units * characters) in all.
bool IgnoreRules::MatchGlob(const Rule& rule, const std::vector<Unit>& units,
                            const std::vector<char32_t>& component) {
  const auto matches = [&](const Unit& unit, char32_t c) {
    switch (unit.kind) {
      case Unit::kLiteral:
        return unit.literal == c;
      case Unit::kAnyChar:
        return true;
      case Unit::kClass: {
        const CharClass& char_class = rule.classes[unit.class_index];
        bool in = false;
        for (const auto& [low, high] : char_class.ranges) in = in || (c >= low && c <= high);
        return in != char_class.negated;
      }
      case Unit::kStar:
        break;
    }
    return false;
  };
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t u = 0, c = 0, star = kNone, resume = 0;
  while (c < component.size()) {
    if (u < units.size() && units[u].kind == Unit::kStar) {
      star = u++;
      resume = c;
    } else if (u < units.size() && matches(units[u], component[c])) {
      ++u;
      ++c;
    } else if (star != kNone) {
      u = star + 1;
      c = ++resume;
    } else {
      return false;
    }
  }
  while (u < units.size() && units[u].kind == Unit::kStar) ++u;
  return u == units.size();
}

// The same algorithm one level up: segments against components, with "**" as the star.
bool IgnoreRules::MatchRule(const Rule& rule, const std::vector<std::vector<char32_t>>& components,
                            size_t count, bool is_directory) {
  if (rule.directory_only && !is_directory) return false;
  if (!rule.anchored) return MatchGlob(rule, rule.segments.front().units, components[count - 1]);
  const std::vector<Segment>& segments = rule.segments;
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t s = 0, c = 0, star = kNone, resume = 0;
  while (c < count) {
    if (s < segments.size() && segments[s].kind == Segment::kGlobstar) {
      star = s++;
      resume = c;
    } else if (s < segments.size() && (segments[s].kind == Segment::kAnyComponent ||
                                       MatchGlob(rule, segments[s].units, components[c]))) {
      ++s;
      ++c;
    } else if (star != kNone) {
      s = star + 1;
      c = ++resume;
    } else {
      return false;
    }
  }
  while (s < segments.size() && segments[s].kind == Segment::kGlobstar) ++s;
  return s == segments.size();
}

bool IgnoreRules::Ignored(std::string_view path, bool is_directory) const {
  if (rules_.empty()) return false;
  const std::vector<std::vector<char32_t>> components = DecodeComponents(path);
  for (size_t count = 1; count <= components.size(); ++count) {
    const bool directory = count < components.size() || is_directory;
    for (auto rule = rules_.rbegin(); rule != rules_.rend(); ++rule) {
      if (MatchRule(*rule, components, count, directory)) {
        if (!rule->negated) return true;
        break;
      }
    }
  }
  return false;
}

}  // namespace synod
