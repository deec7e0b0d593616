// synod: the single binary. Subcommands live in cli/*_command.cc.
#include <malloc.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  // A peer that goes away mid-write is an error to handle, not a reason to die.
  std::signal(SIGPIPE, SIG_IGN);
  // Snapshot chunks, state transfers and restores allocate megabytes at a time; glibc would
  // otherwise raise its mmap threshold after the first free and keep such blocks in the heap,
  // where freeing them does not give the memory back. Fixing that threshold also fixes the trim
  // threshold at its small default, and the heap would then shrink and grow with every burst of
  // commits (a fifth of the commit rate went to it): keep up to 64 MiB at its top.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  // libuv's thread pool (4 threads by default) hashes, writes and fsyncs synced files and writes
  // snapshots: with more threads, many small files are written in parallel and a long fsync
  // does not hold up the others. The user's own setting wins.
  setenv("UV_THREADPOOL_SIZE", "16", 0);
  CLI::App app{"Synod: cluster coordination in one binary", "synod"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "synod 0.1.0");
  synod::cli::CommandRunner run;
  synod::cli::RegisterAgentCommand(app, run);
  synod::cli::RegisterKeygenCommand(app, run);
  synod::cli::RegisterNeighborsCommand(app, run);
  synod::cli::RegisterClusterCommands(app, run);
  synod::cli::RegisterRanksCommands(app, run);
  synod::cli::RegisterTimersCommands(app, run);
  synod::cli::RegisterSyncCommands(app, run);
  synod::cli::RegisterEventsCommand(app, run);
  synod::cli::RegisterLocalClusterCommands(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "synod: error: " << e.what() << " (see synod --help)\n";
    return 2;
  }
  return run ? run() : 2;
}
