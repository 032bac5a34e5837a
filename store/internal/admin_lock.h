// The store's admin flock (subscription and group creation, deletion, membership), held for a scope.
#pragma once

#include <sys/file.h>
#include <unistd.h>

#include <string>

#include "ipc/region.h"

namespace hfe::store::internal {

class AdminLock {
 public:
  explicit AdminLock(const std::string& dir) {
    auto fd = ipc::OpenSecure(dir + "/admin.lock", true, 0600);
    if (fd.ok()) {
      fd_ = *fd;
      ::flock(fd_, LOCK_EX);
    }
  }
  ~AdminLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  AdminLock(const AdminLock&) = delete;
  AdminLock& operator=(const AdminLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace hfe::store::internal
