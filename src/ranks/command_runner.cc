#include "ranks/command_runner.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <vector>

#include "net/uv_util.h"

extern char** environ;

namespace synod {

struct CommandRunner::Child {
  uv_process_t process{};
  CommandRunner* runner;
  uint64_t command_id;
};

CommandRunner::CommandRunner(EventLoop& loop, std::string program,
                             std::chrono::milliseconds timeout)
    : loop_(loop), program_(std::move(program)), timeout_(timeout), deadline_(loop) {}

CommandRunner::~CommandRunner() {
  if (running_ != nullptr) running_->runner = nullptr;  // its exit is no longer ours to handle
}

void CommandRunner::Stop() {
  stopped_ = true;
  queue_.clear();
  deadline_.Stop();
}

void CommandRunner::Run(const ReceivedCommand& command) {
  if (stopped_) return;
  if (queue_.size() >= kMaxQueued) {
    spdlog::error("on-command: {} commands are waiting for {}; command {} is not run", kMaxQueued,
                  program_, command.id);
    return;
  }
  queue_.push_back(command);
  if (running_ == nullptr) StartNext();
}

void CommandRunner::StartNext() {
  while (running_ == nullptr && !queue_.empty() && !stopped_) {
    ReceivedCommand command = std::move(queue_.front());
    queue_.pop_front();

    std::vector<std::string> env_strings = {
        "SYNOD_COMMAND_ID=" + std::to_string(command.id),
        "SYNOD_SENDER_RANK=" + std::to_string(command.sender_rank),
        "SYNOD_SENDER=" + command.sender,
    };
    std::vector<char*> env;
    for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
    for (auto& s : env_strings) env.push_back(s.data());
    env.push_back(nullptr);
    std::vector<char*> args = {program_.data(), command.text.data(), nullptr};

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    for (int fd = 1; fd <= 2; ++fd) {
      stdio[fd].flags = UV_INHERIT_FD;
      stdio[fd].data.fd = fd;
    }
    uv_process_options_t options{};
    options.file = program_.c_str();
    options.args = args.data();
    options.env = env.data();
    options.stdio = stdio;
    options.stdio_count = 3;
    options.exit_cb = [](uv_process_t* process, int64_t status, int signal) {
      auto* child = static_cast<Child*>(process->data);
      if (child->runner != nullptr) child->runner->OnExit(status, signal);
      CloseAndDelete(child);
    };
    auto* child = new Child{{}, this, command.id};
    child->process.data = child;
    const int rc = uv_spawn(loop_.raw(), &child->process, &options);
    if (rc != 0) {
      spdlog::error("on-command: cannot run {} for command {}: {}", program_, command.id,
                    UvError(rc));
      CloseAndDelete(child);
      continue;
    }
    running_ = child;
    deadline_.Start(timeout_, std::chrono::milliseconds(0), [this] {
      if (running_ == nullptr) return;
      spdlog::warn("on-command: {} for command {} still runs after {} ms; killing it", program_,
                   running_->command_id, timeout_.count());
      uv_process_kill(&running_->process, SIGKILL);
    });
  }
}

void CommandRunner::OnExit(int64_t status, int signal) {
  deadline_.Stop();
  if (signal != 0) {
    spdlog::warn("on-command: {} for command {} ended by signal {}", program_, running_->command_id,
                 signal);
  } else if (status != 0) {
    spdlog::warn("on-command: {} for command {} exited with status {}", program_,
                 running_->command_id, status);
  } else {
    spdlog::debug("on-command: {} for command {} done", program_, running_->command_id);
  }
  running_ = nullptr;
  StartNext();
}

}  // namespace synod
