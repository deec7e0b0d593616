#include "clock/master_policy.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

TEST(MasterPolicy, LowestIpComparesAddressesNotDigits) {
  // The seed's int(ip.replace('.', '')) picks 10.0.0.10 (10001 0) over 9.0.0.1 (9001).
  EXPECT_EQ(ChooseMaster(MasterPolicy::kLowestIp, {{"a", "10.0.0.10"}, {"b", "9.0.0.1"}}), "b");
  EXPECT_EQ(ChooseMaster(MasterPolicy::kLowestIp, {{"a", "127.0.0.10"}, {"b", "127.0.0.9"}}), "b");
  EXPECT_EQ(ChooseMaster(MasterPolicy::kLowestIp,
                         {{"a", "192.168.1.2"}, {"b", "192.168.10.1"}, {"c", "192.168.2.200"}}),
            "a");
}

TEST(MasterPolicy, Ipv6AndMixedFamilies) {
  EXPECT_EQ(ChooseMaster(MasterPolicy::kLowestIp, {{"a", "fe80::10"}, {"b", "fe80::9"}}), "b");
  EXPECT_EQ(ChooseMaster(MasterPolicy::kLowestIp, {{"a", "2001:db8::1"}, {"b", "::1"}}), "b");
  EXPECT_EQ(ChooseMaster(MasterPolicy::kLowestIp, {{"a", "::1"}, {"b", "255.255.255.255"}}), "b")
      << "IPv4 before IPv6";
}

TEST(MasterPolicy, BadAddressesAreSkippedAndEmptyMeansNone) {
  EXPECT_EQ(ChooseMaster(MasterPolicy::kLowestIp, {{"a", "not-an-ip"}, {"b", "10.0.0.1"}}), "b");
  EXPECT_FALSE(ChooseMaster(MasterPolicy::kLowestIp, {}).has_value());
  EXPECT_FALSE(ChooseMaster(MasterPolicy::kLowestIp, {{"a", ""}}).has_value());
  EXPECT_TRUE(ParseMasterPolicy("lowest-ip").ok());
  EXPECT_NE(ParseMasterPolicy("fastest").error().find("unknown master policy"), std::string::npos);
}

TEST(MasterPolicy, TiesOnOneAddressGoToTheLowestId) {
  EXPECT_EQ(ChooseMaster(MasterPolicy::kLowestIp, {{"b", "10.0.0.1"}, {"a", "10.0.0.1"}}), "a");
}

}  // namespace
}  // namespace synod
