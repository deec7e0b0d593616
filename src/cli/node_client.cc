#include "cli/node_client.h"

#include <cstdlib>
#include <iostream>

#include "cli/workspace.h"
#include "net/http_client.h"
#include "net/ipv4.h"

namespace synod::cli {

void AddWorkspaceOption(CLI::App& command, std::string& workspace) {
  workspace = Workspace::DefaultPath();
  command
      .add_option("-p,--workspace", workspace, "Workspace (default: $SYNOD_WORKSPACE or ~/.synod)")
      ->capture_default_str();
}

void AddNodeOption(CLI::App& command, NodeTarget& target) {
  command.add_option("--node", target.node,
                     "Agent to ask, ADDR[:PORT] (default: $SYNOD_NODE, else an agent of the "
                     "workspace, else 127.0.0.1:7400)");
  AddWorkspaceOption(command, target.workspace);
}

Result<std::string> ResolveNode(const NodeTarget& target) {
  if (!target.node.empty()) return target.node;
  if (const char* env = std::getenv("SYNOD_NODE"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  auto workspace = Workspace::Open(target.workspace);
  if (!workspace.ok()) {
    if (target.workspace == Workspace::DefaultPath()) return std::string("127.0.0.1:7400");
    return workspace.status();
  }
  if (auto api = workspace.value().AnyApi()) return *api;
  return Status::Error("no agent of workspace " + workspace.value().path() +
                       " is running (start them with: synod bootstrap), and no --node given");
}

Resolved ResolveOrExplain(const NodeTarget& target) {
  Result<std::string> node = ResolveNode(target);
  if (node.ok()) return Resolved{node.value(), 0, ""};
  const bool usage = node.error().rfind("no workspace", 0) == 0;
  return Resolved{"", usage ? 2 : 1, node.error()};
}

Resolved ResolveClient(const NodeTarget& target, const std::string& client) {
  if (client.empty()) return ResolveOrExplain(target);
  if (client.find(':') != std::string::npos || Ipv4::Parse(client).ok()) {
    return Resolved{client, 0, ""};
  }
  Result<Workspace> workspace = Workspace::Open(target.workspace);
  if (!workspace.ok()) return Resolved{"", 2, workspace.error()};
  Result<WorkspaceNode*> node = workspace.value().Find(client);
  if (!node.ok()) return Resolved{"", 2, node.error()};
  return Resolved{node.value()->ip + ":7400", 0, ""};
}

Result<NodeReply> CallNode(const std::string& node, const std::string& method,
                           const std::string& path, const std::string& body,
                           std::chrono::milliseconds timeout) {
  Result<HostPort> address = ParseHostPort(node, 7400);
  if (!address.ok()) return Status::Error("--node: " + address.error());
  Result<HttpReply> reply =
      HttpCall(method, "http://" + address.value().ToString() + path, body, timeout);
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

Result<nlohmann::json> AskNode(const std::string& node, const std::string& method,
                               const std::string& path, const std::string& body,
                               std::chrono::milliseconds timeout) {
  Result<NodeReply> reply = CallNode(node, method, path, body, timeout);
  if (!reply.ok()) return reply.status();
  if (reply.value().status != 200) {
    const nlohmann::json& answer = reply.value().body;
    std::string why = answer.dump();
    if (answer.is_object() && answer.contains("error") && answer["error"].is_string()) {
      why = answer["error"].get<std::string>();
    }
    return Status::Error(node + " answered " + std::to_string(reply.value().status) + ": " + why);
  }
  return reply.value().body;
}

int CommandError(const std::string& command, const std::string& message, int status) {
  std::cerr << "synod " << command << ": error: " << message << "\n";
  return status;
}

}  // namespace synod::cli
