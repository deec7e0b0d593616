// StateModule: one feature's slice of the replicated state.
//
// A feature (membership, the master clock, ranks, the key/value surface, and next timers and
// the file index) keeps its replicated state in a module that it registers with the
// ReplicatedState before the engine starts. Consensus routes each log operation to the module
// it names and knows nothing of its commands or state.
//
// Contract for implementers:
// - Apply() is deterministic: it reads time only from the context (the leader's clock, stamped
//   in the entry), draws no random numbers and does no I/O, so that every node applying the same
//   log ends identical. A refused command returns an error status and changes nothing.
// - Capture() runs on the loop thread and must be cheap (O(1) or O(what changed since the last
//   capture)): it returns an immutable view that is written out later, on another thread, while
//   Apply() keeps running on the loop. The view must not share anything the loop mutates.
// - NewLoader() builds a fresh state from a section's records; nothing is visible until
//   Install(), which cannot fail. A restore reads every section before installing any, so a
//   failed restore leaves the old state.
// Loop thread only, except SectionCapture::WriteSome (any one thread at a time).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace google::protobuf {
class MessageLite;
}

namespace synod {

// What a module may know about the entry it applies.
struct ApplyContext {
  uint64_t index = 0;    // the log index (0 where no log is involved, as in some tests)
  int64_t at_nanos = 0;  // UTC, the leader's clock when it proposed the entry
};

// An operation as a module proposes it; consensus stamps the time and puts it in an entry.
struct Proposal {
  std::string module;
  uint32_t version = 1;
  std::string body;
  std::string request_id;  // empty: one is generated where the proposal enters the cluster
};
// A proposal's outcome once committed.
struct Committed {
  std::string value;
  uint64_t index = 0;  // the log entry that first carried it
};

Proposal MakeProposal(std::string_view module, const google::protobuf::MessageLite& command,
                      uint32_t version = 1);

// Where a section's records go. Records are opaque bytes to the snapshot format.
class SectionSink {
 public:
  virtual ~SectionSink() = default;
  virtual void Add(std::string_view record) = 0;
  // Serializes `record` deterministically and adds it.
  void AddMessage(const google::protobuf::MessageLite& record);
};

// An immutable view of a module's state, written out in pieces.
class SectionCapture {
 public:
  virtual ~SectionCapture() = default;
  // Adds records until about `budget` bytes were added or the section is complete; returns
  // true once it is complete. Called again after false, it resumes where it stopped.
  virtual bool WriteSome(SectionSink& sink, size_t budget) = 0;
};

// Builds a module's next state from its section, without touching the current one.
class SectionLoader {
 public:
  virtual ~SectionLoader() = default;
  // One record, in the order they were written; an error names what is wrong with it.
  virtual Status Add(std::string_view record) = 0;
  // After the last record (or none, for a snapshot without this module's section).
  virtual Status Finish() { return Status::Ok(); }
  // Makes the loaded state the module's. Cannot fail.
  virtual void Install() = 0;
};

class StateModule {
 public:
  virtual ~StateModule() = default;
  // A stable name, stored in the log and in snapshots: never change it.
  virtual std::string_view name() const = 0;
  // The newest command and section version this build reads. Entries and snapshots of a newer
  // version stop the node instead of being applied in part.
  virtual uint32_t version() const { return 1; }
  // The section version Capture() writes now (<= version()). A module whose newer layout only
  // matters once a newer command was applied (which every member must support first) writes
  // the older one until then, so that members still on an older build can read its snapshots.
  virtual uint32_t section_version() const { return version(); }
  // Applies one command of `version` (<= version()); returns the value for the proposer.
  virtual Result<std::string> Apply(const ApplyContext& context, uint32_t version,
                                    std::string_view command) = 0;
  virtual std::unique_ptr<SectionCapture> Capture() const = 0;
  virtual std::unique_ptr<SectionLoader> NewLoader(uint32_t version) = 0;
};

// A capture of a CowMap (core/cow_map.h): the frozen view, walked on the writing thread; each
// entry becomes one record, `encode(entry, scratch)` returning its bytes (in `scratch`, or in the
// entry itself).
template <typename Map, typename Encode>
std::unique_ptr<SectionCapture> CaptureMap(const Map& map, Encode encode) {
  class View final : public SectionCapture {
   public:
    View(typename Map::View view, Encode encode)
        : view_(std::move(view)), encode_(std::move(encode)) {}
    bool WriteSome(SectionSink& sink, size_t budget) override {
      size_t written = 0;
      while (written < budget) {
        const auto* entry = view_.Next(cursor_);
        if (entry == nullptr) return true;
        const std::string_view record = encode_(*entry, scratch_);
        sink.Add(record);
        written += record.size();
      }
      return false;
    }

   private:
    typename Map::View view_;
    typename Map::View::Cursor cursor_;
    Encode encode_;
    std::string scratch_;
  };
  return std::make_unique<View>(map.Freeze(), std::move(encode));
}

// A capture for small, bounded state: the records are built on the loop when captured (cost
// O(state), which such a module keeps small) and handed out afterwards.
class BufferedCapture final : public SectionCapture, public SectionSink {
 public:
  void Add(std::string_view record) override { records_.emplace_back(record); }
  bool WriteSome(SectionSink& sink, size_t budget) override;

 private:
  std::vector<std::string> records_;
  size_t next_ = 0;
};

}  // namespace synod
