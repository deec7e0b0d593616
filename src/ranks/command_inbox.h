// CommandInbox: the commands this member has received, each exactly once.
//
// The leader delivers a member's commands in command id order and redelivers whatever it has not
// seen acknowledged (after a lost ack, or a leader change), so a command already received is
// recognised by its id: anything at or below the highest id received is a duplicate. Received
// commands are appended to a journal (JSON lines) before Accept() returns, so the high-water
// mark, and the last kKept commands for readers, survive a restart; the journal is compacted
// when it grows past kCompactBytes. A torn last line (a crash mid-write) is skipped on open.
// Not thread-safe: the loop thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace synod {

struct ReceivedCommand {
  uint64_t id = 0;
  uint32_t sender_rank = 0;
  std::string sender;  // the sender's address
  std::string text;
  int64_t sent_at_nanos = 0;
  int64_t received_at_nanos = 0;
  uint32_t rank = 0;  // this member's rank when the command was committed
};

nlohmann::json ReceivedCommandJson(const ReceivedCommand& command);

class CommandInbox {
 public:
  static constexpr size_t kKept = 1000;
  static constexpr size_t kCompactBytes = 4 << 20;

  // Loads the journal at `path` (created if missing). An empty path keeps nothing on disk.
  static Result<std::unique_ptr<CommandInbox>> Open(const std::string& path);
  ~CommandInbox();

  // Takes one delivery, in id order, and returns the commands not received before, once they
  // are journaled. On a journal error nothing is taken, so the delivery is retried.
  Result<std::vector<ReceivedCommand>> Accept(const std::vector<ReceivedCommand>& delivery);
  // Every command id up to this one has been received (or skipped by the leader).
  uint64_t received_through() const { return received_through_; }
  // Received commands with an id above `after`, oldest first, at most `limit`.
  std::vector<ReceivedCommand> Since(uint64_t after, size_t limit) const;
  size_t skipped_journal_lines() const { return skipped_lines_; }

 private:
  explicit CommandInbox(std::string path) : path_(std::move(path)) {}
  Status Load();
  Status Compact();

  std::string path_;
  int fd_ = -1;
  size_t journal_bytes_ = 0;
  uint64_t received_through_ = 0;
  std::deque<ReceivedCommand> recent_;
  size_t skipped_lines_ = 0;
};

}  // namespace synod
