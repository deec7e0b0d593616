#include "timers/webhook_signer.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <sstream>

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

Result<WebhookSigner> WebhookSigner::FromText(std::string_view text) {
  WebhookSigner signer;
  std::istringstream lines{std::string(text)};
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    std::string_view key = std::string_view(line).substr(start);
    const std::string where = "line " + std::to_string(number) + ": ";
    if (!key.starts_with("whsec_")) {
      return Status::Invalid(
          where + "a key starts with whsec_ (generate one with `synod keygen --webhook`)");
    }
    Result<std::string> bytes = Base64Decode(key.substr(6));
    if (!bytes.ok()) return Status::Invalid(where + "the key after whsec_ is not base64");
    if (bytes.value().size() < 24 || bytes.value().size() > 64) {
      return Status::Invalid(where + "a key must hold 24 to 64 bytes");
    }
    signer.keys_.push_back(std::move(bytes.value()));
  }
  if (signer.keys_.empty()) return Status::Invalid("no key (one whsec_... key per line)");
  if (signer.keys_.size() > 2) return Status::Invalid("at most two keys (the new and the old)");
  return signer;
}

Result<WebhookSigner> WebhookSigner::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Error("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  Result<WebhookSigner> signer = FromText(text.str());
  if (!signer.ok()) return Status(signer.status().code(), path + ": " + signer.status().message());
  return signer;
}

std::string WebhookSigner::Sign(std::string_view id, int64_t timestamp_seconds,
                                std::string_view body) const {
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content.append(id).append(".").append(std::to_string(timestamp_seconds)).append(".").append(body);
  std::string header;
  for (const std::string& key : keys_) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(content.data()), content.size(), digest, &length);
    if (!header.empty()) header.push_back(' ');
    header.append("v1,").append(
        Base64Encode(std::string_view(reinterpret_cast<const char*>(digest), length)));
  }
  return header;
}

}  // namespace synod
