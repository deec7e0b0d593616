#include "core/base64.h"

#include <openssl/evp.h>

#include <cctype>

namespace synod {

std::string Base64Encode(std::string_view bytes) {
  std::string text(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<int>(bytes.size()));
  text.resize(static_cast<size_t>(length));
  return text;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.empty()) return std::string();
  if (text.size() % 4 != 0) return Status::Invalid("not base64");
  // Padding only at the end, at most two: EVP_DecodeBlock would read a '=' anywhere as zeros.
  const size_t padding_at = text.find('=');
  if (padding_at != std::string_view::npos &&
      (padding_at + 2 < text.size() ||
       text.find_first_not_of('=', padding_at) != std::string_view::npos)) {
    return Status::Invalid("not base64");
  }
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') {
      return Status::Invalid("not base64");
    }
  }
  std::string bytes(text.size() / 4 * 3, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()),
                                     static_cast<int>(text.size()));
  if (length < 0) return Status::Invalid("not base64");
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t padding = 0;
  for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) ++padding;
  if (padding > 2) return Status::Invalid("not base64");
  bytes.resize(static_cast<size_t>(length) - padding);
  return bytes;
}

}  // namespace synod
