#include "filesync/utf8.h"

namespace synod {
namespace {

bool IsContinuation(unsigned char byte) { return (byte & 0xc0) == 0x80; }

// Code points that are valid but can reorder or break a log line when printed as is.
bool IsUnsafeToPrint(char32_t c) {
  return (c >= 0x80 && c <= 0x9f) ||      // C1 controls
         c == 0x200e || c == 0x200f ||    // left-to-right / right-to-left marks
         (c >= 0x2028 && c <= 0x202e) ||  // line/paragraph separators, bidi embeddings
         (c >= 0x2066 && c <= 0x2069) ||  // bidi isolates
         c == 0xfeff;                     // byte order mark
}

void AppendHexByte(std::string& out, unsigned char byte) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[byte >> 4];
  out += kHex[byte & 0xf];
}

}  // namespace

Utf8Char DecodeUtf8(std::string_view text, size_t at) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[at + i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return Utf8Char{lead, 1, nullptr};
  if (IsContinuation(lead)) return Utf8Char{0, 1, "unexpected continuation byte"};
  if (lead >= 0xf8) return Utf8Char{0, 1, "invalid byte"};
  const size_t length = lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
  if (text.size() - at < length) return Utf8Char{0, 1, "truncated sequence"};
  for (size_t i = 1; i < length; ++i) {
    if (!IsContinuation(byte(i))) return Utf8Char{0, 1, "truncated sequence"};
  }
  char32_t c = lead & (0x7f >> length);
  for (size_t i = 1; i < length; ++i) c = (c << 6) | (byte(i) & 0x3f);
  static constexpr char32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < kMinimum[length]) return Utf8Char{0, 1, "overlong encoding"};
  if (c >= 0xd800 && c <= 0xdfff) return Utf8Char{0, 1, "surrogate code point"};
  if (c > 0x10ffff) return Utf8Char{0, 1, "code point above U+10FFFF"};
  return Utf8Char{c, length, nullptr};
}

std::string QuoteForMessage(std::string_view text, size_t max_bytes) {
  std::string out = "\"";
  size_t at = 0;
  while (at < text.size()) {
    const Utf8Char decoded = DecodeUtf8(text, at);
    if (at + decoded.length > max_bytes) break;
    const auto lead = static_cast<unsigned char>(text[at]);
    if (decoded.error != nullptr) {
      AppendHexByte(out, lead);
    } else if (lead == '"' || lead == '\\') {
      out += '\\';
      out += static_cast<char>(lead);
    } else if (decoded.code_point < 0x20 || decoded.code_point == 0x7f) {
      AppendHexByte(out, lead);
    } else if (IsUnsafeToPrint(decoded.code_point)) {
      for (size_t i = 0; i < decoded.length; ++i) {
        AppendHexByte(out, static_cast<unsigned char>(text[at + i]));
      }
    } else {
      out.append(text.substr(at, decoded.length));
    }
    at += decoded.length;
  }
  out += '"';
  if (at < text.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

}  // namespace synod
