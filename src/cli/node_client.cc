#include "cli/node_client.h"

#include <cstdlib>
#include <iostream>

#include "cli/workspace.h"
#include "net/http_client.h"
#include "net/ipv4.h"

namespace synod::cli {
namespace {

// The workspace whose agents get its API token (its path: the agents it has are read when
// asked, as a command may add some meanwhile).
std::optional<std::string>& TokenWorkspace() {
  static std::optional<std::string> path;
  return path;
}

// A workspace at `path`, if there is one, lends its token to requests to its agents.
void UseWorkspaceTokensAt(const std::string& path) {
  Result<Workspace> workspace = Workspace::Open(path);
  if (workspace.ok()) UseWorkspaceTokens(workspace.value());
}

std::optional<std::string> EnvironmentToken() {
  const char* env = std::getenv("SYNOD_TOKEN");
  if (env == nullptr) return std::nullopt;
  std::string token(env);
  const size_t start = token.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return std::nullopt;
  token.erase(0, start);
  token.erase(token.find_last_not_of(" \t\r\n") + 1);
  return token;
}

}  // namespace

void UseWorkspaceTokens(const Workspace& workspace) { TokenWorkspace() = workspace.path(); }

std::optional<std::string> ApiTokenFor(const std::string& node) {
  if (std::optional<std::string> token = EnvironmentToken()) return token;
  if (!TokenWorkspace()) return std::nullopt;
  Result<HostPort> address = ParseHostPort(node, 7400);
  Result<Workspace> workspace = Workspace::Open(*TokenWorkspace());
  if (!address.ok() || !workspace.ok()) return std::nullopt;
  const std::string ip = address.value().ip.ToString();
  for (const WorkspaceNode& agent : workspace.value().nodes()) {
    if (agent.ip == ip) return workspace.value().ApiToken();
  }
  return std::nullopt;  // not an agent of the workspace: its token is not for others
}

std::vector<std::string> AuthorizationHeaders(const std::string& node) {
  std::optional<std::string> token = ApiTokenFor(node);
  if (!token) return {};
  return {"Authorization: Bearer " + *token};
}

std::string TokenRefusal(const std::string& node, long status, const std::string& why) {
  const std::string answered =
      " (" + node + " answered " + std::to_string(status) + ": " + why + ")";
  if (status == 403) {
    return "the API needs a token with write scope for this: set SYNOD_TOKEN to a write token of "
           "the agents' --api-token-file" +
           answered;
  }
  if (EnvironmentToken()) {
    return "the API refused the token in SYNOD_TOKEN: set it to a token of the agents' "
           "--api-token-file" +
           answered;
  }
  if (ApiTokenFor(node)) {
    return "the API refused the workspace's token (api.tokens): set SYNOD_TOKEN to a token of the "
           "agents' --api-token-file" +
           answered;
  }
  return "the API needs a token: set SYNOD_TOKEN to a token of the agents' --api-token-file, or "
         "give -p with the workspace of the local cluster that runs them" +
         answered;
}

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
  UseWorkspaceTokensAt(target.workspace);
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
  UseWorkspaceTokensAt(target.workspace);
  if (client.find(':') != std::string::npos || Ipv4::Parse(client).ok()) {
    return Resolved{client, 0, ""};
  }
  Result<Workspace> workspace = Workspace::Open(target.workspace);
  if (!workspace.ok()) return Resolved{"", 2, workspace.error()};
  Result<WorkspaceNode*> node = workspace.value().Find(client);
  if (!node.ok()) return Resolved{"", 2, node.error()};
  return Resolved{node.value()->ip + ":7400", 0, ""};
}

Result<OutgoingHttpRequest> NodeRequest(const std::string& node, const std::string& method,
                                        const std::string& path) {
  std::string_view text = node;
  std::string scheme = "http://";
  if (text.starts_with("https://")) {
    scheme = "https://";
    text.remove_prefix(8);
  } else if (text.starts_with("http://")) {
    text.remove_prefix(7);
  }
  Result<HostPort> address = ParseHostPort(text, 7400);
  if (!address.ok()) return Status::Error("--node: " + address.error());
  OutgoingHttpRequest request;
  request.method = method;
  request.url = scheme + address.value().ToString() + path;
  request.headers = AuthorizationHeaders(std::string(text));
  if (const char* ca = std::getenv("SYNOD_CA_FILE"); ca != nullptr && scheme == "https://") {
    request.ca_file = ca;
  }
  return request;
}

Result<NodeReply> CallNode(const std::string& node, const std::string& method,
                           const std::string& path, const std::string& body,
                           std::chrono::milliseconds timeout) {
  Result<OutgoingHttpRequest> request = NodeRequest(node, method, path);
  if (!request.ok()) return request.status();
  request.value().body = body;
  request.value().timeout = timeout;
  Result<HttpReply> reply = HttpCall(request.value());
  if (!reply.ok()) return Status::Error(reply.error() + " (is an agent running there? see --node)");
  NodeReply parsed;
  parsed.status = reply.value().status;
  parsed.body = nlohmann::json::parse(reply.value().body, nullptr, false);
  if (parsed.status == 401 || parsed.status == 403) {
    std::string why = "refused";
    if (parsed.body.is_object() && parsed.body.contains("error") &&
        parsed.body["error"].is_string()) {
      why = parsed.body["error"].get<std::string>();
    }
    return Status::Error(TokenRefusal(node, parsed.status, why));
  }
  if (parsed.body.is_discarded()) {
    return Status::Error(node + " answered " + std::to_string(parsed.status) +
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
