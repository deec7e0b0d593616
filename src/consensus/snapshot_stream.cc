#include "consensus/snapshot_stream.h"

#include <algorithm>
#include <cstring>

#include "proto/consensus.pb.h"

namespace synod {
namespace {

constexpr size_t kHeaderBytes = 5;  // type and length

void AppendRecord(std::string& out, char type, std::string_view payload) {
  const auto length = static_cast<uint32_t>(payload.size());
  out.push_back(type);
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>(length >> shift));
  out.append(payload);
}

}  // namespace

// ---- producer -------------------------------------------------------------------------------

class SnapshotProducer::Sink final : public SectionSink {
 public:
  Sink(std::string& out, uint64_t& records) : out_(out), records_(records) {}
  void Add(std::string_view record) override {
    // A module that writes a record this large has a bug: a reader would refuse it.
    if (record.size() > kMaxSnapshotRecordBytes) std::abort();
    AppendRecord(out_, 'R', record);
    ++records_;
  }

 private:
  std::string& out_;
  uint64_t& records_;
};

SnapshotProducer::SnapshotProducer(std::vector<CapturedSection> sections)
    : sections_(std::move(sections)) {}

bool SnapshotProducer::Produce(std::string& out, size_t budget) {
  if (done_) return true;
  const size_t start = out.size();
  if (!started_) {
    out.append(kSnapshotMagic);
    started_ = true;
  }
  Sink sink(out, records_);
  while (next_section_ < sections_.size() && out.size() - start < budget) {
    CapturedSection& section = sections_[next_section_];
    if (!section_open_) {
      wire::SectionBegin begin;
      begin.set_module(section.module);
      begin.set_version(section.version);
      AppendRecord(out, 'S', begin.SerializeAsString());
      section_open_ = true;
    }
    const size_t used = out.size() - start;
    if (!section.capture->WriteSome(sink, budget > used ? budget - used : 1)) continue;
    section.capture.reset();  // release what the view held as soon as it is written
    section_open_ = false;
    ++next_section_;
  }
  if (next_section_ < sections_.size()) {
    bytes_ += out.size() - start;
    return false;
  }
  wire::SnapshotTrailer trailer;
  trailer.set_sections(static_cast<uint32_t>(sections_.size()));
  trailer.set_records(records_);
  AppendRecord(out, 'T', trailer.SerializeAsString());
  bytes_ += out.size() - start;
  const size_t padding = (8 - bytes_ % 8) % 8;
  out.append(padding, '\0');
  bytes_ += padding;
  done_ = true;
  return true;
}

// ---- parser ---------------------------------------------------------------------------------

Status SnapshotParser::Fail(std::string why) {
  failed_ = Status::Invalid("snapshot: " + why);
  return failed_;
}

Status SnapshotParser::Feed(std::string_view bytes) {
  if (!failed_.ok()) return failed_;
  std::string_view data = bytes;
  if (!pending_.empty()) {
    pending_.append(bytes);
    data = pending_;
  }
  size_t used = 0;
  if (!magic_read_) {
    if (data.size() < kSnapshotMagic.size()) {
      if (kSnapshotMagic.substr(0, data.size()) != data) return Fail("not a Synod snapshot");
      if (pending_.empty()) pending_.assign(bytes);
      return Status::Ok();
    }
    if (data.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
      return Fail(data.substr(0, 7) == "SYNSNAP"
                      ? "format " + std::string(1, data[7]) +
                            " is not supported (this build reads 2)"
                      : "not a Synod snapshot (written by an older or another program)");
    }
    magic_read_ = true;
    used = kSnapshotMagic.size();
  }
  while (true) {
    std::string_view rest = data.substr(used);
    if (trailer_read_) {
      // Only padding may follow the trailer.
      if (rest.find_first_not_of('\0') != std::string_view::npos) {
        return Fail("bytes after the end of the snapshot");
      }
      used = data.size();
      break;
    }
    if (rest.size() < kHeaderBytes) break;
    uint32_t length = 0;
    for (int i = 4; i >= 1; --i) length = (length << 8) | static_cast<uint8_t>(rest[i]);
    if (length > kMaxSnapshotRecordBytes) {
      return Fail("a record of " + std::to_string(length) + " bytes at offset " +
                  std::to_string(offset_ + used) + " exceeds the limit");
    }
    if (rest.size() < kHeaderBytes + length) break;
    if (Status consumed = Consume(rest[0], rest.substr(kHeaderBytes, length)); !consumed.ok()) {
      return consumed;
    }
    used += kHeaderBytes + length;
  }
  offset_ += used;
  if (pending_.empty()) {
    pending_.assign(data.substr(used));
  } else {
    pending_.erase(0, used);
  }
  return Status::Ok();
}

Status SnapshotParser::Consume(char type, std::string_view payload) {
  switch (type) {
    case 'S': {
      wire::SectionBegin begin;
      if (!begin.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
          begin.module().empty()) {
        return Fail("undecodable section header");
      }
      ++sections_;
      in_section_ = true;
      if (Status visited = visitor_.OnSection(begin.module(), begin.version()); !visited.ok()) {
        failed_ = visited;
        return visited;
      }
      return Status::Ok();
    }
    case 'R': {
      if (!in_section_) return Fail("a record outside any section");
      ++records_;
      if (Status visited = visitor_.OnRecord(payload); !visited.ok()) {
        failed_ = visited;
        return visited;
      }
      return Status::Ok();
    }
    case 'T': {
      wire::SnapshotTrailer trailer;
      if (!trailer.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        return Fail("undecodable trailer");
      }
      if (trailer.sections() != sections_ || trailer.records() != records_) {
        return Fail("the trailer counts " + std::to_string(trailer.sections()) + " sections and " +
                    std::to_string(trailer.records()) + " records, the stream held " +
                    std::to_string(sections_) + " and " + std::to_string(records_));
      }
      trailer_read_ = true;
      return Status::Ok();
    }
    default:
      return Fail("unknown record type " + std::to_string(static_cast<uint8_t>(type)));
  }
}

Status SnapshotParser::Finish() {
  if (!failed_.ok()) return failed_;
  if (!trailer_read_) return Fail("truncated (no trailer)");
  return Status::Ok();
}

}  // namespace synod
