#include "timers/webhook_signer.h"

#include "core/base64.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <sstream>

namespace synod {

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
