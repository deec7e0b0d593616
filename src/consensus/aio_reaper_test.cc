#include "consensus/aio_reaper.h"

#include <gtest/gtest.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

namespace synod {
namespace {

// syscall() here goes through the same wrapper as libraft's (this binary links with it).
TEST(AioReaper, DefersIoDestroyOnceEnabledUntilAnEngineCloses) {
  aio_context_t first = 0, second = 0;
  ASSERT_EQ(syscall(SYS_io_setup, 8, &first), 0) << errno;
  ASSERT_EQ(syscall(SYS_io_setup, 8, &second), 0) << errno;

  AioReaper::Enable();
  const uint64_t before = AioReaper::destroyed();
  EXPECT_EQ(syscall(SYS_io_destroy, first), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (AioReaper::destroyed() == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(AioReaper::destroyed(), before + 1);

  // Once disabled, the call is the kernel's own: the context handed over is gone for good, and
  // another one is destroyed before the call returns.
  AioReaper::Disable();
  EXPECT_EQ(syscall(SYS_io_destroy, first), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(syscall(SYS_io_destroy, second), 0);
  EXPECT_EQ(syscall(SYS_io_destroy, second), -1);
  EXPECT_EQ(AioReaper::destroyed(), before + 1);
  // Other calls pass through with their arguments.
  EXPECT_EQ(syscall(SYS_getpid), getpid());
}

}  // namespace
}  // namespace synod
