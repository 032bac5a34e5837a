// Test helpers: scratch store directories under /dev/shm that are removed even when a test fails, and
// child processes that are killed and reaped when the test ends.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace hfe::testing {

class TempDir {
 public:
  explicit TempDir(const char* base = "/dev/shm") {
    std::string tmpl = std::string(base) + "/hfe-test-XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Children started with Spawn are SIGKILLed and reaped on destruction unless already waited for.
class Children {
 public:
  ~Children() {
    for (pid_t p : pids_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }
  // Runs fn in a child; the child exits with fn's return value and never returns into the test.
  pid_t Spawn(const std::function<int()>& fn) {
    pid_t p = ::fork();
    if (p == 0) {
      int rc = 99;
      try {
        rc = fn();
      } catch (...) {
      }
      ::_exit(rc);
    }
    pids_.push_back(p);
    return p;
  }
  // Waits for pid; returns its exit code, or 128 + signal.
  int Wait(pid_t p) {
    int status = 0;
    ::waitpid(p, &status, 0);
    std::erase(pids_, p);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
  }
  void Kill(pid_t p) { ::kill(p, SIGKILL); }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace hfe::testing
