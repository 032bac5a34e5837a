// Access to a store: permission bits wider than the store grants, links under the store, the open-file
// limit, and PID namespaces. Each refusal names the file and the reason, and nothing is changed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "store/event_store.h"
#include "tests/store/store_testutil.h"

namespace hfe::store {
namespace {

using testing::TestEvent;

class AccessTest : public ::testing::Test {
 protected:
  std::string path() const { return dir_.Sub("store"); }
  // Creates the store with one event, then closes it.
  void CreateStore() {
    auto s = EventStore::Open(path(), testing::SmallStore());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    TestEvent e("first");
    ASSERT_TRUE((*s)->Append("s", ExpectedVersion::Any(), {&e.data, 1}).ok());
  }
  Status OpenStatus() { return EventStore::Open(path(), testing::SmallStore()).status(); }
  static mode_t ModeOf(const std::string& p) {
    struct stat st {};
    ::lstat(p.c_str(), &st);
    return st.st_mode & 0777;
  }
  hfe::testing::TempDir dir_;
};

// Invariant: a store directory that admits others (0777) is refused with its name and the chmod that fixes
// it, and is left as it was.
TEST_F(AccessTest, AWorldWritableStoreDirectoryIsRefused) {
  CreateStore();
  ASSERT_EQ(0, ::chmod(path().c_str(), 0777));
  Status s = OpenStatus();
  EXPECT_EQ(StatusCode::kPermissionDenied, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("'" + path() + "' has mode 0777")) << s.message();
  EXPECT_NE(std::string::npos, s.message().find("chmod 700")) << s.message();
  EXPECT_EQ(0777u, ModeOf(path()));
  ASSERT_EQ(0, ::chmod(path().c_str(), 0700));
  EXPECT_TRUE(OpenStatus().ok());
}

// Invariant: a store file readable by others (control.hfe at 0644) is refused, named, and left as it was.
TEST_F(AccessTest, AStoreFileWiderThanTheStoreIsRefused) {
  CreateStore();
  const std::string control = path() + "/control.hfe";
  ASSERT_EQ(0, ::chmod(control.c_str(), 0644));
  Status s = OpenStatus();
  EXPECT_EQ(StatusCode::kPermissionDenied, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("'" + control + "' has mode 0644")) << s.message();
  EXPECT_NE(std::string::npos, s.message().find("chmod 600")) << s.message();
  EXPECT_EQ(0644u, ModeOf(control));
}

// Invariant: nothing under the store is followed through a link; the refusal names the link.
TEST_F(AccessTest, ASymlinkedSegmentsDirectoryIsRefused) {
  CreateStore();
  const std::string segments = path() + "/segments";
  const std::string elsewhere = dir_.Sub("elsewhere");
  ASSERT_EQ(0, ::rename(segments.c_str(), elsewhere.c_str()));
  ASSERT_EQ(0, ::symlink(elsewhere.c_str(), segments.c_str()));
  Status s = OpenStatus();
  EXPECT_EQ(StatusCode::kPermissionDenied, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find("'" + segments + "' is a symbolic link")) << s.message();
}

// Invariant: at the open-file limit a healthy store is not reported damaged: the error says descriptors
// ran out and names the limit.
TEST_F(AccessTest, RunningOutOfDescriptorsIsNotReportedAsDamage) {
#ifdef __SANITIZE_ADDRESS__
  // The sanitizers' own checks need descriptors too (UBSan's vptr check fails at the limit and aborts).
  GTEST_SKIP() << "not under the sanitizers; the release build runs it";
#endif
  CreateStore();
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    rlimit rl{64, 64};
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return 2;
    while (::dup(0) >= 0) {
    }
    Status s = OpenStatus();
    if (s.code() != StatusCode::kResourceExhausted) {
      std::fprintf(stderr, "open at the descriptor limit: %s\n", s.ToString().c_str());
      return 1;
    }
    return s.message().find("ulimit -n") != std::string::npos && s.message().find("64") != std::string::npos ? 0 : 3;
  });
  EXPECT_EQ(0, kids.Wait(p));
}

// Invariant: liveness is judged by pid, which means nothing across PID namespaces: a process in another
// namespace is refused with a message naming both namespaces instead of "repairing" live processes' work.
TEST_F(AccessTest, AnotherPidNamespaceIsRefused) {
  CreateStore();
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    if (::unshare(CLONE_NEWPID) != 0) return 77;  // not permitted here (not root)
    pid_t inner = ::fork();
    if (inner == 0) {
      Status s = OpenStatus();
      _exit(s.code() == StatusCode::kFailedPrecondition && s.message().find("PID namespace") != std::string::npos ? 0 : 1);
    }
    int status = 0;
    ::waitpid(inner, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
  });
  int rc = kids.Wait(p);
  if (rc == 77) GTEST_SKIP() << "cannot create a PID namespace here";
  EXPECT_EQ(0, rc);
  EXPECT_TRUE(OpenStatus().ok());
}

}  // namespace
}  // namespace hfe::store
