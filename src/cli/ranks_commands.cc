// synod ranks, synod send, synod commands tail: ranks and commands, asked from any node (the
// sender and the reader are the member whose agent is asked).
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/node_client.h"

namespace synod::cli {
namespace {

struct RanksFlags {
  NodeTarget target;
  std::string client;
  std::string command;
  bool json = false;
  bool follow = false;
  size_t lines = 10;
};

// "2026-11-23 14:05:01.250" in local time.
std::string LocalTime(double epoch_seconds) {
  const auto whole = static_cast<time_t>(epoch_seconds);
  std::tm tm{};
  localtime_r(&whole, &tm);
  char text[40];
  const size_t n = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  std::snprintf(text + n, sizeof text - n, ".%03d",
                static_cast<int>((epoch_seconds - static_cast<double>(whole)) * 1000));
  return text;
}

int RunRanks(const RanksFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) return CommandError("ranks", resolved.error, resolved.error_status);
  Result<nlohmann::json> ranks = AskNode(resolved.node, "GET", "/v1/ranks");
  if (!ranks.ok()) return CommandError("ranks", ranks.error());
  if (flags.json) {
    std::cout << ranks.value().dump(2) << "\n";
    return 0;
  }
  const nlohmann::json& list = ranks.value()["ranks"];
  std::cout << list.size() << (list.size() == 1 ? " rank" : " ranks") << "\n";
  std::printf("%-5s %-9s %-22s %s\n", "RANK", "KIND", "ADDRESS", "MEMBER");
  for (const auto& entry : list) {
    std::string member;
    if (entry["id"].is_string()) {
      member = entry.value("name", "") + " (" + entry["id"].get<std::string>() + ")";
    }
    std::printf("%-5d %-9s %-22s %s\n", entry.value("rank", -1), entry.value("kind", "?").c_str(),
                entry.value("address", "?").c_str(), member.c_str());
  }
  return 0;
}

int RunSend(const RanksFlags& flags) {
  const Resolved resolved = ResolveClient(flags.target, flags.client);
  if (!resolved.error.empty()) return CommandError("send", resolved.error, resolved.error_status);
  if (flags.command.empty()) return CommandError("send", "the command is empty", 2);
  // The agent answers once every delivery is settled, or after its 30 s send timeout.
  Result<nlohmann::json> sent =
      AskNode(resolved.node, "POST", "/v1/commands",
              nlohmann::json{{"command", flags.command}}.dump(), std::chrono::seconds(40));
  if (!sent.ok()) return CommandError("send", sent.error());
  const nlohmann::json& record = sent.value();
  if (flags.json) {
    std::cout << record.dump(2) << "\n";
  } else {
    const nlohmann::json& recipients = record["recipients"];
    std::cout << "Command " << record.value("id", 0) << " from rank "
              << record["sender"].value("rank", -1) << " ("
              << record["sender"].value("address", "?") << "): delivered to "
              << record.value("delivered", 0) << " of " << recipients.size() << "\n";
    for (const auto& to : recipients) {
      std::printf("  rank %-4d %-9s %-22s %s%s%s\n", to.value("rank", -1),
                  to.value("kind", "?").c_str(), to.value("address", "?").c_str(),
                  to.value("state", "?").c_str(), to.contains("error") ? ": " : "",
                  to.value("error", "").c_str());
    }
  }
  return record.value("delivered", 0) == static_cast<int>(record["recipients"].size()) ? 0 : 1;
}

volatile std::sig_atomic_t interrupted = 0;

int RunCommandsTail(const RanksFlags& flags) {
  const Resolved resolved = ResolveClient(flags.target, flags.client);
  if (!resolved.error.empty()) {
    return CommandError("commands tail", resolved.error, resolved.error_status);
  }
  auto print = [&flags](const nlohmann::json& command) {
    if (flags.json) {
      std::cout << command.dump() << "\n";
    } else {
      std::cout << LocalTime(command.value("received_at", 0.0)) << "  #" << command.value("id", 0)
                << " from rank " << command.value("sender_rank", -1) << " ("
                << command.value("sender", "?") << ") to rank " << command.value("rank", -1) << ": "
                << command.value("command", "") << "\n";
    }
  };
  Result<nlohmann::json> first = AskNode(resolved.node, "GET", "/v1/commands?since=0&limit=1000");
  if (!first.ok()) return CommandError("commands tail", first.error());
  const nlohmann::json& commands = first.value()["commands"];
  const size_t skip = commands.size() > flags.lines ? commands.size() - flags.lines : 0;
  uint64_t last = 0;
  for (size_t i = 0; i < commands.size(); ++i) {
    last = commands[i].value("id", last);
    if (i >= skip) print(commands[i]);
  }
  if (!flags.follow) return 0;
  std::cout.flush();
  std::signal(SIGINT, [](int) { interrupted = 1; });
  while (!interrupted) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    Result<nlohmann::json> more =
        AskNode(resolved.node, "GET", "/v1/commands?since=" + std::to_string(last) + "&limit=1000");
    if (!more.ok()) return CommandError("commands tail", more.error());
    for (const auto& command : more.value()["commands"]) {
      last = command.value("id", last);
      print(command);
    }
    std::cout.flush();
  }
  return 0;
}

}  // namespace

void RegisterRanksCommands(CLI::App& app, CommandRunner& run) {
  {
    auto flags = std::make_shared<RanksFlags>();
    CLI::App* ranks = app.add_subcommand("ranks", "Every rank holder, rank 0 (joined first) first");
    AddNodeOption(*ranks, flags->target);
    ranks->add_flag("--json", flags->json, "Print JSON");
    ranks->callback([&run, flags] { run = [flags] { return RunRanks(*flags); }; });
  }
  {
    auto flags = std::make_shared<RanksFlags>();
    CLI::App* send = app.add_subcommand(
        "send", "Send a command to every lower-ranked member and client, and wait for them");
    send->add_option("command", flags->command, "The command, e.g. START_TRANSMIT")->required();
    send->add_option("--from", flags->client,
                     "Sending client: id, unique id prefix or name in the workspace, or "
                     "ADDR[:PORT] of its agent (default: the agent --node selects)");
    AddNodeOption(*send, flags->target);
    send->add_flag("--json", flags->json, "Print the delivery record as JSON");
    send->footer(
        "Exit status: 0 when every recipient got it, 1 otherwise.\n"
        "Example: synod send START_TRANSMIT --from node2");
    send->callback([&run, flags] { run = [flags] { return RunSend(*flags); }; });
  }
  {
    CLI::App* commands = app.add_subcommand("commands", "Commands a member received");
    commands->require_subcommand(1);
    auto flags = std::make_shared<RanksFlags>();
    CLI::App* tail = commands->add_subcommand("tail", "Show the last commands a member received");
    tail->add_option("-c,--client", flags->client,
                     "Client id (or a unique prefix, or its name), or ADDR[:PORT] of its agent")
        ->required();
    tail->add_flag("-f,--follow", flags->follow, "Keep printing new commands as they arrive");
    tail->add_option("-n,--lines", flags->lines, "How many to show first")->capture_default_str();
    tail->add_flag("--json", flags->json, "One JSON object per line");
    AddNodeOption(*tail, flags->target);
    tail->callback([&run, flags] { run = [flags] { return RunCommandsTail(*flags); }; });
  }
}

}  // namespace synod::cli
