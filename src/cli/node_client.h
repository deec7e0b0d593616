// How CLI commands talk to an agent: which node (--node, else $SYNOD_NODE, else
// 127.0.0.1:7400), one HTTP request, a JSON answer, and errors worded for the user.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/status.h"

namespace synod::cli {

// Adds --node to a command.
void AddNodeOption(CLI::App& command, std::string& node);

struct NodeReply {
  long status = 0;
  nlohmann::json body;
};

// Sends the request and parses the JSON answer. Transport failures and non-JSON answers are
// errors that name the node; HTTP error statuses are replies (the body says why).
Result<NodeReply> CallNode(const std::string& node, const std::string& method,
                           const std::string& path, const std::string& body = "");

// Prints "synod <command>: error: <message>" and returns `status`.
int CommandError(const std::string& command, const std::string& message, int status = 1);

}  // namespace synod::cli
