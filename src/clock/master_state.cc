#include "clock/master_state.h"

#include "proto/clock_state.pb.h"

namespace synod {

Proposal MasterClockState::Choose(const std::string& id, const std::string& reason) {
  wire::ClockCommand command;
  command.mutable_choose_master()->set_id(id);
  command.mutable_choose_master()->set_reason(reason);
  return MakeProposal(kName, command);
}

Result<std::string> MasterClockState::Apply(const ApplyContext& context, uint32_t,
                                            std::string_view bytes) {
  wire::ClockCommand command;
  if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      !command.has_choose_master()) {
    return Status::Invalid("clock: undecodable command");
  }
  const std::string& id = command.choose_master().id();
  if (!id.empty() && members_.FindMember(id) == nullptr) return Status::NotFound("no member " + id);
  if (id != master_id_) master_since_nanos_ = context.at_nanos;
  master_id_ = id;
  return id;
}

std::unique_ptr<SectionCapture> MasterClockState::Capture() const {
  auto capture = std::make_unique<BufferedCapture>();
  wire::ClockSnapshot snapshot;
  snapshot.set_master_id(master_id_);
  snapshot.set_master_since_nanos(master_since_nanos_);
  capture->AddMessage(snapshot);
  return capture;
}

std::unique_ptr<SectionLoader> MasterClockState::NewLoader(uint32_t) {
  class Loader final : public SectionLoader {
   public:
    explicit Loader(MasterClockState& state) : state_(state) {}
    Status Add(std::string_view record) override {
      if (records_++ > 0) return Status::Invalid("clock: more than one record");
      if (!snapshot_.ParseFromArray(record.data(), static_cast<int>(record.size()))) {
        return Status::Invalid("clock: undecodable record");
      }
      return Status::Ok();
    }
    void Install() override {
      state_.master_id_ = snapshot_.master_id();
      state_.master_since_nanos_ = snapshot_.master_since_nanos();
    }

   private:
    MasterClockState& state_;
    int records_ = 0;
    wire::ClockSnapshot snapshot_;
  };
  return std::make_unique<Loader>(*this);
}

}  // namespace synod
