// Regions: create/attach handshake (await / ready / incompatible), 0600 files, symlink and owner refusal.
#include "ipc/region.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

namespace hfe::ipc {

constexpr uint64_t kMagic = 0x1122334455667788ull;

TEST(RegionTest, CreateThenAttachWhenPublished) {
  testing::TempDir dir;
  std::string path = dir.Sub("r");
  auto f = MappedFile::Create(path, 8192, {});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(AttachState::kAwait, ProbeHeader(f->data(), f->size(), kMagic, 3));
  InitHeader(f->data(), f->size(), kMagic, 64);
  EXPECT_EQ(AttachState::kAwait, ProbeHeader(f->data(), f->size(), kMagic, 3));
  Publish(f->data(), 3);
  EXPECT_EQ(AttachState::kReady, ProbeHeader(f->data(), f->size(), kMagic, 3));
  EXPECT_EQ(AttachState::kIncompatible, ProbeHeader(f->data(), f->size(), kMagic, 4));
  EXPECT_EQ(AttachState::kIncompatible, ProbeHeader(f->data(), f->size(), kMagic + 1, 3));

  auto a = AttachRegion(path, kMagic, 3, 1'000'000'000, {});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(8192u, a->size());
  auto wrong = AttachRegion(path, kMagic, 4, 1'000'000'000, {});
  EXPECT_EQ(StatusCode::kIncompatible, wrong.status().code());
  EXPECT_NE(std::string::npos, wrong.status().message().find("layout version 3"));
}

TEST(RegionTest, UnpublishedRegionTimesOut) {
  testing::TempDir dir;
  auto f = MappedFile::Create(dir.Sub("r"), 4096, {});
  ASSERT_TRUE(f.ok());
  auto a = AttachRegion(dir.Sub("r"), kMagic, 1, 20'000'000, {});
  EXPECT_EQ(StatusCode::kUnavailable, a.status().code());
}

TEST(RegionTest, FilesAreCreatedOwnerOnly) {
  testing::TempDir dir;
  auto f = MappedFile::Create(dir.Sub("r"), 4096, {});
  ASSERT_TRUE(f.ok());
  struct stat st;
  ASSERT_EQ(0, ::stat(dir.Sub("r").c_str(), &st));
  EXPECT_EQ(0600u, st.st_mode & 0777);
  auto again = MappedFile::Create(dir.Sub("r"), 4096, {});
  EXPECT_EQ(StatusCode::kAlreadyExists, again.status().code());
}

TEST(RegionTest, SymlinkIsRefused) {
  testing::TempDir dir;
  auto f = MappedFile::Create(dir.Sub("real"), 4096, {});
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(0, ::symlink(dir.Sub("real").c_str(), dir.Sub("link").c_str()));
  auto l = MappedFile::Open(dir.Sub("link"), 0, {});
  EXPECT_EQ(StatusCode::kPermissionDenied, l.status().code());
  EXPECT_NE(std::string::npos, l.status().message().find("symbolic link"));
  ASSERT_EQ(0, ::symlink(dir.path().c_str(), dir.Sub("dirlink").c_str()));
  EXPECT_EQ(StatusCode::kPermissionDenied, EnsureDirectory(dir.Sub("dirlink"), false, 0700).code());
}

TEST(RegionTest, FileOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file away";
  testing::TempDir dir;
  auto f = MappedFile::Create(dir.Sub("r"), 4096, {});
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(0, ::chown(dir.Sub("r").c_str(), 4242, 4242));
  auto o = MappedFile::Open(dir.Sub("r"), 0, {});
  EXPECT_EQ(StatusCode::kPermissionDenied, o.status().code());
  EXPECT_NE(std::string::npos, o.status().message().find("owned by uid 4242"));
}

}  // namespace hfe::ipc
