// Recovery: frames left by processes killed at every step of the append and resolve paths; byte-level
// corruption (flip, zero a header, truncate) of the unresolved tail in point-in-time, strict and salvage
// modes; a scribbled or foreign control region gives an error, never a crash.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <thread>
#include <fstream>
#include <iterator>

#include "ipc/region.h"
#include "store/internal/fault.h"
#include "store/log_format.h"
#include "tests/store/store_testutil.h"

namespace hfe::store {
namespace {

using internal::FaultPoint;

FaultPoint g_kill_at;
void KillAtPoint(FaultPoint p) {
  if (p == g_kill_at) ::raise(SIGKILL);
}

class RecoveryTest : public ::testing::Test {
 protected:
  std::string path() const { return dir_.Sub("store"); }
  std::unique_ptr<EventStore> OpenStore(RecoveryMode mode = RecoveryMode::kPointInTime) {
    auto o = testing::SmallStore();
    o.recovery = mode;
    auto s = EventStore::Open(path(), o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  void AppendSome(int n, const std::string& stream = "s") {
    auto s = OpenStore();
    for (int i = 0; i < n; ++i) {
      testing::TestEvent e("ok" + std::to_string(i));
      ASSERT_TRUE(s->Append(stream, ExpectedVersion::Any(), {&e.data, 1}).ok());
    }
  }
  // A child opens the store and dies at `point` while appending 3 events to stream "dead".
  void DieWhileAppending(FaultPoint point) {
    hfe::testing::Children kids;
    pid_t p = kids.Spawn([&] {
      auto s = OpenStore();
      if (!s) return 1;
      g_kill_at = point;
      internal::g_fault_hook.store(&KillAtPoint);
      std::vector<testing::TestEvent> evs{testing::TestEvent("d0"), testing::TestEvent("d1"), testing::TestEvent("d2")};
      auto d = testing::Data(evs);
      (void)s->Append("dead", ExpectedVersion::Any(), d);
      return 0;
    });
    EXPECT_EQ(128 + SIGKILL, kids.Wait(p));
  }
  // Byte offset of position `pos` within its segment file.
  std::string SegmentFile(uint64_t pos, uint64_t seg_size) const {
    char name[64];
    std::snprintf(name, sizeof name, "/segments/%016llx.log", static_cast<unsigned long long>(pos / seg_size));
    return path() + name;
  }
  void PokeByte(uint64_t pos, uint64_t seg_size, uint64_t delta_offset, uint8_t xor_mask) {
    std::fstream f(SegmentFile(pos, seg_size), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(pos % seg_size + delta_offset));
    char c;
    f.read(&c, 1);
    c = static_cast<char>(c ^ xor_mask);
    f.seekp(static_cast<std::streamoff>(pos % seg_size + delta_offset));
    f.write(&c, 1);
  }
  hfe::testing::TempDir dir_;
};

// Invariant: a frame whose writer died before committing is never delivered; the log stays verifiable.
TEST_F(RecoveryTest, WriterKilledBeforeCommitLeavesNothingVisible) {
  for (FaultPoint p : {FaultPoint::kAfterClaim, FaultPoint::kAfterBody}) {
    AppendSome(2);
    DieWhileAppending(p);
    auto s = OpenStore();
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->recovery_report().ran);
    EXPECT_EQ(1u, s->recovery_report().frames_padded);
    EXPECT_FALSE(s->GetStream("dead").exists);
    auto rep = s->Verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << rep->problems[0];
    // The log goes on after the padding.
    testing::TestEvent e("after");
    ASSERT_TRUE(s->Append("s", ExpectedVersion::Any(), {&e.data, 1}).ok());
    s.reset();
    std::filesystem::remove_all(path());
  }
}

// Invariant: a committed frame is resolved by the next opener even though its writer died before its ack.
TEST_F(RecoveryTest, CommittedFrameOfDeadWriterIsResolvedOnOpen) {
  AppendSome(2);
  DieWhileAppending(FaultPoint::kAfterCommit);
  auto s = OpenStore();
  ASSERT_TRUE(s);
  auto dead = testing::ReadStream(*s, "dead");
  ASSERT_EQ(3u, dead.size());
  EXPECT_EQ("d2", dead[2].payload);
  EXPECT_EQ(5u, s->Stats().events);
}

// Invariant: a resolver killed at any step of deciding or applying a frame leaves state that the next
// holder completes exactly once: counts, stream versions and the dedup index all match the log.
TEST_F(RecoveryTest, ResolverKilledMidFrameIsRepairedExactlyOnce) {
  for (FaultPoint p : {FaultPoint::kResolverAfterVerdict, FaultPoint::kResolverAfterJournal, FaultPoint::kResolverMidApply}) {
    AppendSome(3, "dead");
    DieWhileAppending(p);
    auto s = OpenStore();
    ASSERT_TRUE(s);
    auto dead = testing::ReadStream(*s, "dead");
    ASSERT_EQ(6u, dead.size()) << static_cast<int>(p);
    for (uint64_t v = 0; v < 6; ++v) EXPECT_EQ(v, dead[v].version);
    EXPECT_EQ(6u, s->Stats().events);
    auto rep = s->Verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << rep->problems[0];
    // The dedup index knows the repaired frame's ids: re-appending them is recognised.
    std::vector<EventData> again;
    ASSERT_TRUE(s->ReadStream("dead", 3, [&](const EventView& v) {
      EventData d;
      d.id = v.id;
      d.type = 1;
      again.push_back(d);
      return true;
    }).ok());
    auto r = s->Append("dead", ExpectedVersion::Any(), again);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->already_appended);
    s.reset();
    std::filesystem::remove_all(path());
  }
}

// Invariant: frames are resolved in runs, journaled once per run and published once at its end; a resolver
// killed part way through a run (after its journal, after the nth frame, between a frame's verdict and its
// tables) leaves state that the next holder completes exactly once: every frame of the run decided once,
// versions gap-free, counters and the dedup index matching the log.
int g_fault_countdown = 0;
void KillAtNth(FaultPoint p) {
  if (p == g_kill_at && --g_fault_countdown == 0) ::raise(SIGKILL);
}

TEST_F(RecoveryTest, ResolverKilledMidRunIsRepairedExactlyOnce) {
  struct Case {
    FaultPoint point;
    int nth;
  };
  for (Case c : {Case{FaultPoint::kResolverAfterJournal, 1}, Case{FaultPoint::kResolverMidRun, 4},
                 Case{FaultPoint::kResolverAfterVerdict, 6}, Case{FaultPoint::kResolverMidApply, 3}}) {
    AppendSome(2);
    constexpr int kFrames = 10;  // fewer than a pipelined producer's 16: none resolved before the flush
    std::vector<testing::TestEvent> evs;
    for (int i = 0; i < kFrames; ++i) evs.emplace_back("r" + std::to_string(i));
    hfe::testing::Children kids;
    pid_t p = kids.Spawn([&] {
      auto s = OpenStore();
      if (!s) return 1;
      for (int i = 0; i < kFrames; ++i) {
        auto exp = i == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exact(static_cast<uint64_t>(i - 1));
        if (!s->AppendAsync("run", exp, {&evs[i].data, 1}).ok()) return 2;
      }
      g_kill_at = c.point;
      g_fault_countdown = c.nth;
      internal::g_fault_hook.store(&KillAtNth);
      (void)s->Flush();  // resolves the ten frames as one run, and dies in it
      return 3;
    });
    ASSERT_EQ(128 + SIGKILL, kids.Wait(p)) << static_cast<int>(c.point);
    auto s = OpenStore();
    ASSERT_TRUE(s);
    auto run = testing::ReadStream(*s, "run");
    ASSERT_EQ(static_cast<size_t>(kFrames), run.size()) << static_cast<int>(c.point);
    for (int i = 0; i < kFrames; ++i) {
      EXPECT_EQ(static_cast<uint64_t>(i), run[i].version);
      EXPECT_EQ(evs[i].text, run[i].payload);
    }
    const StoreStats st = s->Stats();
    EXPECT_EQ(2u + kFrames, st.events);
    EXPECT_EQ(2u + kFrames, st.accepted_frames);  // AppendSome appends its events one by one
    EXPECT_EQ(0u, st.rejected_frames);
    EXPECT_EQ(2u, st.streams);
    auto rep = s->Verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << rep->problems[0];
    std::vector<EventData> again;
    for (const auto& e : evs) again.push_back(e.data);
    auto r = s->Append("elsewhere", ExpectedVersion::Any(), again);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->already_appended);
    EXPECT_EQ(run[0].position, r->first_position);
    s.reset();
    std::filesystem::remove_all(path());
  }
}

// Invariant: point-in-time recovery drops the first damaged unresolved frame and everything after it,
// reports it, zeroes the bytes, and the log continues cleanly.
TEST_F(RecoveryTest, ChecksumMismatchStopsRecoveryAtThatFrame) {
  AppendSome(3);
  uint64_t seg_size = testing::SmallStore().segment_size;
  uint64_t bad_pos;
  {
    auto s = OpenStore();
    bad_pos = s->ResolvedPosition();
  }
  DieWhileAppending(FaultPoint::kAfterCommit);
  PokeByte(bad_pos, seg_size, sizeof(format::FrameHeader) + sizeof(format::StreamEntry) + 1, 0x5a);  // in the stream name
  auto s = OpenStore();
  ASSERT_TRUE(s);
  const auto& rr = s->recovery_report();
  EXPECT_EQ(1u, rr.frames_dropped);
  EXPECT_GT(rr.bytes_dropped, 0u);
  EXPECT_NE(std::string::npos, rr.damage.find("CRC mismatch"));
  EXPECT_EQ(3u, testing::ReadAll(*s).size());
  EXPECT_EQ(bad_pos, s->Stats().tail_position);
  testing::TestEvent e("after");
  ASSERT_TRUE(s->Append("s", ExpectedVersion::Any(), {&e.data, 1}).ok());
  auto rep = s->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems[0];
}

TEST_F(RecoveryTest, StrictModeRefusesDamagedTail) {
  AppendSome(1);
  uint64_t bad_pos;
  {
    auto s = OpenStore();
    bad_pos = s->ResolvedPosition();
  }
  DieWhileAppending(FaultPoint::kAfterCommit);
  PokeByte(bad_pos, testing::SmallStore().segment_size, sizeof(format::FrameHeader) + sizeof(format::StreamEntry) + 1, 0x01);
  auto o = testing::SmallStore();
  o.recovery = RecoveryMode::kStrict;
  auto s = EventStore::Open(path(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(StatusCode::kDataLoss, s.status().code());
  EXPECT_NE(std::string::npos, s.status().message().find("strict recovery refuses to open"));
  // Salvage skips the damaged frame and keeps the log.
  auto salvage = OpenStore(RecoveryMode::kSalvage);
  ASSERT_TRUE(salvage);
  EXPECT_EQ(1u, salvage->recovery_report().frames_skipped);
  EXPECT_EQ(1u, salvage->Stats().corrupt_frames);
  EXPECT_EQ(1u, testing::ReadAll(*salvage).size());
}

// Invariant: salvaging a frame whose length is damaged skips the rest of its segment and moves the tail
// past it, so appends and reopening work afterwards (before, the watermark passed the tail and the store
// no longer opened: "tail 1472 / resolved 65600").
TEST_F(RecoveryTest, SalvagedDamagedLengthKeepsTheStoreWritable) {
  AppendSome(3);
  uint64_t bad_pos;
  {
    auto s = OpenStore();
    bad_pos = s->ResolvedPosition();
  }
  DieWhileAppending(FaultPoint::kAfterCommit);
  const uint64_t seg = testing::SmallStore().segment_size;
  {
    // An impossible length in the committed frame's state word (not a multiple of the 32-byte frame alignment).
    std::fstream f(SegmentFile(bad_pos, seg), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(bad_pos % seg + offsetof(format::FrameHeader, state)));
    const int32_t bad_length = 100;
    f.write(reinterpret_cast<const char*>(&bad_length), sizeof bad_length);
  }
  {
    auto s = OpenStore(RecoveryMode::kSalvage);
    ASSERT_TRUE(s);
    EXPECT_EQ(1u, s->recovery_report().frames_skipped);
    EXPECT_NE(std::string::npos, s->recovery_report().damage.find("impossible frame length"));
    EXPECT_LE(s->ResolvedPosition(), s->Stats().tail_position);
    testing::TestEvent e("after salvage");
    auto r = s->Append("s", ExpectedVersion::Exact(2), {&e.data, 1});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(1u, r->first_position / seg);  // the log went on in the next segment
  }
  auto again = OpenStore(RecoveryMode::kStrict);
  ASSERT_TRUE(again);
  EXPECT_EQ(4u, testing::ReadAll(*again).size());
  auto rep = again->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems[0];
}

TEST_F(RecoveryTest, ZeroedHeaderInTailIsEndOfLog) {
  AppendSome(2);
  uint64_t bad_pos;
  {
    auto s = OpenStore();
    bad_pos = s->ResolvedPosition();
  }
  DieWhileAppending(FaultPoint::kAfterCommit);
  uint64_t seg = testing::SmallStore().segment_size;
  for (int i = 0; i < 8; ++i) {
    std::fstream f(SegmentFile(bad_pos, seg), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(bad_pos % seg));
    const char zeros[8] = {};
    f.write(zeros, 8);
  }
  auto s = OpenStore();
  ASSERT_TRUE(s);
  EXPECT_NE(std::string::npos, s->recovery_report().damage.find("no frame header"));
  EXPECT_EQ(2u, testing::ReadAll(*s).size());
}

// Invariant: a resolved frame whose bytes were later flipped is reported by verify, and reading it with
// CRC checks fails with DataLoss instead of delivering damaged bytes.
TEST_F(RecoveryTest, VerifyReportsFlippedResolvedFrame) {
  AppendSome(3);
  uint64_t first_pos = 64;
  PokeByte(first_pos, testing::SmallStore().segment_size, sizeof(format::FrameHeader) + 32 + 64 + 1, 0x80);
  auto s = OpenStore();
  ASSERT_TRUE(s);
  auto rep = s->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_FALSE(rep->ok());
  EXPECT_GE(rep->damaged, 1u);  // later events' continuity checks also fail: their predecessor is unreadable
  EXPECT_NE(std::string::npos, rep->problems[0].find("CRC mismatch"));
}

TEST_F(RecoveryTest, ScribbledControlRegionGivesErrorNotCrash) {
  AppendSome(1);
  std::string control = path() + "/control.hfe";
  // Bad geometry: an absurd segment size, then table offsets past the file's end.
  for (int field : {32, 64, 72, 128}) {
    {
      std::fstream f(control, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(field);
      uint64_t garbage = 0xdeadbeefcafef00dull;
      f.write(reinterpret_cast<const char*>(&garbage), 8);
    }
    auto o = testing::SmallStore();
    auto s = EventStore::Open(path(), o);
    ASSERT_FALSE(s.ok()) << field;
    EXPECT_EQ(StatusCode::kDataLoss, s.status().code()) << s.status().ToString();
    EXPECT_NE(std::string::npos, s.status().message().find("control region")) << s.status().ToString();
    std::filesystem::remove_all(path());
    AppendSome(1);
  }
}

// Invariant: the geometry of the control region is copied into each process at attach and never re-read.
// A process that scribbles a geometry field of a live store cannot make the attached processes write or
// read out of bounds, divide by zero or spin: their appends and reads go on exactly as before, while a new
// opener refuses the damaged region with an error. (Run under ASan by the test command.)
TEST_F(RecoveryTest, ScribbledGeometryOfALiveStoreIsNeverReRead) {
  auto live = OpenStore();
  ASSERT_TRUE(live);
  std::string control = path() + "/control.hfe";
  struct Field {
    const char* name;
    size_t offset;
  } fields[] = {
      {"segment_size", offsetof(format::ControlHeader, segment_size)},
      {"stream_slots", offsetof(format::ControlHeader, stream_slots)},
      {"dedup_window", offsetof(format::ControlHeader, dedup_window)},
      {"dedup_slots", offsetof(format::ControlHeader, dedup_slots)},
      {"stream_table_offset", offsetof(format::ControlHeader, stream_table_offset)},
      {"dedup_table_offset", offsetof(format::ControlHeader, dedup_table_offset)},
      {"dedup_ring_offset", offsetof(format::ControlHeader, dedup_ring_offset)},
      {"time_index_offset", offsetof(format::ControlHeader, time_index_offset)},
      {"time_index_slots", offsetof(format::ControlHeader, time_index_slots)},
      {"unblock_timeout_ns", offsetof(format::ControlHeader, unblock_timeout_ns)},
      {"sync_policy", offsetof(format::ControlHeader, sync_policy)},
      {"subscription_table_offset", offsetof(format::ControlHeader, subscription_table_offset)},
      {"subscription_slots", offsetof(format::ControlHeader, subscription_slots)},
  };
  uint64_t appended = 0;
  for (const Field& field : fields) {
    for (uint64_t garbage : std::array<uint64_t, 4>{0, 1, ~0ull, 0xdeadbeefcafef00dull}) {
      uint64_t saved = 0;
      {
        std::fstream f(control, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(static_cast<std::streamoff>(field.offset));
        f.read(reinterpret_cast<char*>(&saved), 8);
        f.seekp(static_cast<std::streamoff>(field.offset));
        f.write(reinterpret_cast<const char*>(&garbage), 8);
      }
      // The attached process: appends (new streams, dedup inserts and evictions past the 4096-event window),
      // reads by stream, position, time and newest, stats and verify all keep working.
      for (int i = 0; i < 40; ++i) {
        testing::TestEvent e("g" + std::to_string(appended));
        auto r = live->Append("geo-" + std::to_string(appended % 50), ExpectedVersion::Any(), {&e.data, 1});
        ASSERT_TRUE(r.ok()) << field.name << " = " << garbage << ": " << r.status().ToString();
        auto again = live->Append("geo-0", ExpectedVersion::Any(), {&e.data, 1});
        ASSERT_TRUE(again.ok() && again->already_appended) << field.name;
        ++appended;
      }
      EXPECT_EQ(appended, live->Stats().events) << field.name;
      uint64_t n = 0;
      ASSERT_TRUE(live->ReadSince(0, [&](const EventView&) { return ++n > 0; }).ok()) << field.name;
      EXPECT_EQ(appended, n) << field.name;
      EXPECT_FALSE(testing::ReadStream(*live, "geo-1").empty()) << field.name;
      auto rep = live->Verify();
      ASSERT_TRUE(rep.ok() && rep->ok()) << field.name;
      // A new opener checks the shared copy and refuses what cannot be a store's geometry.
      {
        auto fresh = EventStore::Open(path(), testing::SmallStore());
        if (!fresh.ok()) {
          EXPECT_NE(std::string::npos, fresh.status().message().find("control region")) << fresh.status().ToString();
        }
      }
      std::fstream f(control, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(field.offset));
      f.write(reinterpret_cast<const char*>(&saved), 8);
    }
  }
}

TEST_F(RecoveryTest, OtherLayoutVersionOrForeignFileIsIncompatible) {
  AppendSome(1);
  std::string control = path() + "/control.hfe";
  {
    std::fstream f(control, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    uint32_t v = format::kLayoutVersion + 1;  // a layout this build does not read
    f.write(reinterpret_cast<const char*>(&v), 4);
  }
  auto s = EventStore::Open(path(), testing::SmallStore());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(StatusCode::kIncompatible, s.status().code());
  EXPECT_NE(std::string::npos, s.status().message().find("layout version " + std::to_string(format::kLayoutVersion + 1)));
  {
    std::ofstream f(control, std::ios::trunc);
    f << "not a store at all, just some text long enough to hold a header";
  }
  auto s2 = EventStore::Open(path(), testing::SmallStore());
  EXPECT_EQ(StatusCode::kIncompatible, s2.status().code());
  EXPECT_NE(std::string::npos, s2.status().message().find("not an hfevents store"));
}

TEST_F(RecoveryTest, StoreOwnedByAnotherUserOrLinkedIsRefused) {
  AppendSome(1);
  ASSERT_EQ(0, ::symlink(path().c_str(), dir_.Sub("link").c_str()));
  auto viaLink = EventStore::Open(dir_.Sub("link"), testing::SmallStore());
  EXPECT_EQ(StatusCode::kPermissionDenied, viaLink.status().code());
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give files away";
  ASSERT_EQ(0, ::chown((path() + "/control.hfe").c_str(), 4242, 4242));
  auto foreign = EventStore::Open(path(), testing::SmallStore());
  EXPECT_EQ(StatusCode::kPermissionDenied, foreign.status().code());
  EXPECT_NE(std::string::npos, foreign.status().message().find("owned by uid 4242"));
}

thread_local bool t_stall = false;
std::atomic<bool> g_stalled_writer_released{false};
void StallThisThread(FaultPoint p) {
  if (t_stall && p == FaultPoint::kAfterBody) {
    t_stall = false;  // only the first attempt stalls; the retry goes through
    std::this_thread::sleep_for(std::chrono::seconds(3));
    g_stalled_writer_released = true;
  }
}

// Invariant: a writer that is alive but stalled past the unblock timeout blocks nobody. Its frame is padded,
// other appends go on while it still sleeps, and when it wakes its commit fails, it claims again and its
// event lands exactly once.
TEST_F(RecoveryTest, SlowWriterIsUnblockedAndRetries) {
  auto s = OpenStore();
  ASSERT_TRUE(s);
  internal::g_fault_hook.store(&StallThisThread);
  testing::TestEvent slow("slow");
  std::thread writer([&] {
    t_stall = true;
    auto r = s->Append("slow", ExpectedVersion::Any(), {&slow.data, 1});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  });
  while (s->Stats().tail_position == 64) std::this_thread::yield();  // the slow frame is claimed
  for (int i = 0; i < 5; ++i) {
    testing::TestEvent e("fast" + std::to_string(i));
    ASSERT_TRUE(s->Append("fast", ExpectedVersion::Any(), {&e.data, 1}).ok());
  }
  EXPECT_FALSE(g_stalled_writer_released.load()) << "the fast appends waited for the stalled writer";
  writer.join();
  internal::g_fault_hook.store(nullptr);
  EXPECT_GE(s->Stats().padded_frames, 1u);
  auto slow_events = testing::ReadStream(*s, "slow");
  ASSERT_EQ(1u, slow_events.size());
  EXPECT_EQ("slow", slow_events[0].payload);
  EXPECT_EQ(5u, testing::ReadStream(*s, "fast").size());
  auto rep = s->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems[0];
}

// The sync policies on a disk path: appends return after msync (every-append) or are synced in the
// background (interval); the store reopens with everything.
// A small tmpfs mounted for one test, unmounted (lazily) however the test ends. Needs root; the test command
// runs as root on the project's machines.
struct SmallTmpfs {
  hfe::testing::TempDir dir{"/tmp"};
  bool mounted = false;
  explicit SmallTmpfs(const char* size) {
    std::string cmd = "mount -t tmpfs -o size=" + std::string(size) + ",mode=0700 tmpfs " + dir.path() + " 2>/dev/null";
    mounted = std::system(cmd.c_str()) == 0;
  }
  ~SmallTmpfs() {
    if (mounted) (void)std::system(("umount -l " + dir.path()).c_str());
  }
};

// Invariant: a full file system is an error, never a signal. An append that finds no space for a new
// segment fails with a clear message (before, the first touch of the unallocated segment killed the
// producer with SIGBUS); every acknowledged event survives; appends resume once space is freed.
TEST(DiskFullTest, AppendsFailCleanlyAndResumeWhenSpaceIsFreed) {
  SmallTmpfs fs("3m");
  if (!fs.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (not root?)";
  const std::string store = fs.dir.Sub("store");
  const std::string filler = fs.dir.Sub("filler");
  {
    auto s = EventStore::Open(store, testing::SmallStore());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  {
    std::ofstream f(filler, std::ios::binary);
    const std::string block(64 << 10, 'x');
    for (int i = 0; i < 64 && f; ++i) f.write(block.data(), static_cast<std::streamsize>(block.size()));
  }
  // A child appends 1 KiB events until the store refuses one; it reports how many were acknowledged.
  int fds[2];
  ASSERT_EQ(0, ::pipe(fds));
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    auto s = EventStore::Open(store, testing::SmallStore());
    if (!s.ok()) return 2;
    const std::string body(1024, 'b');
    uint64_t acked = 0;
    for (;;) {
      EventData d{EventId::Random(), 1, 0, {reinterpret_cast<const uint8_t*>(body.data()), body.size()}};
      auto r = (*s)->Append("full", ExpectedVersion::Any(), {&d, 1});
      if (!r.ok()) {
        std::string msg = r.status().ToString();
        if (::write(fds[1], &acked, sizeof acked) != sizeof acked) return 3;
        return ::write(fds[1], msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()) ? 0 : 3;
      }
      ++acked;
    }
  });
  ::close(fds[1]);
  const int status = kids.Wait(p);
  ASSERT_EQ(0, status) << "the producer must get an error, not a signal (128 + signal number)";
  uint64_t acked = 0;
  ASSERT_EQ(static_cast<ssize_t>(sizeof acked), ::read(fds[0], &acked, sizeof acked));
  char msg[512] = {};
  ASSERT_GT(::read(fds[0], msg, sizeof msg - 1), 0);
  ::close(fds[0]);
  EXPECT_GT(acked, 0u);
  EXPECT_NE(std::string::npos, std::string(msg).find("space")) << msg;

  std::filesystem::remove(filler);
  auto s = EventStore::Open(store, testing::SmallStore());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(acked, testing::ReadStream(**s, "full").size());
  testing::TestEvent e("after");
  ASSERT_TRUE((*s)->Append("full", ExpectedVersion::Exact(acked - 1), {&e.data, 1}).ok());
  auto rep = (*s)->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->problems[0];
}

TEST(SyncPolicyTest, DiskStoreWithEachPolicyReopensComplete) {
  for (SyncPolicy policy : {SyncPolicy::kEveryAppend, SyncPolicy::kInterval, SyncPolicy::kNone}) {
    hfe::testing::TempDir disk("/tmp");
    auto o = testing::SmallStore();
    o.sync = policy;
    o.sync_interval_ms = 5;
    {
      auto s = EventStore::Open(disk.Sub("s"), o);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      for (int i = 0; i < 20; ++i) {
        testing::TestEvent e("d" + std::to_string(i));
        ASSERT_TRUE((*s)->Append("disk", ExpectedVersion::Any(), {&e.data, 1}).ok());
      }
    }
    auto s = EventStore::Open(disk.Sub("s"), o);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(20u, testing::ReadStream(**s, "disk").size());
  }
}

// Invariant: nobody waits on a stopped resolver past twice the unblock timeout. A process that holds the
// resolver role is stopped (SIGSTOP) at each step of deciding and applying a frame; another process's
// append returns Unavailable naming it instead of hanging, its frame stays committed, and once the holder
// resumes both appends are decided exactly once (the retry with the same ids learns the outcome).
void StopAtPoint(FaultPoint p) {
  if (p == g_kill_at) {
    g_kill_at = FaultPoint::kGroupDispatch;  // once
    ::raise(SIGSTOP);
  }
}

TEST_F(RecoveryTest, AStoppedResolverBlocksNoAppenderPastTheTimeout) {
  for (FaultPoint point : {FaultPoint::kResolverAfterVerdict, FaultPoint::kResolverAfterJournal,
                           FaultPoint::kResolverMidApply}) {
    auto s = OpenStore();
    ASSERT_TRUE(s);
    hfe::testing::Children kids;
    pid_t holder = kids.Spawn([&] {
      auto c = OpenStore();
      if (!c) return 1;
      g_kill_at = point;
      internal::g_fault_hook.store(&StopAtPoint);
      testing::TestEvent e("held");
      return c->Append("held", ExpectedVersion::Any(), {&e.data, 1}).ok() ? 0 : 2;
    });
    int status = 0;
    ASSERT_EQ(holder, ::waitpid(holder, &status, WUNTRACED));
    ASSERT_TRUE(WIFSTOPPED(status));
    testing::TestEvent mine("mine");
    auto blocked = s->Append("mine", ExpectedVersion::NoStream(), {&mine.data, 1});
    EXPECT_EQ(StatusCode::kUnavailable, blocked.status().code()) << blocked.status().ToString();
    EXPECT_NE(std::string::npos, blocked.status().message().find("process " + std::to_string(holder)))
        << blocked.status().message();
    ::kill(holder, SIGCONT);
    EXPECT_EQ(0, kids.Wait(holder));
    auto again = s->Append("mine", ExpectedVersion::NoStream(), {&mine.data, 1});
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(again->already_appended);  // the first attempt was decided once the holder resumed
    EXPECT_EQ(1u, s->GetStream("mine").next_version);
    EXPECT_EQ(1u, s->GetStream("held").next_version);
    auto rep = s->Verify();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->ok()) << rep->problems[0];
    s.reset();
    std::filesystem::remove_all(path());
  }
}

// Invariant: a resolver killed while applying a hard delete of a stream that had no slot leaves the stream
// table's count as a clean run would: the redo counts the slot from the verdict, once.
TEST_F(RecoveryTest, AResolverKilledApplyingAHardDeleteCountsItsSlotOnce) {
  AppendSome(2);
  uint64_t before = 0, clean_delta = 0;
  {
    auto s = OpenStore();
    ASSERT_TRUE(s);
    before = s->Stats().streams;
    ASSERT_TRUE(s->DeleteStream("ghost-clean", /*hard=*/true).ok());
    clean_delta = s->Stats().streams - before;  // "$meta-ghost-clean" and the tombstone's slot
    before = s->Stats().streams;
  }
  hfe::testing::Children kids;
  pid_t p = kids.Spawn([&] {
    auto s = OpenStore();
    if (!s) return 1;
    g_kill_at = FaultPoint::kResolverMidApply;
    internal::g_fault_hook.store(&KillAtPoint);
    (void)s->DeleteStream("ghost", /*hard=*/true);
    return 0;
  });
  ASSERT_EQ(128 + SIGKILL, kids.Wait(p));
  auto s = OpenStore();
  ASSERT_TRUE(s);
  EXPECT_EQ(clean_delta, s->Stats().streams - before);
  EXPECT_TRUE(s->GetStream("ghost").hard_deleted);
  testing::TestEvent e("no");
  EXPECT_EQ(StatusCode::kFailedPrecondition, s->Append("ghost", ExpectedVersion::Any(), {&e.data, 1}).status().code());
}

// Invariant: on a disk store, the kernel may write control-file pages back before the segment pages they
// describe; after a power loss the next opener rebuilds the tables from the log instead of trusting them.
// Simulated here: segment 0 is put back as it was before a second writer's appends (their bytes "never
// reached the disk") while the control file keeps what that writer's resolver wrote, and the writer dies
// without closing. The opener keeps exactly the events whose bytes survived, with stream versions, the dedup
// window, counters and the time index that match them; the lost events are gone, their ids free again.
TEST(DiskRecoveryTest, LostSegmentWritesAreDroppedAndTheTablesRebuilt) {
  hfe::testing::TempDir dir("/var/tmp");
  struct statfs fs {};
  ASSERT_EQ(0, ::statfs(dir.path().c_str(), &fs));
  if (fs.f_type == 0x01021994) GTEST_SKIP() << "/var/tmp is a tmpfs here: no disk to lose writes on";
  const std::string path = dir.Sub("store");
  const std::string segment = path + "/segments/0000000000000000.log";
  std::vector<testing::TestEvent> kept, lost;
  for (int i = 0; i < 12; ++i) kept.emplace_back("kept-" + std::to_string(i));
  for (int i = 0; i < 12; ++i) lost.emplace_back("lost-" + std::to_string(i));
  {
    auto s = EventStore::Open(path, testing::SmallStore());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (int i = 0; i < 12; ++i) {
      ASSERT_TRUE((*s)->Append("order-" + std::to_string(i % 3), ExpectedVersion::Any(), {&kept[i].data, 1}).ok());
    }
  }
  std::string on_disk;  // segment 0 as the disk holds it
  {
    std::ifstream in(segment, std::ios::binary);
    on_disk.assign(std::istreambuf_iterator<char>(in), {});
  }
  hfe::testing::Children kids;
  pid_t writer = kids.Spawn([&] {
    auto s = EventStore::Open(path, testing::SmallStore());
    if (!s.ok()) return 1;
    for (int i = 0; i < 12; ++i) {
      const std::string stream = i % 2 ? "order-" + std::to_string(i % 3) : "late-" + std::to_string(i);
      if (!(*s)->Append(stream, ExpectedVersion::Any(), {&lost[i].data, 1}).ok()) return 2;
    }
    ::raise(SIGKILL);  // the power goes: no clean close
    return 3;
  });
  ASSERT_EQ(128 + SIGKILL, kids.Wait(writer));
  {
    std::fstream out(segment, std::ios::in | std::ios::out | std::ios::binary);
    out.write(on_disk.data(), static_cast<std::streamsize>(on_disk.size()));
  }

  auto s = EventStore::Open(path, testing::SmallStore());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(1u, (*s)->recovery_report().tables_rebuilt);
  EXPECT_NE(std::string::npos, (*s)->recovery_report().damage.find("unclean shutdown")) << (*s)->recovery_report().damage;
  auto all = testing::ReadAll(**s);
  ASSERT_EQ(12u, all.size());
  for (int i = 0; i < 12; ++i) EXPECT_EQ("kept-" + std::to_string(i), all[i].payload);
  for (int k = 0; k < 3; ++k) {
    const std::string stream = "order-" + std::to_string(k);
    EXPECT_EQ(4u, (*s)->GetStream(stream).next_version) << stream;
    EXPECT_EQ(4u, testing::ReadStream(**s, stream).size()) << stream;
  }
  EXPECT_FALSE((*s)->GetStream("late-0").exists);
  EXPECT_EQ(12u, (*s)->Stats().events);
  // Ids that survived are still known; ids whose events were lost are free again.
  auto again = (*s)->Append("order-0", ExpectedVersion::Any(), {&kept[0].data, 1});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->already_appended);
  auto fresh = (*s)->Append("order-1", ExpectedVersion::Exact(3), {&lost[1].data, 1});
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_FALSE(fresh->already_appended);
  EXPECT_EQ(4u, fresh->last_version);
  auto rep = (*s)->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << (rep->problems.empty() ? "" : rep->problems[0]);
  // Since-queries use the rebuilt time index: kept-6 .. kept-11 and the fresh append.
  std::vector<std::string> since;
  ASSERT_TRUE((*s)->ReadSince(all[6].occurred_at, [&](const EventView& v) {
    since.emplace_back(reinterpret_cast<const char*>(v.payload.data()), v.payload.size());
    return true;
  }).ok());
  EXPECT_EQ(7u, since.size());
}

}  // namespace
}  // namespace hfe::store
