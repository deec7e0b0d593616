#include "kv/kv_state.h"

#include "proto/kv.pb.h"

namespace synod {
namespace {

// A length-delimited protobuf field: tag, varint length, bytes.
void AppendField(std::string& out, uint32_t field, std::string_view bytes) {
  out.push_back(static_cast<char>(field << 3 | 2));
  uint64_t length = bytes.size();
  while (length >= 0x80) {
    out.push_back(static_cast<char>(length | 0x80));
    length >>= 7;
  }
  out.push_back(static_cast<char>(length));
  out.append(bytes);
}

}  // namespace

Proposal KvState::Put(const std::string& key, const std::string& value) {
  wire::KvCommand command;
  command.mutable_put()->set_key(key);
  command.mutable_put()->set_value(value);
  return MakeProposal(kName, command);
}

Proposal KvState::Delete(const std::string& key) {
  wire::KvCommand command;
  command.mutable_delete_()->set_key(key);
  return MakeProposal(kName, command);
}

Status KvState::Check(const std::string& key, const std::string* value) {
  if (key.empty() || key.size() > kMaxKeyBytes) return Status::Invalid("key must be 1-1024 bytes");
  if (value != nullptr && value->size() > kMaxValueBytes) {
    return Status(StatusCode::kTooLarge, "value exceeds 512 KiB");
  }
  return Status::Ok();
}

std::optional<std::string> KvState::Get(const std::string& key) const {
  const Entry* entry = entries_.Find(key);
  if (entry == nullptr) return std::nullopt;
  return std::string(entry->value());
}

Result<std::string> KvState::Apply(const ApplyContext&, uint32_t, std::string_view bytes) {
  wire::KvCommand command;
  if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Invalid("kv: undecodable command");
  }
  switch (command.body_case()) {
    case wire::KvCommand::kPut: {
      if (Status bad = Check(command.put().key(), &command.put().value()); !bad.ok()) return bad;
      entries_.Put(Entry{SharedBytes(command.put().key(), command.put().value())});
      return std::string();
    }
    case wire::KvCommand::kDelete:
      if (!entries_.Erase(command.delete_().key())) return Status::NotFound("no such key");
      return std::string();
    case wire::KvCommand::BODY_NOT_SET:
      break;
  }
  return Status::Invalid("kv: unknown command kind");
}

std::unique_ptr<SectionCapture> KvState::Capture() const {
  // A KvPut's wire form, written directly: a million records are serialized in the time
  // protobuf would take to copy them into messages.
  return CaptureMap(entries_, [](const Entry& entry, std::string& bytes) {
    bytes.clear();
    AppendField(bytes, 1, entry.key());
    AppendField(bytes, 2, entry.value());
    return std::string_view(bytes);
  });
}

std::unique_ptr<SectionLoader> KvState::NewLoader(uint32_t) {
  class Loader final : public SectionLoader {
   public:
    explicit Loader(KvState& state) : state_(state) {}
    Status Add(std::string_view bytes) override {
      if (!record_.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        return Status::Invalid("kv: undecodable record");
      }
      if (Status bad = Check(record_.key(), &record_.value()); !bad.ok()) {
        return Status::Invalid("kv: " + bad.message());
      }
      if (!entries_.Put(Entry{SharedBytes(record_.key(), record_.value())})) {
        return Status::Invalid("kv: key " + record_.key() + " twice");
      }
      return Status::Ok();
    }
    void Install() override { std::swap(state_.entries_, entries_); }

   private:
    KvState& state_;
    wire::KvPut record_;
    Table entries_;
  };
  return std::make_unique<Loader>(*this);
}

}  // namespace synod
