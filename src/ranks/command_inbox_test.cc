#include "ranks/command_inbox.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace synod {
namespace {

ReceivedCommand Command(uint64_t id, std::string text = "START_TRANSMIT") {
  ReceivedCommand command;
  command.id = id;
  command.sender_rank = 1;
  command.sender = "127.0.0.2:7400";
  command.text = std::move(text);
  command.rank = 3;
  return command;
}

std::vector<uint64_t> Ids(const std::vector<ReceivedCommand>& commands) {
  std::vector<uint64_t> ids;
  for (const auto& command : commands) ids.push_back(command.id);
  return ids;
}

class CommandInboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/synod-inbox-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/commands.jsonl";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
  std::string path_;
};

using Ids_ = std::vector<uint64_t>;

TEST_F(CommandInboxTest, ARetriedDeliveryIsNotProcessedTwice) {
  auto inbox = CommandInbox::Open("").value();
  EXPECT_EQ(Ids(inbox->Accept({Command(3), Command(5)}).value()), (Ids_{3, 5}));
  // The ack was lost; the leader (perhaps a new one) sends again, with one more.
  EXPECT_EQ(Ids(inbox->Accept({Command(3), Command(5), Command(8)}).value()), (Ids_{8}));
  EXPECT_TRUE(inbox->Accept({Command(5)}).value().empty());
  EXPECT_EQ(inbox->received_through(), 8u);
  EXPECT_EQ(Ids(inbox->Since(0, 100)), (Ids_{3, 5, 8}));
  EXPECT_EQ(Ids(inbox->Since(3, 1)), (Ids_{5}));
}

TEST_F(CommandInboxTest, ADeliveryOutOfOrderTakesOnlyWhatIsNew) {
  auto inbox = CommandInbox::Open("").value();
  EXPECT_EQ(Ids(inbox->Accept({Command(4), Command(2), Command(6), Command(6)}).value()),
            (Ids_{4, 6}));
}

TEST_F(CommandInboxTest, WhatWasReceivedSurvivesARestart) {
  {
    auto inbox = CommandInbox::Open(path_).value();
    ASSERT_TRUE(inbox->Accept({Command(1), Command(2, "with \"quotes\"\nand a newline")}).ok());
  }
  auto reopened = CommandInbox::Open(path_).value();
  EXPECT_EQ(reopened->received_through(), 2u);
  auto since = reopened->Since(0, 10);
  ASSERT_EQ(since.size(), 2u);
  EXPECT_EQ(since[1].text, "with \"quotes\"\nand a newline");
  EXPECT_TRUE(reopened->Accept({Command(2)}).value().empty()) << "still a duplicate";
}

TEST_F(CommandInboxTest, ATornLastLineIsSkipped) {
  {
    auto inbox = CommandInbox::Open(path_).value();
    ASSERT_TRUE(inbox->Accept({Command(1), Command(2)}).ok());
  }
  std::ofstream(path_, std::ios::app) << "{\"id\": 3, \"sender_ra";
  auto reopened = CommandInbox::Open(path_).value();
  EXPECT_EQ(reopened->skipped_journal_lines(), 1u);
  EXPECT_EQ(reopened->received_through(), 2u);
  EXPECT_EQ(Ids(reopened->Accept({Command(3)}).value()), (Ids_{3}));
  auto again = CommandInbox::Open(path_).value();
  EXPECT_EQ(again->skipped_journal_lines(), 0u) << "the journal was rewritten whole";
  EXPECT_EQ(Ids(again->Since(0, 10)), (Ids_{1, 2, 3}));
}

TEST_F(CommandInboxTest, KeepsTheLastCommandsForReaders) {
  auto inbox = CommandInbox::Open(path_).value();
  std::vector<ReceivedCommand> many;
  for (uint64_t id = 1; id <= CommandInbox::kKept + 5; ++id) many.push_back(Command(id));
  ASSERT_TRUE(inbox->Accept(many).ok());
  auto kept = inbox->Since(0, 1 << 20);
  ASSERT_EQ(kept.size(), CommandInbox::kKept);
  EXPECT_EQ(kept.front().id, 6u);
}

TEST_F(CommandInboxTest, AnUnwritableJournalIsAnError) {
  Result<std::unique_ptr<CommandInbox>> inbox = CommandInbox::Open(dir_ + "/missing/dir/x");
  EXPECT_FALSE(inbox.ok());
}

}  // namespace
}  // namespace synod
