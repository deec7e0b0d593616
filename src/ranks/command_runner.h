// CommandRunner: runs the operator's program for each received command (--on-command).
//
// The program is executed directly, never through a shell, as `PROGRAM <command text>`, with
// SYNOD_COMMAND_ID, SYNOD_SENDER_RANK and SYNOD_SENDER in its environment and the agent's
// stdout/stderr. One runs at a time, in the order received; one still running after the timeout
// is killed. At most kMaxQueued wait; beyond that a command is logged and not run. Every start
// failure, exit status and kill is logged. Loop thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "core/event_loop.h"
#include "ranks/command_inbox.h"

namespace synod {

class CommandRunner {
 public:
  static constexpr size_t kMaxQueued = 10000;

  CommandRunner(EventLoop& loop, std::string program, std::chrono::milliseconds timeout);
  ~CommandRunner();

  void Run(const ReceivedCommand& command);
  // Runs nothing more; a program still running is left to finish.
  void Stop();

 private:
  struct Child;
  void StartNext();
  void OnExit(int64_t status, int signal);

  EventLoop& loop_;
  std::string program_;
  std::chrono::milliseconds timeout_;
  std::deque<ReceivedCommand> queue_;
  Child* running_ = nullptr;  // owned by libuv until its handle closes
  Timer deadline_;
  bool stopped_ = false;
};

}  // namespace synod
