#include "consensus/state_module.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message_lite.h>

namespace synod {

Proposal MakeProposal(std::string_view module, const google::protobuf::MessageLite& command,
                      uint32_t version) {
  return Proposal{std::string(module), version, command.SerializeAsString(), ""};
}

void SectionSink::AddMessage(const google::protobuf::MessageLite& record) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  record.SerializeToCodedStream(&coded);
  coded.Trim();
  Add(bytes);
}

bool BufferedCapture::WriteSome(SectionSink& sink, size_t budget) {
  size_t written = 0;
  while (next_ < records_.size() && written < budget) {
    written += records_[next_].size();
    sink.Add(records_[next_]);
    std::string().swap(records_[next_]);  // handed out: free it as the stream advances
    ++next_;
  }
  return next_ == records_.size();
}

}  // namespace synod
