#include "ranks/command_inbox.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/node_identity.h"

namespace synod {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

Result<ReceivedCommand> ParseLine(const std::string& line) {
  nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
  if (!json.is_object()) return Status::Error("not a JSON object");
  try {
    ReceivedCommand command;
    command.id = json.at("id").get<uint64_t>();
    command.sender_rank = json.at("sender_rank").get<uint32_t>();
    command.sender = json.at("sender").get<std::string>();
    command.text = json.at("command").get<std::string>();
    command.sent_at_nanos = json.at("sent_at_nanos").get<int64_t>();
    command.received_at_nanos = json.at("received_at_nanos").get<int64_t>();
    command.rank = json.at("rank").get<uint32_t>();
    return command;
  } catch (const nlohmann::json::exception& e) {
    return Status::Error(e.what());
  }
}

std::string JournalLine(const ReceivedCommand& command) {
  nlohmann::json json = {
      {"id", command.id},
      {"sender_rank", command.sender_rank},
      {"sender", command.sender},
      {"command", command.text},
      {"sent_at_nanos", command.sent_at_nanos},
      {"received_at_nanos", command.received_at_nanos},
      {"rank", command.rank},
  };
  // Replacement characters rather than an exception for text that is not UTF-8.
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

nlohmann::json ReceivedCommandJson(const ReceivedCommand& command) {
  return {
      {"id", command.id},
      {"command", command.text},
      {"sender", command.sender},
      {"sender_rank", command.sender_rank},
      {"rank", command.rank},
      {"sent_at", static_cast<double>(command.sent_at_nanos) / 1e9},
      {"received_at", static_cast<double>(command.received_at_nanos) / 1e9},
  };
}

Result<std::unique_ptr<CommandInbox>> CommandInbox::Open(const std::string& path) {
  std::unique_ptr<CommandInbox> inbox(new CommandInbox(path));
  if (!path.empty()) {
    Status loaded = inbox->Load();
    if (!loaded.ok()) return loaded;
  }
  return inbox;
}

CommandInbox::~CommandInbox() {
  if (fd_ >= 0) ::close(fd_);
}

Status CommandInbox::Load() {
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line)) {
    journal_bytes_ += line.size() + 1;
    Result<ReceivedCommand> command = ParseLine(line);
    if (!command.ok()) {
      ++skipped_lines_;
      continue;
    }
    received_through_ = std::max(received_through_, command.value().id);
    recent_.push_back(std::move(command.value()));
    if (recent_.size() > kKept) recent_.pop_front();
  }
  if (journal_bytes_ > kCompactBytes || skipped_lines_ > 0) return Compact();
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::Error(Errno("cannot open " + path_));
  return Status::Ok();
}

Status CommandInbox::Compact() {
  std::string contents;
  for (const auto& command : recent_) contents += JournalLine(command);
  Status written = WriteFileAtomically(path_, contents);
  if (!written.ok()) return written;
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) return Status::Error(Errno("cannot open " + path_));
  journal_bytes_ = contents.size();
  return Status::Ok();
}

Result<std::vector<ReceivedCommand>> CommandInbox::Accept(
    const std::vector<ReceivedCommand>& delivery) {
  std::vector<ReceivedCommand> fresh;
  uint64_t through = received_through_;
  for (const auto& command : delivery) {
    if (command.id <= through) continue;  // received before: acknowledged, not processed again
    through = command.id;
    fresh.push_back(command);
  }
  if (fresh.empty()) return fresh;
  if (fd_ >= 0) {
    std::string lines;
    for (const auto& command : fresh) lines += JournalLine(command);
    size_t written = 0;
    while (written < lines.size()) {
      const ssize_t n = ::write(fd_, lines.data() + written, lines.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // Cut back to what was whole before, so the journal and the mark agree.
        const std::string why = Errno("cannot append to " + path_);
        if (::ftruncate(fd_, static_cast<off_t>(journal_bytes_)) != 0) {
          return Status::Error(why + " (and cannot truncate it back)");
        }
        return Status::Error(why);
      }
      written += static_cast<size_t>(n);
    }
    journal_bytes_ += lines.size();
  }
  received_through_ = through;
  for (const auto& command : fresh) {
    recent_.push_back(command);
    if (recent_.size() > kKept) recent_.pop_front();
  }
  if (journal_bytes_ > kCompactBytes) {
    Status compacted = Compact();
    (void)compacted;  // the appended journal is still whole; compaction is tried again later
  }
  return fresh;
}

std::vector<ReceivedCommand> CommandInbox::Since(uint64_t after, size_t limit) const {
  std::vector<ReceivedCommand> out;
  for (const auto& command : recent_) {
    if (command.id <= after) continue;
    if (out.size() >= limit) break;
    out.push_back(command);
  }
  return out;
}

}  // namespace synod
