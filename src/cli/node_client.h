// How CLI commands talk to an agent: which node (--node, else $SYNOD_NODE, else a running agent
// of the workspace, else 127.0.0.1:7400), one HTTP request, a JSON answer, and errors worded
// for the user. Requests carry Authorization: Bearer with $SYNOD_TOKEN, else, to the agents of
// the workspace the command uses, the workspace's token (api.tokens).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/status.h"
#include "net/http_client.h"

namespace synod::cli {

class Workspace;

struct NodeTarget {
  std::string node;       // --node
  std::string workspace;  // -p/--workspace
};

// Adds --node and -p/--workspace to a command.
void AddNodeOption(CLI::App& command, NodeTarget& target);
void AddWorkspaceOption(CLI::App& command, std::string& workspace);
// Errors (exit status 2): a workspace given with -p that does not exist; (1) a workspace with
// no running agent.
Result<std::string> ResolveNode(const NodeTarget& target);
// Resolves, then calls; resolution errors come back with the exit status to use.
struct Resolved {
  std::string node;
  int error_status = 0;
  std::string error;
};
Resolved ResolveOrExplain(const NodeTarget& target);

struct NodeReply {
  long status = 0;
  nlohmann::json body;
};

// From now on, requests to this workspace's agents (by address) carry its API token, unless
// $SYNOD_TOKEN is set. ResolveNode and ResolveClient call it for the workspace they consult.
void UseWorkspaceTokens(const Workspace& workspace);
// The bearer token for requests to `node` (ADDR[:PORT]): $SYNOD_TOKEN, else the token of the
// workspace in use if `node` is one of its agents, else none.
std::optional<std::string> ApiTokenFor(const std::string& node);
// "Authorization: Bearer <token>" for `node`, in a list of headers, if there is a token.
std::vector<std::string> AuthorizationHeaders(const std::string& node);
// What to tell the user when `node` answered 401 or 403 (`why`: its error): which token it wants
// and how to give it.
std::string TokenRefusal(const std::string& node, long status, const std::string& why);

// The request for `path` at `node`: ADDR[:PORT], or https://ADDR[:PORT] for an agent that serves
// HTTPS (its certificate is checked against $SYNOD_CA_FILE if set, else the system's CAs), with
// the bearer token for it. Errors: a node that is not an address.
Result<OutgoingHttpRequest> NodeRequest(const std::string& node, const std::string& method,
                                        const std::string& path);

// Sends the request and parses the JSON answer. Transport failures, non-JSON answers and a
// refused token (401, 403: worded by TokenRefusal) are errors that name the node; other HTTP
// error statuses are replies (the body says why).
Result<NodeReply> CallNode(const std::string& node, const std::string& method,
                           const std::string& path, const std::string& body = "",
                           std::chrono::milliseconds timeout = std::chrono::seconds(8));

// CallNode, with any status but 200 turned into an error that says what the node answered.
Result<nlohmann::json> AskNode(const std::string& node, const std::string& method,
                               const std::string& path, const std::string& body = "",
                               std::chrono::milliseconds timeout = std::chrono::seconds(8));

// The agent of one member: `client` is a workspace client (id, unique id prefix or name) or an
// ADDR[:PORT]; empty means ResolveNode(target). Errors carry the exit status to use.
Resolved ResolveClient(const NodeTarget& target, const std::string& client);

// Prints "synod <command>: error: <message>" and returns `status`.
int CommandError(const std::string& command, const std::string& message, int status = 1);

}  // namespace synod::cli
