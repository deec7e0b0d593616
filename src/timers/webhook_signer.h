// WebhookSigner: Standard Webhooks signatures (https://www.standardwebhooks.com), so that a
// receiver can check with an existing library that a webhook came from this cluster.
//
// Each webhook carries webhook-id (the timer id), webhook-timestamp (seconds) and
// webhook-signature: "v1,<base64 HMAC-SHA256 of id.timestamp.body>" for each configured key,
// space-separated; with two keys (the new one first) receivers holding either accept it, which
// is how a key is rotated. Keys are "whsec_" followed by base64, as the standard's libraries
// generate them. Immutable after construction; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace synod {

class WebhookSigner {
 public:
  // One or two keys, one per non-empty line ('#' starts a comment line). Errors say which line
  // and what is wrong.
  static Result<WebhookSigner> FromText(std::string_view text);
  static Result<WebhookSigner> FromFile(const std::string& path);

  // The value of the webhook-signature header.
  std::string Sign(std::string_view id, int64_t timestamp_seconds, std::string_view body) const;

 private:
  std::vector<std::string> keys_;  // decoded
};

}  // namespace synod
