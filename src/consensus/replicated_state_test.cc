#include "consensus/replicated_state.h"

#include <gtest/gtest.h>

#include "kv/kv_state.h"
#include "proto/kv.pb.h"

namespace synod {
namespace {

// A module that records what it applied, and refuses "bad".
class Journal final : public StateModule {
 public:
  std::string_view name() const override { return "timeline"; }
  Result<std::string> Apply(const ApplyContext& context, uint32_t, std::string_view body) override {
    if (body == "bad") return Status::Invalid("bad entry");
    lines.push_back(std::string(body) + "@" + std::to_string(context.at_nanos) + "#" +
                    std::to_string(context.index));
    return "line " + std::to_string(lines.size());
  }
  std::unique_ptr<SectionCapture> Capture() const override {
    auto capture = std::make_unique<BufferedCapture>();
    for (const auto& line : lines) capture->Add(line);
    return capture;
  }
  std::unique_ptr<SectionLoader> NewLoader(uint32_t) override {
    class Loader final : public SectionLoader {
     public:
      explicit Loader(Journal& journal) : journal_(journal) {}
      Status Add(std::string_view record) override {
        if (record.starts_with("poison")) return Status::Invalid("timeline: poisoned record");
        lines_.emplace_back(record);
        return Status::Ok();
      }
      void Install() override { journal_.lines = std::move(lines_); }

     private:
      Journal& journal_;
      std::vector<std::string> lines_;
    };
    return std::make_unique<Loader>(*this);
  }
  std::vector<std::string> lines;
};

wire::Op Op(std::string module, std::string body, std::string request_id = "",
            uint32_t version = 1) {
  wire::Op op;
  op.set_module(std::move(module));
  op.set_version(version);
  op.set_body(std::move(body));
  op.set_request_id(std::move(request_id));
  return op;
}

wire::Op KvPutOp(const std::string& key, const std::string& value) {
  Proposal put = KvState::Put(key, value);
  return Op(put.module, put.body);
}

struct Node {
  Node() {
    state.Register(journal);
    state.Register(kv);
  }
  Journal journal;
  KvState kv;
  ReplicatedState state;
};

TEST(ReplicatedState, RoutesEachOperationInOrderWithTheEntrysTimeAndIndex) {
  Node node;
  auto results =
      node.state.Apply(7, EncodeEntry(1000, {Op("timeline", "a"), KvPutOp("k", "v"),
                                             Op("timeline", "bad"), Op("timeline", "b")}));
  ASSERT_TRUE(results.ok()) << results.error();
  ASSERT_EQ(results.value().size(), 4u);
  EXPECT_EQ(results.value()[0].value(), "line 1");
  EXPECT_EQ(results.value()[1].code(), 0u);
  EXPECT_EQ(results.value()[2].code(), static_cast<uint32_t>(StatusCode::kInvalid));
  EXPECT_EQ(results.value()[2].error(), "bad entry");
  EXPECT_EQ(results.value()[3].value(), "line 2");
  EXPECT_EQ(node.journal.lines, (std::vector<std::string>{"a@1000#7", "b@1000#7"}))
      << "time and index come from the entry, never from a clock";
  EXPECT_EQ(node.kv.Get("k").value_or(""), "v");
}

TEST(ReplicatedState, AnEntryForAnUnknownModuleOrVersionIsRefusedWhole) {
  Node node;
  for (const auto& entry : {EncodeEntry(1, {Op("timeline", "a"), Op("timers", "x")}),
                            EncodeEntry(1, {Op("timeline", "a"), Op("timeline", "b", "", 2)}),
                            EncodeEntry(1, {Op("timeline", "a"), Op("requests", "x")}),
                            std::string("\xff\xff\x01", 3)}) {
    auto results = node.state.Apply(3, entry);
    ASSERT_FALSE(results.ok());
    EXPECT_EQ(results.code(), StatusCode::kUnsupported) << results.error();
  }
  wire::Entry old_format;
  old_format.set_format(1);
  *old_format.add_ops() = Op("timeline", "a");
  auto results = node.state.Apply(4, old_format.SerializeAsString());
  ASSERT_FALSE(results.ok());
  EXPECT_NE(results.error().find("format 1"), std::string::npos) << results.error();
  EXPECT_TRUE(node.journal.lines.empty()) << "nothing of a refused entry is applied";
  EXPECT_EQ(node.state.entries_applied(), 0u);
}

TEST(ReplicatedState, ARetriedRequestIdIsAppliedOnceAndAnsweredWithTheFirstResult) {
  Node node;
  auto first = node.state.Apply(1, EncodeEntry(1, {Op("timeline", "a", "req-1")}));
  auto retry =
      node.state.Apply(2, EncodeEntry(2, {Op("timeline", "a", "req-1"), Op("timeline", "b")}));
  ASSERT_TRUE(first.ok() && retry.ok());
  EXPECT_EQ(retry.value()[0].value(), first.value()[0].value());
  EXPECT_EQ(retry.value()[0].index(), 1u) << "the index the operation was committed at";
  EXPECT_EQ(node.journal.lines.size(), 2u);
  // A refused operation's answer is remembered too: a retry does not apply it later.
  node.state.Apply(3, EncodeEntry(3, {Op("timeline", "bad", "req-2")}));
  auto again = node.state.Apply(4, EncodeEntry(4, {Op("timeline", "bad", "req-2")}));
  EXPECT_EQ(again.value()[0].error(), "bad entry");
}

TEST(ReplicatedState, RequestIdsAreForgottenOldestFirst) {
  Node node;
  for (size_t i = 0; i <= ReplicatedState::kKeptRequestIds; ++i) {
    node.state.Apply(i + 1, EncodeEntry(1, {Op("timeline", "x", "id-" + std::to_string(i))}));
  }
  EXPECT_EQ(node.state.kept_request_ids(), ReplicatedState::kKeptRequestIds);
  const size_t before = node.journal.lines.size();
  node.state.Apply(1'000'000, EncodeEntry(1, {Op("timeline", "x", "id-0")}));  // forgotten
  // Remembering id-0 again made id-1 the oldest, and forgot it; id-2 is kept.
  node.state.Apply(1'000'001, EncodeEntry(1, {Op("timeline", "x", "id-2")}));
  EXPECT_EQ(node.journal.lines.size(), before + 1);
}

// What a node holds, through the modules' accessors.
void ExpectSameState(Node& a, Node& b, const std::vector<std::string>& keys) {
  EXPECT_EQ(a.journal.lines, b.journal.lines);
  EXPECT_EQ(a.kv.size(), b.kv.size());
  for (const auto& key : keys) EXPECT_EQ(a.kv.Get(key), b.kv.Get(key)) << key;
  EXPECT_EQ(a.state.kept_request_ids(), b.state.kept_request_ids());
}

std::string Produce(SnapshotProducer& producer, size_t budget = 1000) {
  std::string out;
  while (!producer.Produce(out, budget)) {
  }
  return out;
}

TEST(ReplicatedState, ASnapshotHoldsTheStateWhenCapturedWhateverIsAppliedAfter) {
  Node node, expected;
  std::vector<std::string> keys;
  for (int i = 0; i < 3000; ++i) {
    keys.push_back("key" + std::to_string(i));
    const std::string entry = EncodeEntry(i, {KvPutOp(keys.back(), "v" + std::to_string(i)),
                                              Op("timeline", "j", "r" + std::to_string(i))});
    node.state.Apply(i + 1, entry);
    expected.state.Apply(i + 1, entry);
  }
  auto capture = node.state.Capture();
  // The loop goes on: overwrites, deletes, new keys, more journal lines.
  for (int i = 0; i < 3000; i += 2) {
    node.state.Apply(5000 + i,
                     EncodeEntry(1, {KvPutOp(keys[i], "changed"), Op("timeline", "later")}));
    wire::KvCommand erase;
    erase.mutable_delete_()->set_key(keys[i + 1]);
    node.state.Apply(9000 + i, EncodeEntry(1, {Op("kv", erase.SerializeAsString())}));
  }
  const std::string bytes = Produce(*capture);
  EXPECT_EQ(bytes.size() % 8, 0u);
  Node restored;
  ASSERT_TRUE(restored.state.Restore(bytes).ok());
  ExpectSameState(restored, expected, keys);
  EXPECT_EQ(node.kv.Get(keys[0]).value_or(""), "changed") << "the live state moved on";
  // The request ids came along: a retry after the restore is still answered, not applied.
  restored.state.Apply(20000, EncodeEntry(1, {Op("timeline", "j", "r5")}));
  EXPECT_EQ(restored.journal.lines.size(), expected.journal.lines.size());
}

TEST(ReplicatedState, ARestoreThatFailsHalfWayLeavesThePreviousState) {
  Node source;
  source.state.Apply(1, EncodeEntry(1, {KvPutOp("new", "1"), Op("timeline", "poison")}));
  const std::string bytes = Produce(*source.state.Capture());

  Node node;
  node.state.Apply(1, EncodeEntry(1, {KvPutOp("old", "1"), Op("timeline", "old")}));
  Status restored = node.state.Restore(
      bytes);  // "timeline" comes after "kv" and "requests", and refuses its record
  ASSERT_FALSE(restored.ok());
  EXPECT_NE(restored.message().find("poisoned"), std::string::npos) << restored.message();
  EXPECT_EQ(node.kv.Get("old").value_or(""), "1");
  EXPECT_FALSE(node.kv.Get("new").has_value());
  EXPECT_EQ(node.journal.lines.size(), 1u);

  // Truncated anywhere: refused, state kept.
  Node clean;
  clean.state.Apply(1, EncodeEntry(1, {KvPutOp("new", "1"), Op("timeline", "fine")}));
  const std::string good = Produce(*clean.state.Capture());
  for (size_t cut : {size_t{0}, size_t{5}, size_t{8}, good.size() / 2, good.size() - 9}) {
    EXPECT_FALSE(node.state.Restore(good.substr(0, cut)).ok()) << cut;
    EXPECT_EQ(node.kv.Get("old").value_or(""), "1") << cut;
  }
  ASSERT_TRUE(node.state.Restore(good).ok());
  EXPECT_EQ(node.kv.Get("new").value_or(""), "1");
  EXPECT_FALSE(node.kv.Get("old").has_value()) << "a restore replaces the state";
}

TEST(ReplicatedState, ASnapshotWithAModuleThisBuildLacksIsRefused) {
  Node source;
  source.state.Apply(1, EncodeEntry(1, {Op("timeline", "a")}));
  const std::string bytes = Produce(*source.state.Capture());
  ReplicatedState without_journal;  // a build without the module
  KvState kv;
  without_journal.Register(kv);
  Status restored = without_journal.Restore(bytes);
  ASSERT_FALSE(restored.ok());
  EXPECT_EQ(restored.code(), StatusCode::kUnsupported);
  EXPECT_NE(restored.message().find("timeline"), std::string::npos);
}

TEST(ReplicatedState, ListenersHearEveryEntryAndRestore) {
  Node node;
  int heard_a = 0, heard_b = 0;
  node.state.AddChangeListener([&] { ++heard_a; });
  node.state.AddChangeListener([&] { ++heard_b; });
  node.state.Apply(1, EncodeEntry(1, {Op("timeline", "a")}));
  ASSERT_TRUE(node.state.Restore(Produce(*node.state.Capture())).ok());
  EXPECT_EQ(heard_a, 2);
  EXPECT_EQ(heard_b, 2);
}

TEST(ReplicatedStateDeathTest, RegisteringTwoModulesOfOneNameAborts) {
  EXPECT_DEATH(
      {
        Node node;
        Journal again;
        node.state.Register(again);
      },
      "registered twice");
}

}  // namespace
}  // namespace synod
