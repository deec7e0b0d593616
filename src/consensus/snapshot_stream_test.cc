#include "consensus/snapshot_stream.h"

#include <gtest/gtest.h>

#include <random>

namespace synod {
namespace {

// Collects what the parser hands out, as "module/version" and records.
class Collector final : public SnapshotParser::Visitor {
 public:
  Status OnSection(const std::string& module, uint32_t version) override {
    seen.push_back("[" + module + "/" + std::to_string(version) + "]");
    return Status::Ok();
  }
  Status OnRecord(std::string_view record) override {
    seen.emplace_back(record);
    return Status::Ok();
  }
  std::vector<std::string> seen;
};

std::unique_ptr<SectionCapture> Records(std::vector<std::string> records) {
  auto capture = std::make_unique<BufferedCapture>();
  for (auto& record : records) capture->Add(record);
  return capture;
}

std::string Stream(size_t budget) {
  std::vector<CapturedSection> sections;
  sections.push_back({"alpha", 1, Records({"a1", std::string(5000, 'x'), ""})});
  sections.push_back({"beta", 3, Records({})});
  sections.push_back({"gamma", 2, Records({"g"})});
  SnapshotProducer producer(std::move(sections));
  std::string out;
  int calls = 0;
  while (!producer.Produce(out, budget)) ++calls;
  EXPECT_TRUE(producer.done());
  if (budget < 100) {
    EXPECT_GT(calls, 2) << "a small budget produces the stream in pieces";
  }
  return out;
}

const std::vector<std::string> kExpected = {
    "[alpha/1]", "a1", std::string(5000, 'x'), "", "[beta/3]", "[gamma/2]", "g"};

TEST(SnapshotStream, RoundTripsWhateverThePieceSizes) {
  const std::string whole = Stream(1 << 20);
  EXPECT_EQ(whole, Stream(10)) << "the same stream whatever the production budget";
  EXPECT_EQ(whole.size() % 8, 0u);
  for (size_t piece : {size_t{1}, size_t{3}, size_t{7}, size_t{100}, whole.size()}) {
    Collector collector;
    SnapshotParser parser(collector);
    for (size_t at = 0; at < whole.size(); at += piece) {
      ASSERT_TRUE(parser.Feed(std::string_view(whole).substr(at, piece)).ok()) << piece;
    }
    ASSERT_TRUE(parser.Finish().ok()) << piece;
    EXPECT_EQ(collector.seen, kExpected) << piece;
  }
}

TEST(SnapshotStream, RejectsTruncatedForeignAndCorruptStreams) {
  const std::string whole = Stream(1 << 20);
  auto parse = [](std::string_view bytes) {
    Collector collector;
    SnapshotParser parser(collector);
    Status fed = parser.Feed(bytes);
    return fed.ok() ? parser.Finish() : fed;
  };
  for (size_t cut = 0; cut + 8 < whole.size(); cut += 97) {
    EXPECT_FALSE(parse(whole.substr(0, cut)).ok()) << "cut at " << cut;
  }
  Status foreign = parse(std::string("\x0a\x05hello", 7) + std::string(64, '\0'));
  EXPECT_NE(foreign.message().find("not a Synod snapshot"), std::string::npos) << foreign.message();
  Status newer = parse("SYNSNAP9" + whole.substr(8));
  EXPECT_NE(newer.message().find("format 9"), std::string::npos) << newer.message();
  std::string bad_type = whole;
  bad_type[8] = 'Q';
  EXPECT_FALSE(parse(bad_type).ok());
  std::string huge = whole.substr(0, 8) + "R" + std::string("\xff\xff\xff\x7f", 4);
  EXPECT_NE(parse(huge).message().find("exceeds"), std::string::npos);
  EXPECT_FALSE(parse(whole + "trailing garbage").ok());
  EXPECT_TRUE(parse(whole + std::string(8, '\0')).ok()) << "padding may follow the trailer";
}

TEST(SnapshotStream, RandomBytesAreRefusedWithoutCrashing) {
  std::mt19937 random(42);
  const std::string whole = Stream(1 << 20);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes = whole;
    const int flips = 1 + round % 5;
    for (int i = 0; i < flips; ++i) bytes[random() % bytes.size()] = static_cast<char>(random());
    Collector collector;
    SnapshotParser parser(collector);
    Status status = parser.Feed(bytes);
    if (status.ok()) status = parser.Finish();
    // Either refused, or (a flip inside a record's payload) read as records.
    if (!status.ok()) {
      EXPECT_FALSE(status.message().empty());
    }
  }
}

}  // namespace
}  // namespace synod
