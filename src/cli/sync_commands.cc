// synod sync status|ls|conflicts: the synced folder, from any node.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/node_client.h"

namespace synod::cli {
namespace {

struct SyncFlags {
  NodeTarget target;
  std::string prefix;
  bool json = false;
  bool wait = false;
  bool deleted = false;
  unsigned timeout_s = 600;
};

std::string PercentEncode(const std::string& text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kDigits[c >> 4], kDigits[c & 15]};
    }
  }
  return out;
}

std::string Bytes(uint64_t bytes) {
  char text[32];
  if (bytes < 1024) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1024 * 1024) {
    std::snprintf(text, sizeof text, "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else if (bytes < 1024ull * 1024 * 1024) {
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024 * 1024));
  } else {
    std::snprintf(text, sizeof text, "%.2f GiB",
                  static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  }
  return text;
}

// Every member's /v1/sync, asked through the node the command talks to.
int RunStatus(const SyncFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) {
    return CommandError("sync status", resolved.error, resolved.error_status);
  }
  Result<nlohmann::json> cluster = AskNode(resolved.node, "GET", "/v1/cluster");
  if (!cluster.ok()) return CommandError("sync status", cluster.error());
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& member : cluster.value().value("members", nlohmann::json::array())) {
    const std::string address =
        member.value("ip", "") + ":" + std::to_string(member.value("api_port", 7400));
    Result<nlohmann::json> sync = AskNode(address, "GET", "/v1/sync", "", std::chrono::seconds(3));
    nlohmann::json node = sync.ok() ? sync.value() : nlohmann::json{{"error", sync.error()}};
    node["name"] = member.value("name", "");
    node["address"] = address;
    nodes.push_back(std::move(node));
  }
  if (flags.json) {
    std::printf("%s\n", nlohmann::json{{"nodes", nodes}}.dump(2).c_str());
    return 0;
  }
  std::printf("%-12s %-22s %-9s %10s %12s %10s %12s %9s  %s\n", "NODE", "ADDRESS", "STATE",
              "TO FETCH", "BYTES", "FETCHED", "REUSED", "CONFLICTS", "ERRORS");
  for (const auto& node : nodes) {
    std::string state = "error";
    if (!node.contains("error")) {
      state = !node.value("enabled", false)  ? "no folder"
              : !node.value("ready", false)  ? "starting"
              : node.value("in_sync", false) ? "in sync"
                                             : "syncing";
    }
    const auto errors = node.value("errors", nlohmann::json::array());
    std::printf("%-12s %-22s %-9s %10llu %12s %10s %12s %9llu  %s\n",
                node.value("name", "").c_str(), node.value("address", "").c_str(), state.c_str(),
                static_cast<unsigned long long>(node.value("pending_files", 0ull)),
                Bytes(node.value("pending_bytes", 0ull)).c_str(),
                Bytes(node.value("fetched_bytes_total", 0ull)).c_str(),
                Bytes(node.value("reused_bytes_total", 0ull)).c_str(),
                static_cast<unsigned long long>(node.value("conflicts_total", 0ull)),
                node.contains("error") ? node["error"].get<std::string>().c_str()
                : errors.empty()       ? "-"
                                       : errors[0].get<std::string>().c_str());
  }
  return 0;
}

// Polls the node until it is in sync, drawing a progress bar on a terminal.
int RunWait(const SyncFlags& flags) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty())
    return CommandError("sync status", resolved.error, resolved.error_status);
  const bool tty = isatty(STDOUT_FILENO);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(flags.timeout_s);
  uint64_t most_files = 0;
  for (;;) {
    Result<nlohmann::json> sync = AskNode(resolved.node, "GET", "/v1/sync");
    if (!sync.ok()) return CommandError("sync status", sync.error());
    const nlohmann::json& status = sync.value();
    if (!status.value("enabled", false)) {
      return CommandError("sync status", resolved.node + " syncs no folder (no --sync-dir)");
    }
    const uint64_t files = status.value("pending_files", 0ull);
    most_files = std::max(most_files, files);
    const bool done = status.value("in_sync", false);
    if (tty || done) {
      constexpr int kWidth = 30;
      const double progress =
          most_files == 0 ? (done ? 1.0 : 0.0)
                          : 1.0 - static_cast<double>(files) / static_cast<double>(most_files);
      const int filled = static_cast<int>(progress * kWidth);
      std::printf("%s[%s%s] %3.0f%%  %llu files (%s) to fetch%s", tty ? "\r" : "",
                  std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                  progress * 100, static_cast<unsigned long long>(files),
                  Bytes(status.value("pending_bytes", 0ull)).c_str(), tty ? "   " : "\n");
      std::fflush(stdout);
    }
    if (done) {
      std::printf("%sin sync: %llu paths\n", tty ? "\n" : "",
                  static_cast<unsigned long long>(status.value("index_files", 0ull)));
      return 0;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      if (tty) std::printf("\n");
      return CommandError("sync status",
                          "not in sync after " + std::to_string(flags.timeout_s) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

void PrintFiles(const nlohmann::json& answer, bool json) {
  if (json) {
    std::printf("%s\n", answer.dump(2).c_str());
    return;
  }
  std::printf("%-10s %8s %12s %-10s  %s\n", "KIND", "VERSION", "SIZE", "ORIGIN", "PATH");
  for (const auto& file : answer.value("files", nlohmann::json::array())) {
    const bool deleted = file.value("deleted", false);
    std::string path = file.value("path", "");
    if (file.contains("target")) path += " -> " + file["target"].get<std::string>();
    std::printf("%-10s %8llu %12s %-10.10s  %s\n",
                deleted ? "deleted" : file.value("kind", "").c_str(),
                static_cast<unsigned long long>(file.value("version", 0ull)),
                file.contains("size") ? Bytes(file["size"].get<uint64_t>()).c_str() : "-",
                file.value("origin", "").c_str(), path.c_str());
  }
  if (answer.value("truncated", false)) {
    std::printf("(first %zu of %llu)\n", answer["files"].size(),
                static_cast<unsigned long long>(answer.value("total", 0ull)));
  }
}

int RunList(const SyncFlags& flags, const std::string& command, const std::string& path) {
  const Resolved resolved = ResolveOrExplain(flags.target);
  if (!resolved.error.empty()) return CommandError(command, resolved.error, resolved.error_status);
  Result<nlohmann::json> answer = AskNode(resolved.node, "GET", path);
  if (!answer.ok()) return CommandError(command, answer.error());
  PrintFiles(answer.value(), flags.json);
  return 0;
}

}  // namespace

void RegisterSyncCommands(CLI::App& app, CommandRunner& run) {
  CLI::App* sync =
      app.add_subcommand("sync", "The synced folder (--sync-dir): state, index, conflicts");
  sync->require_subcommand(1);
  {
    auto flags = std::make_shared<SyncFlags>();
    CLI::App* status = sync->add_subcommand("status", "Every node: in sync or not, what is left");
    status->add_flag("--json", flags->json, "Print JSON");
    status->add_flag("-w,--wait", flags->wait,
                     "Show this node's progress until it is in sync (a node catching up)");
    status->add_option("--timeout", flags->timeout_s, "With --wait: give up after this many s")
        ->capture_default_str()
        ->check(CLI::Range(1, 86400));
    AddNodeOption(*status, flags->target);
    status->callback([&run, flags] {
      run = [flags] { return flags->wait ? RunWait(*flags) : RunStatus(*flags); };
    });
  }
  {
    auto flags = std::make_shared<SyncFlags>();
    CLI::App* ls = sync->add_subcommand("ls", "The replicated index, with each path's version");
    ls->add_option("path", flags->prefix, "Only paths starting with this");
    ls->add_flag("--deleted", flags->deleted, "Include deleted paths (tombstones)");
    ls->add_flag("--json", flags->json, "Print JSON");
    AddNodeOption(*ls, flags->target);
    ls->callback([&run, flags] {
      run = [flags] {
        return RunList(*flags, "sync ls",
                       "/v1/sync/files?prefix=" + PercentEncode(flags->prefix) +
                           (flags->deleted ? "&deleted=1" : ""));
      };
    });
  }
  {
    auto flags = std::make_shared<SyncFlags>();
    CLI::App* conflicts = sync->add_subcommand("conflicts", "Conflict copies kept in the folder");
    conflicts->add_flag("--json", flags->json, "Print JSON");
    AddNodeOption(*conflicts, flags->target);
    conflicts->callback([&run, flags] {
      run = [flags] { return RunList(*flags, "sync conflicts", "/v1/sync/conflicts"); };
    });
  }
}

}  // namespace synod::cli
