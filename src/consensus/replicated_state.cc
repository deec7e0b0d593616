#include "consensus/replicated_state.h"

#include <google/protobuf/arena.h>
#include <google/protobuf/message_lite.h>

#include <cstdio>
#include <cstdlib>
#include <deque>

namespace synod {
namespace {

wire::OpResult ResultOf(const Result<std::string>& applied, uint64_t index) {
  wire::OpResult result;
  if (applied.ok()) {
    result.set_value(applied.value());
  } else {
    result.set_code(static_cast<uint32_t>(applied.code()));
    result.set_error(applied.error());
  }
  result.set_index(index);
  return result;
}

}  // namespace

std::string EncodeEntry(int64_t at_nanos, const std::vector<wire::Op>& ops) {
  wire::Entry entry;
  entry.set_format(kEntryFormat);
  entry.set_at_nanos(at_nanos);
  for (const auto& op : ops) *entry.add_ops() = op;
  return entry.SerializeAsString();
}

wire::Op OpOf(Proposal proposal) {
  wire::Op op;
  op.set_module(std::move(proposal.module));
  op.set_version(proposal.version);
  op.set_body(std::move(proposal.body));
  op.set_request_id(std::move(proposal.request_id));
  return op;
}

// ---- the request log ------------------------------------------------------------------------

// Results of the last kKeptRequestIds proposals that carried a request id, oldest forgotten
// first. Its section holds one RecentRequest per id, in the order they were applied.
class ReplicatedState::RequestLog final : public StateModule {
 public:
  std::string_view name() const override { return "requests"; }
  Result<std::string> Apply(const ApplyContext&, uint32_t, std::string_view) override {
    return Status::Invalid("the request log takes no commands");
  }

  std::optional<wire::OpResult> Find(const std::string& id) const {
    const Answer* found = results_.Find(StableHash(id));
    if (found == nullptr || found->id != id) return std::nullopt;
    return found->ToResult();
  }
  void Remember(const std::string& id, const wire::OpResult& result) {
    const uint64_t sequence = next_sequence_++;
    const uint64_t hash = StableHash(id);
    results_.Put(hash, Answer::Of(sequence, id, result));
    order_.emplace_back(sequence, hash);
    while (order_.size() > kKeptRequestIds) {
      results_.Erase(order_.front().second);
      order_.pop_front();
    }
  }
  size_t size() const { return results_.size(); }

  std::unique_ptr<SectionCapture> Capture() const override {
    class View final : public SectionCapture {
     public:
      explicit View(Map::View view) : view_(std::move(view)) {}
      bool WriteSome(SectionSink& sink, size_t budget) override {
        size_t written = 0;
        wire::RecentRequest record;
        while (written < budget) {
          const auto* entry = view_.Next(cursor_);
          if (entry == nullptr) return true;
          record.set_request_id(entry->second.id);
          record.set_sequence(entry->second.sequence);
          *record.mutable_result() = entry->second.ToResult();
          const std::string bytes = record.SerializeAsString();
          written += bytes.size();
          sink.Add(bytes);
        }
        return false;
      }

     private:
      Map::View view_;
      Map::View::Cursor cursor_;
    };
    return std::make_unique<View>(results_.Freeze());
  }

  std::unique_ptr<SectionLoader> NewLoader(uint32_t) override {
    class Loader final : public SectionLoader {
     public:
      explicit Loader(RequestLog& log) : log_(log) {}
      Status Add(std::string_view record) override {
        wire::RecentRequest request;
        if (!request.ParseFromArray(record.data(), static_cast<int>(record.size())) ||
            request.request_id().empty()) {
          return Status::Invalid("requests: undecodable record");
        }
        const uint64_t sequence = request.sequence();
        entries_.emplace_back(sequence, std::move(request));
        return Status::Ok();
      }
      Status Finish() override {
        std::sort(entries_.begin(), entries_.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        for (auto& [sequence, request] : entries_) {
          if (results_.Find(StableHash(request.request_id())) != nullptr) {
            return Status::Invalid("requests: id " + request.request_id() + " twice");
          }
          const uint64_t hash = StableHash(request.request_id());
          results_.Put(hash, Answer::Of(sequence, request.request_id(), request.result()));
          order_.emplace_back(sequence, hash);
          next_sequence_ = sequence + 1;
        }
        return Status::Ok();
      }
      void Install() override {
        std::swap(log_.results_, results_);
        std::swap(log_.order_, order_);
        log_.next_sequence_ = next_sequence_;
      }

     private:
      RequestLog& log_;
      std::vector<std::pair<uint64_t, wire::RecentRequest>> entries_;
      Map results_;
      std::deque<std::pair<uint64_t, uint64_t>> order_;
      uint64_t next_sequence_ = 0;
    };
    return std::make_unique<Loader>(*this);
  }

 private:
  // An OpResult, held compactly: most are empty but for the index.
  struct Answer {
    uint64_t sequence = 0;  // the order it was first applied in
    std::string id;
    uint64_t index = 0;
    uint32_t code = 0;
    std::string error;
    std::string value;

    static Answer Of(uint64_t sequence, const std::string& id, const wire::OpResult& result) {
      return Answer{sequence, id, result.index(), result.code(), result.error(), result.value()};
    }
    wire::OpResult ToResult() const {
      wire::OpResult result;
      result.set_index(index);
      result.set_code(code);
      result.set_error(error);
      result.set_value(value);
      return result;
    }
  };
  // By the id's stable 64-bit hash: integers compare faster than ids that share a prefix. Two ids
  // of one hash (one chance in 2^64 per pair) would keep the newer answer only.
  using Map = CowMap<uint64_t, Answer>;
  Map results_;
  std::deque<std::pair<uint64_t, uint64_t>> order_;  // (sequence, id hash), oldest first
  uint64_t next_sequence_ = 0;
};

// ---- registry -------------------------------------------------------------------------------

ReplicatedState::ReplicatedState() : requests_(std::make_unique<RequestLog>()) {
  Register(*requests_);
}

ReplicatedState::~ReplicatedState() = default;

void ReplicatedState::Register(StateModule& module) {
  const auto [it, added] = modules_.emplace(std::string(module.name()), &module);
  if (!added) {
    std::fprintf(stderr, "state module '%s' registered twice\n",
                 std::string(module.name()).c_str());
    std::abort();
  }
}

std::map<std::string, uint32_t> ReplicatedState::ModuleVersions() const {
  std::map<std::string, uint32_t> versions;
  for (const auto& [name, module] : modules_) versions[name] = module->version();
  return versions;
}

std::optional<uint32_t> ReplicatedState::ProposableVersion(std::string_view module) const {
  auto it = modules_.find(module);
  if (it == modules_.end() || it->second == requests_.get()) return std::nullopt;
  return it->second->version();
}

Result<StateModule*> ReplicatedState::Reader(const std::string& where, const std::string& module,
                                             uint32_t version, bool takes_commands) const {
  auto it = modules_.find(module);
  if (it == modules_.end() || (takes_commands && it->second == requests_.get())) {
    return Status::Unsupported(where + " holds module '" + module +
                               "', which this build does not have (written by a newer Synod?)");
  }
  if (version == 0 || version > it->second->version()) {
    return Status::Unsupported(where + " holds module '" + module + "' version " +
                               std::to_string(version) + "; this build reads up to version " +
                               std::to_string(it->second->version()));
  }
  return it->second;
}

size_t ReplicatedState::kept_request_ids() const { return requests_->size(); }

void ReplicatedState::NotifyChange() const {
  for (const auto& listener : change_listeners_) listener();
}

Result<std::vector<wire::OpResult>> ReplicatedState::Apply(uint64_t index, std::string_view bytes) {
  // Parsed into an arena: the thousand operations of a batch are freed at once.
  google::protobuf::Arena arena;
  wire::Entry& entry = *google::protobuf::Arena::CreateMessage<wire::Entry>(&arena);
  if (!entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Unsupported("log entry " + std::to_string(index) +
                               " is not a Synod entry this build can read");
  }
  if (entry.format() != kEntryFormat) {
    return Status::Unsupported("log entry " + std::to_string(index) + " has format " +
                               std::to_string(entry.format()) + "; this build reads format " +
                               std::to_string(kEntryFormat));
  }
  // Check everything before applying anything: a partial entry would diverge.
  std::vector<StateModule*> targets;
  targets.reserve(entry.ops_size());
  for (const wire::Op& op : entry.ops()) {
    Result<StateModule*> target = Reader("log entry " + std::to_string(index), op.module(),
                                         op.version(), /*takes_commands=*/true);
    if (!target.ok()) return target.status();
    targets.push_back(target.value());
  }
  const ApplyContext context{index, entry.at_nanos()};
  std::vector<wire::OpResult> results;
  results.reserve(entry.ops_size());
  for (int i = 0; i < entry.ops_size(); ++i) {
    const wire::Op& op = entry.ops(i);
    if (!op.request_id().empty()) {
      if (std::optional<wire::OpResult> first = requests_->Find(op.request_id())) {
        results.push_back(std::move(*first));  // a retry: the first answer, applied once
        continue;
      }
    }
    results.push_back(ResultOf(targets[i]->Apply(context, op.version(), op.body()), index));
    if (!op.request_id().empty()) requests_->Remember(op.request_id(), results.back());
  }
  ++entries_applied_;
  NotifyChange();
  return results;
}

Result<std::string> ReplicatedState::ApplyEntry(uint64_t index, std::string_view bytes) {
  Result<std::vector<wire::OpResult>> results = Apply(index, bytes);
  if (!results.ok()) return results.status();
  wire::EntryResult batch;
  for (auto& result : results.value()) *batch.add_results() = std::move(result);
  return batch.SerializeAsString();
}

std::unique_ptr<SnapshotProducer> ReplicatedState::Capture() const {
  std::vector<CapturedSection> sections;
  sections.reserve(modules_.size());
  for (const auto& [name, module] : modules_) {
    sections.push_back(CapturedSection{name, module->section_version(), module->Capture()});
  }
  return std::make_unique<SnapshotProducer>(std::move(sections));
}

// Reads a stream into a loader per module; installs them all at the end.
class ReplicatedState::Session final : public RestoreSession, private SnapshotParser::Visitor {
 public:
  explicit Session(ReplicatedState& state) : state_(state), parser_(*this) {}

  Status Feed(std::string_view bytes) override { return parser_.Feed(bytes); }

  Status Commit() override {
    if (Status finished = parser_.Finish(); !finished.ok()) return finished;
    // A module without a section in the snapshot starts empty.
    for (const auto& [name, module] : state_.modules_) {
      if (loaders_.count(name) == 0) loaders_[name] = module->NewLoader(module->version());
    }
    for (auto& [name, loader] : loaders_) {
      if (Status finished = loader->Finish(); !finished.ok()) return finished;
    }
    for (auto& [name, loader] : loaders_) loader->Install();
    state_.NotifyChange();
    return Status::Ok();
  }

 private:
  Status OnSection(const std::string& module, uint32_t version) override {
    Result<StateModule*> reader =
        state_.Reader("the snapshot", module, version, /*takes_commands=*/false);
    if (!reader.ok()) return reader.status();
    if (loaders_.count(module) != 0) {
      return Status::Invalid("snapshot: module '" + module + "' appears twice");
    }
    current_ = (loaders_[module] = reader.value()->NewLoader(version)).get();
    return Status::Ok();
  }
  Status OnRecord(std::string_view record) override { return current_->Add(record); }

  ReplicatedState& state_;
  SnapshotParser parser_;
  std::map<std::string, std::unique_ptr<SectionLoader>> loaders_;
  SectionLoader* current_ = nullptr;
};

std::unique_ptr<RestoreSession> ReplicatedState::BeginRestore() {
  return std::make_unique<Session>(*this);
}

Status ReplicatedState::Restore(std::string_view snapshot) {
  auto session = BeginRestore();
  if (Status fed = session->Feed(snapshot); !fed.ok()) return fed;
  return session->Commit();
}

}  // namespace synod
