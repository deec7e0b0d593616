// The `synod` subcommands. Each Register* adds one subcommand to the app; the callback it sets
// runs the command and returns the process exit status (0 success, 1 failure, 2 bad usage).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace synod::cli {

using CommandRunner = std::function<int()>;

void RegisterAgentCommand(CLI::App& app, CommandRunner& run);
void RegisterKeygenCommand(CLI::App& app, CommandRunner& run);
void RegisterNeighborsCommand(CLI::App& app, CommandRunner& run);
void RegisterClusterCommands(CLI::App& app, CommandRunner& run);
void RegisterRanksCommands(CLI::App& app, CommandRunner& run);
void RegisterTimersCommands(CLI::App& app, CommandRunner& run);
void RegisterSyncCommands(CLI::App& app, CommandRunner& run);
void RegisterEventsCommand(CLI::App& app, CommandRunner& run);
// After RegisterClusterCommands: adds to its `clients` subcommand.
void RegisterLocalClusterCommands(CLI::App& app, CommandRunner& run);

}  // namespace synod::cli
