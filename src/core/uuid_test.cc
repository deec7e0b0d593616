#include "core/uuid.h"

#include <gtest/gtest.h>

#include <set>

namespace synod {
namespace {

TEST(Uuid, ParsesAndPrintsTheCanonicalForm) {
  const std::string text = "0123abcd-4567-89ef-0123-456789abcdef";
  std::optional<Uuid> id = Uuid::Parse(text);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->high, 0x0123abcd456789efull);
  EXPECT_EQ(id->low, 0x0123456789abcdefull);
  EXPECT_EQ(id->ToString(), text);

  EXPECT_EQ(Uuid{}.ToString(), "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ((Uuid{~0ull, ~0ull}.ToString()), "ffffffff-ffff-ffff-ffff-ffffffffffff");
  EXPECT_EQ(Uuid::Parse("00000000-0000-0000-0000-000000000000"), Uuid{});
  EXPECT_EQ(Uuid::Parse("ffffffff-ffff-ffff-ffff-ffffffffffff"), (Uuid{~0ull, ~0ull}));
}

TEST(Uuid, AcceptsUpperCaseAndPrintsLowerCase) {
  std::optional<Uuid> upper = Uuid::Parse("0123ABCD-4567-89EF-0123-456789ABCDEF");
  ASSERT_TRUE(upper.has_value());
  EXPECT_EQ(upper, Uuid::Parse("0123abcd-4567-89ef-0123-456789abcdef"));
  EXPECT_EQ(upper->ToString(), "0123abcd-4567-89ef-0123-456789abcdef");
  EXPECT_TRUE(Uuid::Parse("0123AbCd-4567-89eF-0123-456789aBcDeF").has_value());
}

TEST(Uuid, RejectsAnythingButTheCanonicalForm) {
  for (const char* bad : {
           "",
           "0123abcd-4567-89ef-0123-456789abcde",    // 35 characters
           "0123abcd-4567-89ef-0123-456789abcdef0",  // 37
           "0123abcd456789ef0123456789abcdef",       // no hyphens
           "0123abcd-456789ef-0123-456789abcdef-",   // hyphen misplaced
           "0123abc-d4567-89ef-0123-456789abcdef",   // hyphen misplaced
           "0123abcd-4567-89ef-0123_456789abcdef",   // not a hyphen
           "0123abcd-4567-89ef-0123-456789abcdeg",   // not hex
           "0123abcd-4567-89ef-0123-456789abcde ",   // space
           " 123abcd-4567-89ef-0123-456789abcdef",   // space
           "{123abcd-4567-89ef-0123-456789abcde}",   // braces, right length
           "0123abcd-4567-89ef-0123--56789abcdef",   // hyphen as a digit
           "0x23abcd-4567-89ef-0123-456789abcdef",   // prefix
           "+123abcd-4567-89ef-0123-456789abcdef",   // sign
       }) {
    EXPECT_FALSE(Uuid::Parse(bad).has_value()) << bad;
  }
  EXPECT_FALSE(Uuid::Parse(std::string_view("0123abcd-4567-89ef-0123-456789abcde\0", 36)));
}

TEST(Uuid, RandomIsVersion4Variant1AndDistinct) {
  std::mt19937_64 random(42);
  std::set<Uuid> seen;
  for (int i = 0; i < 10'000; ++i) {
    const Uuid id = Uuid::Random(random);
    const std::string text = id.ToString();
    ASSERT_EQ(text.size(), 36u);
    EXPECT_EQ(text[14], '4') << text;                                          // version
    EXPECT_NE(std::string("89ab").find(text[19]), std::string::npos) << text;  // variant 10xx
    EXPECT_EQ(Uuid::Parse(text), id) << text;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10'000u);

  // Every variable bit is random: over many draws each one is seen both set and clear.
  uint64_t high_or = 0, high_and = ~0ull, low_or = 0, low_and = ~0ull;
  for (int i = 0; i < 1000; ++i) {
    const Uuid id = Uuid::Random(random);
    high_or |= id.high;
    high_and &= id.high;
    low_or |= id.low;
    low_and &= id.low;
  }
  EXPECT_EQ(high_or, ~0ull & ~0xB000ull);  // version bits 0100
  EXPECT_EQ(high_and, 0x4000ull);
  EXPECT_EQ(low_or, ~0ull & ~(0x4000ull << 48));  // variant bits 10
  EXPECT_EQ(low_and, 0x8000ull << 48);
}

TEST(Uuid, RoundTripsAndOrdersLikeItsText) {
  std::mt19937_64 random(7);
  std::vector<Uuid> ids;
  for (int i = 0; i < 1000; ++i) {
    Uuid id{random(), random()};
    EXPECT_EQ(Uuid::Parse(id.ToString()), id);
    ids.push_back(id);
  }
  // Lower-case text compares as the 128-bit value does.
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(ids[i - 1] < ids[i], ids[i - 1].ToString() < ids[i].ToString());
  }
}

TEST(Uuid, StableHashIsFixedAndSpreads) {
  const Uuid a = *Uuid::Parse("0123abcd-4567-89ef-0123-456789abcdef");
  EXPECT_EQ(StableHash(a), StableHash(*Uuid::Parse("0123ABCD-4567-89EF-0123-456789ABCDEF")));
  EXPECT_NE(StableHash(a), StableHash(Uuid{a.low, a.high}));
  EXPECT_NE(StableHash(Uuid{0, 1}), StableHash(Uuid{1, 0}));
}

}  // namespace
}  // namespace synod
