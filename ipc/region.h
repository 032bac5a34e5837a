// Mapped regions: files (on tmpfs or disk) shared by every process of a store.
//
// Files are created 0600 (or with the group bits the caller grants), opened with O_NOFOLLOW, and refused
// when owned by another user. A region starts with a RegionHeader; Create() publishes it by writing the layout
// version last, Attach() awaits it and refuses another magic or version.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "ipc/region_format.h"
#include "ipc/status.h"

namespace hfe::ipc {

struct FileOptions {
  mode_t mode = 0600;      // 0660 grants the group
  bool populate = true;    // pre-fault every page (MAP_POPULATE) so the first write costs no page fault
};

// Opens (or creates) a regular file safely: O_NOFOLLOW, O_CLOEXEC, owner check. Returns the fd.
// Files with permission bits beyond `mode` are refused unless `refuse_wider` is false (files outside a store).
Result<int> OpenSecure(const std::string& path, bool create, mode_t mode, bool exclusive = false,
                       bool refuse_wider = true);
// Checks that `path` is a real directory (not a symlink) owned by this user; creates it when asked.
Status EnsureDirectory(const std::string& path, bool create, mode_t mode);

// A shared, writable mapping of a whole file. Move-only; unmaps on destruction. The file's descriptor is
// closed as soon as it is mapped (the mapping keeps the file), so thousands of mappings need no descriptors.
// Every byte of the file is allocated before it is mapped: a full file system is an error here, never a
// SIGBUS when a page is first touched.
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept { *this = static_cast<MappedFile&&>(o); }
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // Creates `path` (failing when it exists) with `size` zero bytes and maps it.
  static Result<MappedFile> Create(const std::string& path, size_t size, const FileOptions& opts);
  // Maps an existing file; when `min_size` is non-zero and the file is smaller, it is grown (zero-filled).
  static Result<MappedFile> Open(const std::string& path, size_t min_size, const FileOptions& opts,
                                 bool create_if_missing = false);

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // msync of [offset, offset+len), rounded out to pages.
  Status Sync(size_t offset, size_t len) const;

 private:
  // Allocates and maps all of `fd` (taking ownership of it; closed in every case).
  static Result<MappedFile> Map(int fd, const std::string& path, size_t size, const FileOptions& opts);

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

enum class AttachState { kAwait, kReady, kIncompatible };

// Reads the handshake of a mapped region: await / ready / incompatible.
AttachState ProbeHeader(const void* region, size_t size, uint64_t magic, uint32_t version);

// Fills the header (everything but the version); then the caller initialises its own part and calls Publish.
void InitHeader(void* region, size_t size, uint64_t magic, uint32_t header_size);
void Publish(void* region, uint32_t version);

// Maps an existing region file and waits (up to timeout_ns) until its creator published it. Errors:
// NotFound, PermissionDenied (owner, symlink), Incompatible (another magic or layout version), Unavailable
// (never published: a creator died half-way; remove the store and create it again).
Result<MappedFile> AttachRegion(const std::string& path, uint64_t magic, uint32_t version, int64_t timeout_ns,
                                const FileOptions& opts);

}  // namespace hfe::ipc
