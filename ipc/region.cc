// File-backed shared regions: secure open, create/attach handshake, mapping.
#include "ipc/region.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ipc/clock.h"
#include "ipc/liveness.h"

namespace hfe::ipc {

namespace {

std::string Octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0%03o", static_cast<unsigned>(m & 0777));
  return buf;
}

// Refuses permission bits beyond `allowed`: anyone they admit could read the store or plant files in it.
Status CheckNotWider(const std::string& path, const struct stat& st, mode_t allowed) {
  const mode_t extra = st.st_mode & 0777 & ~allowed;
  if (extra == 0) return Status::Ok();
  return PermissionDenied("'" + path + "' has mode " + Octal(st.st_mode) + ", wider than the store allows (" +
                          Octal(allowed) + "): run `chmod " + Octal(st.st_mode & allowed).substr(1) + " '" + path +
                          "'` before using the store (to share a store with a group, create it with group access)");
}

}  // namespace

Result<int> OpenSecure(const std::string& path, bool create, mode_t mode, bool exclusive, bool refuse_wider) {
  int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
  if (create) flags |= O_CREAT;
  if (exclusive) flags |= O_EXCL;
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP) {
      return PermissionDenied("'" + path + "' is a symbolic link; hfevents refuses to follow links to store " +
                              "files (use the real path)");
    }
    if (err == EEXIST) return Status(StatusCode::kAlreadyExists, "'" + path + "' already exists");
    return ErrnoStatus("open '" + path + "'", err);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus("fstat '" + path + "'", err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return PermissionDenied("'" + path + "' is not a regular file; expected an hfevents store file");
  }
  if (st.st_uid != ::geteuid()) {
    ::close(fd);
    return PermissionDenied("'" + path + "' is owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " +
                            std::to_string(::geteuid()) + "); open it as its owner");
  }
  if (refuse_wider) {
    if (Status wide = CheckNotWider(path, st, mode); !wide.ok()) {
      ::close(fd);
      return wide;
    }
  }
  return fd;
}

Status EnsureDirectory(const std::string& path, bool create, mode_t mode) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoStatus("stat '" + path + "'", errno);
    if (!create) return NotFound("no store at '" + path + "' (create it first, e.g. by publishing an event)");
    if (::mkdir(path.c_str(), mode | S_IXUSR) != 0 && errno != EEXIST) return ErrnoStatus("mkdir '" + path + "'", errno);
    if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus("stat '" + path + "'", errno);
  }
  if (S_ISLNK(st.st_mode)) {
    return PermissionDenied("'" + path + "' is a symbolic link; hfevents refuses linked store paths (use the real path)");
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgument("'" + path + "' is not a directory; expected an hfevents store directory");
  if (st.st_uid != ::geteuid()) {
    return PermissionDenied("'" + path + "' is owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " +
                            std::to_string(::geteuid()) + "); open it as its owner");
  }
  // A directory needs search permission wherever it grants reading: group access means rwx for the group.
  const mode_t allowed = mode | S_IRWXU | ((mode & S_IRWXG) ? S_IRWXG : 0);
  return CheckNotWider(path, st, allowed);
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    // Unmap and close what this one holds (not `this->~MappedFile()`: that would also destroy path_, which
    // is assigned just below).
    if (data_) ::munmap(data_, size_);
    data_ = o.data_;
    size_ = o.size_;
    path_ = std::move(o.path_);
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
  data_ = nullptr;
}

Result<MappedFile> MappedFile::Map(int fd, const std::string& path, size_t size, const FileOptions& opts) {
  // Pages of a sparse file are allocated on first touch, and a touch that finds the file system full kills
  // the process with SIGBUS. Allocating them here turns that into ENOSPC (cheap where already allocated).
  int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
    ::close(fd);
    return Status(StatusCode::kResourceExhausted, "no space to allocate " + std::to_string(size >> 10) + " KiB for '" +
                                                      path + "' (" + std::strerror(err) +
                                                      "); free space on its file system, then retry");
  }
  int flags = MAP_SHARED | (opts.populate ? MAP_POPULATE : 0);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
  err = errno;
  ::close(fd);  // the mapping keeps the file open
  if (p == MAP_FAILED) return ErrnoStatus("mmap '" + path + "'", err);
  MappedFile f;
  f.data_ = static_cast<uint8_t*>(p);
  f.size_ = size;
  f.path_ = path;
  return f;
}

Result<MappedFile> MappedFile::Create(const std::string& path, size_t size, const FileOptions& opts) {
  auto fd = OpenSecure(path, /*create=*/true, opts.mode, /*exclusive=*/true);
  if (!fd.ok()) return fd.status();
  if (::ftruncate(*fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    ::close(*fd);
    ::unlink(path.c_str());
    return ErrnoStatus("ftruncate '" + path + "'", err);
  }
  auto f = Map(*fd, path, size, opts);
  if (!f.ok()) ::unlink(path.c_str());
  return f;
}

Result<MappedFile> MappedFile::Open(const std::string& path, size_t min_size, const FileOptions& opts,
                                    bool create_if_missing) {
  auto fd = OpenSecure(path, create_if_missing, opts.mode);
  if (!fd.ok()) return fd.status();
  struct stat st;
  if (::fstat(*fd, &st) != 0) {
    int err = errno;
    ::close(*fd);
    return ErrnoStatus("fstat '" + path + "'", err);
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (min_size != 0 && size < min_size) {
    if (::ftruncate(*fd, static_cast<off_t>(min_size)) != 0) {
      int err = errno;
      ::close(*fd);
      return ErrnoStatus("ftruncate '" + path + "'", err);
    }
    size = min_size;
  }
  if (size == 0) {
    ::close(*fd);
    return DataLoss("'" + path + "' is empty; expected an hfevents store file (remove it and create the store again)");
  }
  return Map(*fd, path, size, opts);
}

Status MappedFile::Sync(size_t offset, size_t len) const {
  if (!data_ || len == 0) return Status::Ok();
  const size_t page = 4096;
  size_t begin = offset & ~(page - 1);
  size_t end = std::min(size_, offset + len);
  if (::msync(data_ + begin, end - begin, MS_SYNC) != 0) return ErrnoStatus("msync '" + path_ + "'", errno);
  return Status::Ok();
}

AttachState ProbeHeader(const void* region, size_t size, uint64_t magic, uint32_t version) {
  if (size < sizeof(RegionHeader)) return AttachState::kIncompatible;
  auto* h = static_cast<RegionHeader*>(const_cast<void*>(region));
  // Acquire: pairs with the release in Publish(); makes the creator's whole initialisation visible.
  uint32_t v = std::atomic_ref<uint32_t>(h->layout_version).load(std::memory_order_acquire);
  if (v == 0) return AttachState::kAwait;
  if (v != version || h->magic != magic || h->region_size != size) return AttachState::kIncompatible;
  return AttachState::kReady;
}

void InitHeader(void* region, size_t size, uint64_t magic, uint32_t header_size) {
  auto* h = static_cast<RegionHeader*>(region);
  h->magic = magic;
  h->header_size = header_size;
  h->region_size = size;
  h->creator_token = liveness::SelfToken();
}

void Publish(void* region, uint32_t version) {
  auto* h = static_cast<RegionHeader*>(region);
  // Release: pairs with the acquire in ProbeHeader(); everything written before is visible to openers.
  std::atomic_ref<uint32_t>(h->layout_version).store(version, std::memory_order_release);
}

Result<MappedFile> AttachRegion(const std::string& path, uint64_t magic, uint32_t version, int64_t timeout_ns,
                                const FileOptions& opts) {
  int64_t deadline = clock::MonotonicNanos() + timeout_ns;
  for (;;) {
    auto f = MappedFile::Open(path, 0, opts);
    if (!f.ok()) return f.status();
    if (f->size() < sizeof(RegionHeader)) {
      return Incompatible("'" + path + "' is too small to be an hfevents region (" + std::to_string(f->size()) +
                          " bytes); expected a store created by hfevents");
    }
    AttachState s = ProbeHeader(f->data(), f->size(), magic, version);
    if (s == AttachState::kReady) return f;
    if (s == AttachState::kIncompatible) {
      auto* h = reinterpret_cast<const RegionHeader*>(f->data());
      if (h->magic != magic) {
        return Incompatible("'" + path + "' is not an hfevents store (bad magic); expected a store created by hfevents");
      }
      return Incompatible("'" + path + "' has layout version " +
                          std::to_string(std::atomic_ref<uint32_t>(const_cast<uint32_t&>(h->layout_version)).load()) +
                          ", this build reads version " + std::to_string(version) +
                          " (use a matching hfevents build, or export and recreate the store)");
    }
    if (clock::MonotonicNanos() > deadline) {
      return Status(StatusCode::kUnavailable, "'" + path + "' was never published by its creator (it died while " +
                                                  "creating it?); remove the store directory and create it again");
    }
    ::usleep(1000);
  }
}

}  // namespace hfe::ipc
