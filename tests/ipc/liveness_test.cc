// Liveness: self alive, a reaped child dead, an unreaped (zombie) child dead, a wrong start time dead.
#include "ipc/liveness.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc/futex.h"

namespace hfe::liveness {

TEST(LivenessTest, SelfIsAliveAndTokenHoldsPid) {
  uint64_t t = SelfToken();
  EXPECT_EQ(::getpid(), TokenPid(t));
  EXPECT_TRUE(IsAlive(t));
  EXPECT_TRUE(PidAlive(::getpid()));
  EXPECT_FALSE(IsAlive(t ^ (1ull << 40)));  // same pid, another start time: a reused pid
}

TEST(LivenessTest, ZombieAndReapedChildAreDead) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  // Until reaped the child is a zombie: it must already count as dead.
  for (int i = 0; i < 2000 && PidAlive(child); ++i) ::usleep(1000);
  EXPECT_FALSE(PidAlive(child));
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(PidAlive(child));
}

TEST(LivenessTest, ChildTokenDiffersFromParent) {
  uint64_t parent = SelfToken();
  int fds[2];
  ASSERT_EQ(0, ::pipe(fds));
  pid_t child = ::fork();
  if (child == 0) {
    uint64_t t = SelfToken();
    (void)!::write(fds[1], &t, sizeof t);
    ::_exit(0);
  }
  uint64_t got = 0;
  ASSERT_EQ(static_cast<ssize_t>(sizeof got), ::read(fds[0], &got, sizeof got));
  ::waitpid(child, nullptr, 0);
  EXPECT_NE(parent, got);
  EXPECT_EQ(child, TokenPid(got));
}

TEST(FutexTest, WaitReturnsOnValueChangeAndTimesOut) {
  std::atomic<uint32_t> word{5};
  EXPECT_TRUE(futex::Wait(&word, 4, 1'000'000));   // value differs: returns at once
  EXPECT_FALSE(futex::Wait(&word, 5, 1'000'000));  // times out
  EXPECT_EQ(0, futex::Wake(&word));
}

}  // namespace hfe::liveness
