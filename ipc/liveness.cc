// Liveness from /proc: a zombie counts as dead, and a pid whose start time changed is another process.
#include "ipc/liveness.h"

#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace hfe::liveness {
namespace {

// Reads /proc/<pid>/stat; fills state and start time. False when the process does not exist.
bool ReadStat(pid_t pid, char* state, uint64_t* start) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // The command name may hold spaces and parentheses: fields resume after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (!p) return false;
  p += 2;
  *state = *p;
  // Field 3 is the state; the start time is field 22, i.e. 19 fields further on.
  int field = 3;
  while (*p && field < 22) {
    if (*p == ' ') ++field;
    ++p;
  }
  *start = std::strtoull(p, nullptr, 10);
  return true;
}

}  // namespace

uint64_t StartTime(pid_t pid) {
  char state;
  uint64_t start = 0;
  if (!ReadStat(pid, &state, &start)) return 0;
  return start;
}

namespace {
std::atomic<uint64_t> g_self_token{0};
void ResetSelfToken() { g_self_token.store(0, std::memory_order_relaxed); }
}  // namespace

uint64_t SelfToken() {
  uint64_t token = g_self_token.load(std::memory_order_relaxed);
  if (token != 0) return token;
  static const int registered = pthread_atfork(nullptr, nullptr, ResetSelfToken);
  (void)registered;
  pid_t pid = ::getpid();
  token = (StartTime(pid) << 32) | static_cast<uint32_t>(pid);
  g_self_token.store(token, std::memory_order_relaxed);
  return token;
}

bool PidAlive(pid_t pid) {
  if (pid <= 0) return false;
  char state;
  uint64_t start;
  if (!ReadStat(pid, &state, &start)) return false;
  return state != 'Z' && state != 'X';
}

bool IsAlive(uint64_t token) {
  pid_t pid = TokenPid(token);
  if (pid <= 0) return false;
  char state;
  uint64_t start;
  if (!ReadStat(pid, &state, &start)) return false;
  if (state == 'Z' || state == 'X') return false;
  return static_cast<uint32_t>(start) == static_cast<uint32_t>(token >> 32);
}

uint64_t PidNamespace() {
  struct stat st;
  if (::stat("/proc/self/ns/pid", &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace hfe::liveness
