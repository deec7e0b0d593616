// `synod keygen [-o FILE]`: a new cluster key (for --cluster-key-file), on standard output or into
// a new file readable by its owner only.
#include <iostream>

#include "cli/commands.h"
#include "core/secret_file.h"
#include "net/tls.h"

namespace synod::cli {
namespace {

int RunKeygen(const std::string& output) {
  Result<std::string> key = TlsConfig::GenerateClusterKey();
  if (!key.ok()) {
    std::cerr << "synod keygen: " << key.status().message() << "\n";
    return 1;
  }
  if (output.empty()) {
    std::cout << key.value() << std::flush;
    return 0;
  }
  if (Status created = CreateSecretFile(output, key.value()); !created.ok()) {
    std::cerr << "synod keygen: " << created.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

void RegisterKeygenCommand(CLI::App& app, CommandRunner& run) {
  CLI::App* cmd = app.add_subcommand(
      "keygen", "Print a new cluster key: give every node the same one with --cluster-key-file");
  auto output = std::make_shared<std::string>();
  cmd->add_option("-o,--output", *output,
                  "Write it to this new file (mode 600) instead of standard output");
  cmd->callback([&run, output] { run = [output] { return RunKeygen(*output); }; });
}

}  // namespace synod::cli
