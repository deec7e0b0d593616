// The snapshot stream: the replicated state as a sequence of module sections.
//
// Format (version 2; version 1 was one protobuf message):
//   "SYNSNAP2"                                  8 bytes
//   records: type (1 byte) | length (4 bytes, little-endian) | payload
//     'S' a SectionBegin (module name and version), then that module's
//     'R' records, in the order the module wrote them,
//     'T' a SnapshotTrailer (counts), the last record
//   zero bytes up to a multiple of 8 (libraft's buffers want it)
// No record is larger than kMaxSnapshotRecordBytes, and nothing in the format limits the total
// size: a state of many gigabytes is as valid as an empty one.
//
// SnapshotProducer writes a stream piece by piece from captured sections (on any one thread);
// SnapshotParser reads one from pieces of any size (bytes from disk, or chunks from a peer) and
// hands sections and records to a visitor. The parser treats the stream as hostile: every
// malformed byte sequence is an error, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/state_module.h"
#include "core/status.h"

namespace synod {

inline constexpr std::string_view kSnapshotMagic{"SYNSNAP2", 8};
inline constexpr size_t kMaxSnapshotRecordBytes = 64u << 20;

struct CapturedSection {
  std::string module;
  uint32_t version = 1;
  std::unique_ptr<SectionCapture> capture;
};

class SnapshotProducer {
 public:
  explicit SnapshotProducer(std::vector<CapturedSection> sections);
  // Appends about `budget` bytes of the stream (a record may run past it) to `out`; returns
  // true once the whole stream, padding included, has been appended.
  bool Produce(std::string& out, size_t budget);
  bool done() const { return done_; }

 private:
  class Sink;
  std::vector<CapturedSection> sections_;
  size_t next_section_ = 0;
  bool section_open_ = false;
  bool started_ = false;
  bool done_ = false;
  uint64_t bytes_ = 0;
  uint64_t records_ = 0;
};

class SnapshotParser {
 public:
  class Visitor {
   public:
    virtual ~Visitor() = default;
    virtual Status OnSection(const std::string& module, uint32_t version) = 0;
    virtual Status OnRecord(std::string_view record) = 0;
  };
  explicit SnapshotParser(Visitor& visitor) : visitor_(visitor) {}
  // Takes the next bytes of the stream. After an error, every call returns it again.
  Status Feed(std::string_view bytes);
  // The stream ended: an error unless the trailer was read and its counts match.
  Status Finish();

 private:
  Status Consume(char type, std::string_view payload);
  Status Fail(std::string why);

  Visitor& visitor_;
  std::string pending_;  // an incomplete record carried to the next Feed
  bool magic_read_ = false;
  bool trailer_read_ = false;
  bool in_section_ = false;
  uint32_t sections_ = 0;
  uint64_t records_ = 0;
  uint64_t offset_ = 0;  // of pending_'s first byte in the stream
  Status failed_;
};

}  // namespace synod
