#include "net/ipv4.h"

#include <gtest/gtest.h>

namespace synod {
namespace {

Ipv4 Ip(const char* text) { return Ipv4::Parse(text).value(); }

TEST(Ipv4, ParsesAndPrints) {
  EXPECT_EQ(Ip("127.0.0.2").ToString(), "127.0.0.2");
  EXPECT_EQ(Ip("10.77.0.255").host_order, 0x0A4D00FFu);
  for (const char* bad : {"", "1.2.3", "1.2.3.256", "a.b.c.d", "::1", "1.2.3.4 ", "localhost"}) {
    EXPECT_FALSE(Ipv4::Parse(bad).ok()) << bad;
  }
}

TEST(Ipv4, ComparesNumericallyNotAsText) {
  EXPECT_LT(Ip("9.0.0.1"), Ip("10.0.0.10"));
  EXPECT_LT(Ip("10.0.0.9"), Ip("10.0.0.10"));
  EXPECT_LT(Ip("127.0.0.2"), Ip("127.0.0.10"));
}

TEST(Subnet, ContainsAndDirectedBroadcast) {
  Subnet lan{Ip("10.77.0.2"), 0xFFFFFF00};
  EXPECT_TRUE(lan.Contains(Ip("10.77.0.200")));
  EXPECT_FALSE(lan.Contains(Ip("10.77.1.2")));
  EXPECT_EQ(lan.DirectedBroadcast(), Ip("10.77.0.255"));
  Subnet loopback{Ip("127.0.0.1"), 0xFF000000};
  EXPECT_EQ(loopback.DirectedBroadcast(), Ip("127.255.255.255"));
  EXPECT_FALSE(loopback.Contains(Ip("10.0.0.1")));
}

TEST(LocalInterfaceFor, LoopbackAddressesBelongToLo) {
  auto found = LocalInterfaceFor(Ip("127.0.0.5"));
  ASSERT_TRUE(found.ok()) << found.error();
  EXPECT_EQ(found.value().subnet.DirectedBroadcast(), Ip("127.255.255.255"));
  EXPECT_TRUE(found.value().subnet.Contains(Ip("127.0.0.9")));
}

TEST(LocalInterfaceFor, ForeignAddressIsRejectedClearly) {
  auto found = LocalInterfaceFor(Ip("192.0.2.77"));  // TEST-NET-1, never assigned
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error(), "192.0.2.77 is not an address of this machine");
}

TEST(ParseHostPort, DefaultsAndErrors) {
  auto with_port = ParseHostPort("127.0.0.2:7500", 7400);
  ASSERT_TRUE(with_port.ok());
  EXPECT_EQ(with_port.value().port, 7500);
  EXPECT_EQ(ParseHostPort("127.0.0.2", 7400).value().port, 7400);
  for (const char* bad :
       {"127.0.0.2:", "127.0.0.2:0", "127.0.0.2:65536", "127.0.0.2:x", "host:1"}) {
    EXPECT_FALSE(ParseHostPort(bad, 7400).ok()) << bad;
  }
}

}  // namespace
}  // namespace synod
