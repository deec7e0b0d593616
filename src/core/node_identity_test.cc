#include "core/node_identity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace synod {
namespace {

class NodeIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/synod-identity-XXXXXX";
    dir_ = mkdtemp(pattern);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(NodeIdentityTest, CreatedOnceThenStable) {
  const std::string data = dir_ + "/node";
  auto first = LoadOrCreateIdentity(data);
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(first.value().id.size(), 32u);
  EXPECT_EQ(first.value().ShortId(), first.value().id.substr(0, 8));
  auto second = LoadOrCreateIdentity(data);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second.value().id, first.value().id);
  auto other = LoadOrCreateIdentity(dir_ + "/other");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other.value().id, first.value().id);
}

TEST_F(NodeIdentityTest, CorruptIdFileIsAnErrorNotANewIdentity) {
  std::ofstream(dir_ + "/node_id") << "not-an-id\n";
  auto loaded = LoadOrCreateIdentity(dir_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().find("corrupt"), std::string::npos);
}

TEST_F(NodeIdentityTest, DataDirUnderAFileIsRejected) {
  std::ofstream(dir_ + "/file") << "x";
  auto loaded = LoadOrCreateIdentity(dir_ + "/file/node");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().find(dir_ + "/file/node"), std::string::npos);
}

TEST_F(NodeIdentityTest, UnwritableDataDirIsRejected) {
  if (geteuid() == 0) GTEST_SKIP() << "root can write anywhere";
  std::filesystem::create_directory(dir_ + "/ro");
  std::filesystem::permissions(
      dir_ + "/ro", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  auto loaded = LoadOrCreateIdentity(dir_ + "/ro");
  EXPECT_FALSE(loaded.ok());
}

}  // namespace
}  // namespace synod
