// Snapshot files of a store: whole-or-nothing writes, listing, and loading the newest valid one. The store
// treats the payload as bytes; the domain (handlers/snapshot) defines what it holds and its schema hash.
//
//   WriteSnapshot(dir, P, hash, payload);                 // snapshots/<P>.snap, atomically
//   auto s = SnapshotFile::NewestValid(dir, hash, &warnings);   // skips damaged or foreign ones
//   if (s.ok() && *s) use((*s)->payload(), (*s)->position());
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ipc/status.h"

namespace hfe::store {

struct SnapshotListing {
  uint64_t position = 0;
  std::string path;
};

// The path of the snapshot at `position`: <store_dir>/snapshots/<position as 16 hex digits>.snap.
std::string SnapshotPath(const std::string& store_dir, uint64_t position);

// Writes `payload` as the snapshot at log position `position` (temp file, fsync, rename, directory fsync).
Status WriteSnapshot(const std::string& store_dir, uint64_t position, uint64_t schema_hash,
                     std::span<const uint8_t> payload);

// Snapshot files in the store, newest (highest position) first. Temp files are not listed.
Result<std::vector<SnapshotListing>> ListSnapshots(const std::string& store_dir);

// Removes all but the newest `keep` snapshots and any leftover temp files; returns how many it removed.
Result<size_t> PruneSnapshots(const std::string& store_dir, size_t keep);

// A snapshot mapped read-only; its payload stays valid while the object lives.
class SnapshotFile {
 public:
  ~SnapshotFile();
  SnapshotFile(const SnapshotFile&) = delete;
  SnapshotFile& operator=(const SnapshotFile&) = delete;

  // Maps and checks one file: magic, layout, header CRC, length, payload CRC, schema hash.
  static Result<std::unique_ptr<SnapshotFile>> Open(const std::string& path, uint64_t schema_hash);
  // The newest snapshot that checks out; nullptr when there is none. Each one skipped adds a warning.
  static Result<std::unique_ptr<SnapshotFile>> NewestValid(const std::string& store_dir, uint64_t schema_hash,
                                                           std::vector<std::string>* warnings);

  uint64_t position() const { return position_; }
  int64_t created_at_ns() const { return created_at_ns_; }
  std::span<const uint8_t> payload() const { return payload_; }
  size_t file_bytes() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  SnapshotFile() = default;
  void* map_ = nullptr;
  size_t size_ = 0;
  uint64_t position_ = 0;
  int64_t created_at_ns_ = 0;
  std::span<const uint8_t> payload_;
  std::string path_;
};

}  // namespace hfe::store
