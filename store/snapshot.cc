// Snapshot files: write (temp + fsync + rename + directory fsync), list, prune, map and check.
#include "store/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "ipc/clock.h"
#include "ipc/crc32c.h"
#include "ipc/region.h"
#include "store/snapshot_format.h"

namespace hfe::store {

using namespace snapshot_format;

namespace {

std::string SnapshotDir(const std::string& store_dir) { return store_dir + "/snapshots"; }

std::string SnapshotName(uint64_t position) {
  char b[32];
  std::snprintf(b, sizeof b, "%016" PRIx64 ".snap", position);
  return b;
}

// "<16 hex>.snap" -> position.
std::optional<uint64_t> ParseName(const char* name) {
  size_t n = std::strlen(name);
  if (n != 21 || std::strcmp(name + 16, ".snap") != 0) return std::nullopt;
  uint64_t v = 0;
  for (int i = 0; i < 16; ++i) {
    char c = name[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

Status WriteAll(int fd, const void* data, size_t n, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write '" + path + "'", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open '" + dir + "'", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? Status::Ok() : ErrnoStatus("fsync '" + dir + "'", err);
}

}  // namespace

std::string SnapshotPath(const std::string& store_dir, uint64_t position) {
  return SnapshotDir(store_dir) + "/" + SnapshotName(position);
}

Status WriteSnapshot(const std::string& store_dir, uint64_t position, uint64_t schema_hash,
                     std::span<const uint8_t> payload) {
  if (payload.size() > kMaxPayload) return InvalidArgument("snapshot payload of " + std::to_string(payload.size()) + " bytes is too large");
  const std::string dir = SnapshotDir(store_dir);
  HFE_RETURN_IF_ERROR(ipc::EnsureDirectory(dir, /*create=*/true, 0700));
  const std::string path = SnapshotPath(store_dir, position);
  const std::string tmp = path + "." + std::to_string(::getpid()) + ".tmp";
  SnapshotHeader h{};
  h.magic = kSnapshotMagic;
  h.layout_version = kSnapshotLayoutVersion;
  h.header_size = sizeof(SnapshotHeader);
  h.position = position;
  h.schema_hash = schema_hash;
  h.created_at_ns = clock::WallNanos();
  h.payload_length = payload.size();
  h.payload_crc = crc32c::Mask(crc32c::Value(payload.data(), payload.size()));
  h.header_crc = crc32c::Mask(crc32c::Value(&h, kHeaderCrcBytes));
  ::unlink(tmp.c_str());
  auto fd = ipc::OpenSecure(tmp, /*create=*/true, 0600, /*exclusive=*/true);
  if (!fd.ok()) return fd.status();
  Status st = WriteAll(*fd, &h, sizeof h, tmp);
  if (st.ok()) st = WriteAll(*fd, payload.data(), payload.size(), tmp);
  if (st.ok() && ::fdatasync(*fd) != 0) st = ErrnoStatus("fdatasync '" + tmp + "'", errno);
  ::close(*fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoStatus("rename to '" + path + "'", errno);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return SyncDir(dir);
}

Result<std::vector<SnapshotListing>> ListSnapshots(const std::string& store_dir) {
  std::vector<SnapshotListing> out;
  const std::string dir = SnapshotDir(store_dir);
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    return ErrnoStatus("open '" + dir + "'", errno);
  }
  while (dirent* e = ::readdir(d)) {
    if (auto p = ParseName(e->d_name)) out.push_back({*p, dir + "/" + e->d_name});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.position > b.position; });
  return out;
}

Result<size_t> PruneSnapshots(const std::string& store_dir, size_t keep) {
  auto list = ListSnapshots(store_dir);
  if (!list.ok()) return list.status();
  size_t removed = 0;
  for (size_t i = keep; i < list->size(); ++i) {
    if (::unlink((*list)[i].path.c_str()) == 0) ++removed;
  }
  // Temp files of writers that died (a live writer's temp file is younger than a minute).
  const std::string dir = SnapshotDir(store_dir);
  if (DIR* d = ::opendir(dir.c_str())) {
    const time_t now = ::time(nullptr);
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.size() < 4 || name.compare(name.size() - 4, 4, ".tmp") != 0) continue;
      struct stat sb;
      std::string p = dir + "/" + name;
      if (::lstat(p.c_str(), &sb) == 0 && now - sb.st_mtime > 60 && ::unlink(p.c_str()) == 0) ++removed;
    }
    ::closedir(d);
  }
  return removed;
}

SnapshotFile::~SnapshotFile() {
  if (map_) ::munmap(map_, size_);
}

Result<std::unique_ptr<SnapshotFile>> SnapshotFile::Open(const std::string& path, uint64_t schema_hash) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus("open '" + path + "'", errno);
  struct stat sb;
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != ::geteuid()) {
    ::close(fd);
    return PermissionDenied("'" + path + "' is not a regular file of this user; refusing to read it as a snapshot");
  }
  const size_t size = static_cast<size_t>(sb.st_size);
  if (size < sizeof(SnapshotHeader)) {
    ::close(fd);
    return DataLoss("snapshot '" + path + "' is shorter than its header (" + std::to_string(size) + " bytes)");
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (m == MAP_FAILED) return ErrnoStatus("mmap '" + path + "'", err);
  std::unique_ptr<SnapshotFile> s(new SnapshotFile());
  s->map_ = m;
  s->size_ = size;
  s->path_ = path;
  SnapshotHeader h;
  std::memcpy(&h, m, sizeof h);
  if (h.magic != kSnapshotMagic) return DataLoss("'" + path + "' is not a snapshot (bad magic)");
  if (h.layout_version != kSnapshotLayoutVersion || h.header_size != sizeof(SnapshotHeader)) {
    return Incompatible("snapshot '" + path + "' has layout version " + std::to_string(h.layout_version) +
                        ", this build reads version " + std::to_string(kSnapshotLayoutVersion));
  }
  if (crc32c::Unmask(h.header_crc) != crc32c::Value(&h, kHeaderCrcBytes)) {
    return DataLoss("snapshot '" + path + "': header CRC mismatch");
  }
  if (h.payload_length != size - sizeof(SnapshotHeader)) {
    return DataLoss("snapshot '" + path + "': payload length " + std::to_string(h.payload_length) + " but the file holds " +
                    std::to_string(size - sizeof(SnapshotHeader)) + " bytes (cut short?)");
  }
  const auto* payload = static_cast<const uint8_t*>(m) + sizeof(SnapshotHeader);
  if (crc32c::Unmask(h.payload_crc) != crc32c::Value(payload, h.payload_length)) {
    return DataLoss("snapshot '" + path + "': payload CRC mismatch");
  }
  if (h.schema_hash != schema_hash) {
    return Incompatible("snapshot '" + path + "' was written with another event schema (hash " +
                        std::to_string(h.schema_hash) + ", this build " + std::to_string(schema_hash) + ")");
  }
  s->position_ = h.position;
  s->created_at_ns_ = h.created_at_ns;
  s->payload_ = std::span<const uint8_t>(payload, h.payload_length);
  return s;
}

Result<std::unique_ptr<SnapshotFile>> SnapshotFile::NewestValid(const std::string& store_dir, uint64_t schema_hash,
                                                                std::vector<std::string>* warnings) {
  auto list = ListSnapshots(store_dir);
  if (!list.ok()) return list.status();
  for (const auto& l : *list) {
    auto s = Open(l.path, schema_hash);
    if (s.ok()) return s;
    if (warnings) warnings->push_back(s.status().message() + "; ignored, trying an older snapshot");
  }
  return std::unique_ptr<SnapshotFile>();
}

}  // namespace hfe::store
