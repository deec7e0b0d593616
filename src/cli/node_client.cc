#include "cli/node_client.h"

#include <cstdlib>
#include <iostream>

#include "net/http_client.h"
#include "net/ipv4.h"

namespace synod::cli {

void AddNodeOption(CLI::App& command, std::string& node) {
  const char* from_env = std::getenv("SYNOD_NODE");
  node = from_env != nullptr && *from_env != '\0' ? from_env : "127.0.0.1:7400";
  command.add_option("--node", node, "Agent to ask, ADDR[:PORT] (default: $SYNOD_NODE)")
      ->capture_default_str();
}

Result<NodeReply> CallNode(const std::string& node, const std::string& method,
                           const std::string& path, const std::string& body) {
  Result<HostPort> address = ParseHostPort(node, 7400);
  if (!address.ok()) return Status::Error("--node: " + address.error());
  Result<HttpReply> reply = HttpCall(method, "http://" + address.value().ToString() + path, body,
                                     std::chrono::seconds(8));
  if (!reply.ok()) return Status::Error(reply.error() + " (is an agent running there? see --node)");
  NodeReply parsed;
  parsed.status = reply.value().status;
  parsed.body = nlohmann::json::parse(reply.value().body, nullptr, false);
  if (parsed.body.is_discarded()) {
    return Status::Error(address.value().ToString() + " answered " + std::to_string(parsed.status) +
                         " with something that is not JSON");
  }
  return parsed;
}

int CommandError(const std::string& command, const std::string& message, int status) {
  std::cerr << "synod " << command << ": error: " << message << "\n";
  return status;
}

}  // namespace synod::cli
