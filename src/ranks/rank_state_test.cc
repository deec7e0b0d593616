#include "ranks/rank_state.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

std::vector<std::string> Keys(const RankState& state) {
  std::vector<std::string> keys;
  for (const auto& holder : state.holders()) keys.push_back(holder.key());
  return keys;
}

RankState WithHolders(const std::vector<std::string>& keys) {
  RankState state;
  for (const auto& key : keys) state.Assign(wire::EXTERNAL_RANK, key, key, 1);
  return state;
}

std::vector<uint64_t> PendingIds(const RankState& state, const std::string& recipient) {
  std::vector<uint64_t> ids;
  auto it = state.pending().find(recipient);
  if (it != state.pending().end()) {
    for (const auto& [id, index] : it->second) ids.push_back(id);
  }
  return ids;
}

std::vector<std::string> Recipients(const wire::CommandRecord& record) {
  std::vector<std::string> keys;
  for (const auto& delivery : record.deliveries()) keys.push_back(delivery.recipient());
  return keys;
}

using Keys_ = std::vector<std::string>;

TEST(RankState, RanksInJoinOrderFromZero) {
  RankState state;
  EXPECT_EQ(state.Assign(wire::MEMBER_RANK, "m1", "127.0.0.1:7400", 1), 0u);
  EXPECT_EQ(state.Assign(wire::EXTERNAL_RANK, "h:1", "h:1", 2), 1u);
  EXPECT_EQ(state.Assign(wire::MEMBER_RANK, "m2", "127.0.0.2:7400", 3), 2u);
  EXPECT_EQ(Keys(state), (Keys_{"m1", "h:1", "m2"}));
  EXPECT_EQ(state.holders()[1].kind(), wire::EXTERNAL_RANK);
  EXPECT_EQ(state.holders()[2].ranked_at_nanos(), 3);
}

TEST(RankState, AssigningARankedKeyAgainKeepsItsRank) {
  RankState state = WithHolders({"a:1", "b:1", "c:1"});
  const uint64_t version = state.ranks_version();
  EXPECT_EQ(state.Assign(wire::EXTERNAL_RANK, "b:1", "b:1", 9), 1u);
  EXPECT_EQ(Keys(state), (Keys_{"a:1", "b:1", "c:1"}));
  EXPECT_EQ(state.ranks_version(), version) << "nothing changed";
  EXPECT_EQ(state.Assign(wire::MEMBER_RANK, "b:1", "10.0.0.1:1", 9), 1u);
  EXPECT_EQ(state.holders()[1].address(), "10.0.0.1:1") << "a new address is recorded";
}

TEST(RankState, HoldersBehindALeaverMoveUp) {
  for (const auto& [leaver, expected] : std::vector<std::pair<std::string, Keys_>>{
           {"a:1", {"b:1", "c:1", "d:1"}},  // first
           {"b:1", {"a:1", "c:1", "d:1"}},  // middle
           {"d:1", {"a:1", "b:1", "c:1"}},  // last
       }) {
    RankState state = WithHolders({"a:1", "b:1", "c:1", "d:1"});
    EXPECT_TRUE(state.Unassign(leaver, "left"));
    EXPECT_EQ(Keys(state), expected) << leaver;
    EXPECT_FALSE(state.RankOf(leaver).has_value());
    EXPECT_FALSE(state.Unassign(leaver, "left")) << "not ranked any more";
    EXPECT_EQ(state.Assign(wire::EXTERNAL_RANK, leaver, leaver, 5), 3u) << "returns last";
  }
}

TEST(RankState, CommandTargetsEveryHolderRankedAfterTheSender) {
  RankState state = WithHolders({"a:1", "b:1", "c:1", "d:1", "e:1"});
  Result<uint64_t> id = state.AddCommand("r1", "b:1", "START_TRANSMIT", 42);
  ASSERT_TRUE(id.ok()) << id.error();
  const std::optional<wire::CommandRecord> record = state.FindCommand(id.value());
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->sender_rank(), 1u);
  EXPECT_EQ(record->text(), "START_TRANSMIT");
  ASSERT_EQ(record->deliveries_size(), 3);
  EXPECT_EQ(state.RecipientCount(id.value()), 3u);
  EXPECT_EQ(state.RecipientCount(id.value() + 1), 0u) << "no such command";
  EXPECT_EQ(record->deliveries(0).recipient(), "c:1");
  EXPECT_EQ(record->deliveries(0).rank(), 2u);
  EXPECT_EQ(record->deliveries(2).recipient(), "e:1");
  EXPECT_EQ(record->deliveries(2).rank(), 4u);
  EXPECT_FALSE(RankState::IsSettled(*record));
  EXPECT_EQ(state.pending().size(), 3u);
  EXPECT_EQ(state.pending().count("a:1"), 0u);
  EXPECT_EQ(state.pending().count("b:1"), 0u) << "a sender never receives its own command";
}

TEST(RankState, LowestRankedSenderReachesNobodyAndIsSettledAtOnce) {
  RankState state = WithHolders({"a:1", "b:1"});
  Result<uint64_t> id = state.AddCommand("", "b:1", "x", 1);
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(RankState::IsSettled(*state.FindCommand(id.value())));
}

TEST(RankState, RejectsUnknownSendersAndBadCommands) {
  RankState state = WithHolders({"a:1"});
  EXPECT_FALSE(state.AddCommand("", "zz:1", "x", 1).ok());
  EXPECT_FALSE(state.AddCommand("", "a:1", "", 1).ok());
  EXPECT_FALSE(
      state.AddCommand("", "a:1", std::string(RankState::kMaxCommandBytes + 1, 'x'), 1).ok());
  EXPECT_EQ(state.last_command_id(), 0u) << "a rejected command takes no id";
}

TEST(RankState, ARetriedRequestReturnsTheSameCommand) {
  RankState state = WithHolders({"a:1", "b:1"});
  Result<uint64_t> first = state.AddCommand("req-7", "a:1", "x", 1);
  Result<uint64_t> retry = state.AddCommand("req-7", "a:1", "x", 2);
  ASSERT_TRUE(first.ok() && retry.ok());
  EXPECT_EQ(first.value(), retry.value());
  EXPECT_EQ(state.last_command_id(), 1u);
  EXPECT_EQ(state.pending().at("b:1").size(), 1u) << "delivered once, not twice";
}

TEST(RankState, DeliveredThroughSettlesEveryDeliveryUpToIt) {
  RankState state = WithHolders({"a:1", "b:1", "c:1"});
  const uint64_t one = state.AddCommand("", "a:1", "x", 1).value();
  const uint64_t two = state.AddCommand("", "a:1", "y", 1).value();
  const uint64_t three = state.AddCommand("", "a:1", "z", 1).value();
  state.DeliveredThrough("b:1", two);
  state.DeliveredThrough("b:1", one);  // older news: changes nothing
  EXPECT_EQ(state.FindCommand(one)->deliveries(0).state(), wire::DELIVERED);
  EXPECT_EQ(state.FindCommand(two)->deliveries(0).state(), wire::DELIVERED);
  EXPECT_EQ(state.FindCommand(three)->deliveries(0).state(), wire::DELIVERY_PENDING);
  EXPECT_FALSE(RankState::IsSettled(*state.FindCommand(one))) << "c:1 has not got it";
  state.DeliveredThrough("c:1", three);
  EXPECT_TRUE(RankState::IsSettled(*state.FindCommand(one)));
  EXPECT_TRUE(RankState::IsSettled(*state.FindCommand(two)));
  EXPECT_EQ(PendingIds(state, "b:1"), std::vector<uint64_t>{three});
  EXPECT_TRUE(PendingIds(state, "c:1").empty());
}

TEST(RankState, UnrankingARecipientFailsWhatWasPendingForIt) {
  RankState state = WithHolders({"a:1", "b:1", "c:1"});
  const uint64_t one = state.AddCommand("", "a:1", "x", 1).value();
  const uint64_t two = state.AddCommand("", "a:1", "y", 1).value();
  state.DeliveredThrough("c:1", one);
  state.Unassign("b:1", "declared dead");
  for (uint64_t id : {one, two}) {
    const std::optional<wire::CommandRecord> record = state.FindCommand(id);
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->deliveries(0).state(), wire::DELIVERY_FAILED);
    EXPECT_EQ(record->deliveries(0).error(), "declared dead");
  }
  EXPECT_TRUE(RankState::IsSettled(*state.FindCommand(one)));
  EXPECT_EQ(state.pending().count("b:1"), 0u);
  EXPECT_EQ(PendingIds(state, "c:1"), std::vector<uint64_t>{two});
}

TEST(RankState, CommandsKeepTheRecipientsRankedWhenTheyWereSent) {
  RankState state = WithHolders({"a:1", "b:1", "c:1"});
  const uint64_t one = state.AddCommand("", "a:1", "x", 1).value();
  state.Assign(wire::EXTERNAL_RANK, "d:1", "d:1", 2);
  const uint64_t two = state.AddCommand("", "a:1", "y", 2).value();
  state.Unassign("b:1", "gone");
  const uint64_t three = state.AddCommand("", "a:1", "z", 3).value();
  EXPECT_EQ(Recipients(*state.FindCommand(one)), (Keys_{"b:1", "c:1"}));
  EXPECT_EQ(Recipients(*state.FindCommand(two)), (Keys_{"b:1", "c:1", "d:1"}));
  EXPECT_EQ(Recipients(*state.FindCommand(three)), (Keys_{"c:1", "d:1"}));
  EXPECT_EQ(state.FindCommand(three)->deliveries(1).rank(), 2u) << "d moved up";
  // Each pending delivery names the recipient's place in its command.
  for (const auto& [key, deliveries] : state.pending()) {
    for (const auto& [id, index] : deliveries) {
      const wire::Delivery* recipient = state.FindRecipient(id, index);
      ASSERT_NE(recipient, nullptr);
      EXPECT_EQ(recipient->recipient(), key) << "command " << id;
    }
  }
  EXPECT_EQ(PendingIds(state, "c:1"), (std::vector<uint64_t>{one, two, three}));
  EXPECT_EQ(PendingIds(state, "d:1"), (std::vector<uint64_t>{two, three}));
  state.DeliveredThrough("c:1", three);
  state.DeliveredThrough("d:1", three);
  EXPECT_TRUE(RankState::IsSettled(*state.FindCommand(one)));
  EXPECT_EQ(state.FindCommand(two)->deliveries(0).state(), wire::DELIVERY_FAILED);
  EXPECT_EQ(state.FindCommand(two)->deliveries(0).error(), "gone");
  EXPECT_EQ(state.FindCommand(two)->deliveries(2).state(), wire::DELIVERED);
  EXPECT_EQ(state.pending_count(), 0u);
}

TEST(RankState, KeepsABoundedNumberOfSettledCommands) {
  RankState state = WithHolders({"a:1"});
  const size_t total = RankState::kKeptSettledCommands + 10;
  for (size_t i = 0; i < total; ++i) ASSERT_TRUE(state.AddCommand("", "a:1", "x", 1).ok());
  EXPECT_EQ(state.command_count(), RankState::kKeptSettledCommands);
  EXPECT_FALSE(state.FindCommand(1).has_value()) << "the oldest go first";
  EXPECT_TRUE(state.FindCommand(total).has_value());
}

TEST(RankState, SnapshotRoundTripKeepsEverything) {
  RankState state = WithHolders({"a:1", "b:1", "c:1"});
  state.AddCommand("r1", "a:1", "x", 1);
  state.AddCommand("r2", "b:1", "y", 2);
  state.DeliveredThrough("b:1", 1);
  state.Assign(wire::EXTERNAL_RANK, "d:1", "d:1", 3);  // later commands go to other holders
  state.AddCommand("r3", "a:1", "w", 3);
  state.Unassign("c:1", "gone");  // a failed delivery, with its reason
  wire::RanksSnapshot snapshot;
  state.SaveTo(snapshot);
  RankState restored;
  ASSERT_TRUE(restored.LoadFrom(snapshot, 1).ok());
  EXPECT_EQ(Keys(restored), Keys(state));
  for (const auto& holder : state.holders()) {
    EXPECT_EQ(PendingIds(restored, holder.key()), PendingIds(state, holder.key())) << holder.key();
  }
  EXPECT_EQ(restored.pending_count(), state.pending_count());
  EXPECT_EQ(restored.last_command_id(), 3u);
  EXPECT_EQ(restored.AddCommand("r2", "b:1", "y", 3).value(), 2u) << "request ids survive";
  EXPECT_EQ(restored.FindCommand(3)->deliveries(1).error(), "gone");
  wire::RanksSnapshot again;
  restored.SaveTo(again);
  state.AddCommand("r2", "b:1", "y", 3);
  wire::RanksSnapshot original;
  state.SaveTo(original);
  EXPECT_EQ(again.SerializeAsString(), original.SerializeAsString());
}

TEST(NormalizeExternalAddress, AcceptsWhatSeedClientsSend) {
  EXPECT_EQ(NormalizeExternalAddress("127.0.0.1:5001").value(), "127.0.0.1:5001");
  EXPECT_EQ(NormalizeExternalAddress("http://client1:5001").value(), "client1:5001");
  EXPECT_EQ(NormalizeExternalAddress("http://10.0.0.3:80/").value(), "10.0.0.3:80");
  EXPECT_EQ(NormalizeExternalAddress("https://h:443").value(), "h:443");
}

TEST(NormalizeExternalAddress, RejectsWhatCannotBeAnAddress) {
  for (const char* bad : {"", "http://", "host", ":5000", "host:", "host:0", "host:65536",
                          "host:12ab", "ho st:1", "h/x:1", "ftp://h:1"}) {
    Result<std::string> result = NormalizeExternalAddress(bad);
    EXPECT_FALSE(result.ok()) << bad;
  }
  EXPECT_FALSE(NormalizeExternalAddress(std::string(300, 'a') + ":1").ok());
}

}  // namespace
}  // namespace synod
