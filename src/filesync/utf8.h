// UTF-8 decoding and safe quoting, shared by the file-sync path checks and the ignore rules.
//
// Internal to src/filesync. Pure functions, safe from any thread. DecodeUtf8 accepts exactly the
// well-formed sequences of Unicode 15 table 3-7: no overlong encodings, no surrogates
// (U+D800-U+DFFF), nothing above U+10FFFF.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace synod {

struct Utf8Char {
  char32_t code_point = 0;      // valid only when error is null
  size_t length = 1;            // bytes consumed: the sequence, or 1 on an error
  const char* error = nullptr;  // "truncated sequence", "overlong encoding", ...; null if valid
};

// Decodes the sequence starting at text[at] (at < text.size()).
Utf8Char DecodeUtf8(std::string_view text, size_t at);

// `text` in double quotes, safe to put in a log line or an error message: '"' and '\' are
// backslash-escaped; control characters (C0, DEL, C1), line and paragraph separators, bidi
// controls and bytes that are not valid UTF-8 are written as \xNN per byte; other UTF-8 is kept.
// Past `max_bytes` of input (never inside a sequence) the quote ends with `..." (N bytes)`.
std::string QuoteForMessage(std::string_view text, size_t max_bytes = 100);

}  // namespace synod
