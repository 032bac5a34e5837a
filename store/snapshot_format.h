// The layout of a snapshot file, `snapshots/<position as 16 hex digits>.snap`: a fixed header, then the
// payload (a FlatBuffers buffer whose schema the store does not know; handlers/ defines it).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------------------------------------------------------+
//  |                       magic "HFESNAP1" (u64)                  |  0
//  +-------------------------------+-------------------------------+
//  |      layout version (u32)     |       header size (u32)       |  8
//  +-------------------------------+-------------------------------+
//  |   position P (u64): the log is folded up to here (exclusive)  | 16
//  +---------------------------------------------------------------+
//  |   schema hash (u64): of the schema the payload was written by | 24
//  +---------------------------------------------------------------+
//  |   created at (i64, wall ns)                                   | 32
//  +---------------------------------------------------------------+
//  |   payload length (u64)                                        | 40
//  +-------------------------------+-------------------------------+
//  |   payload CRC32C (masked)     |   header CRC32C (masked, of   | 48
//  |                               |   bytes 0..51)                |
//  +-------------------------------+-------------------------------+
//  |   reserved (u64, zero)                                        | 56
//  +---------------------------------------------------------------+
//  |   payload (payload length bytes)                              | 64
//
// A snapshot is written to `<name>.tmp`, synced, renamed into place and the directory synced, so a reader
// sees a whole file or none; a crash mid-write leaves only a .tmp file, which readers ignore. A file whose
// header CRC, payload CRC, length or schema hash does not match is skipped with a warning.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hfe::store::snapshot_format {

inline constexpr uint64_t kSnapshotMagic = 0x3150414e53454648ull;  // "HFESNAP1"
inline constexpr uint32_t kSnapshotLayoutVersion = 1;
inline constexpr uint64_t kMaxPayload = 1ull << 34;  // 16 GiB: larger lengths are damage

struct SnapshotHeader {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t header_size;
  uint64_t position;
  uint64_t schema_hash;
  int64_t created_at_ns;
  uint64_t payload_length;
  uint32_t payload_crc;
  uint32_t header_crc;
  uint64_t reserved;
};
static_assert(offsetof(SnapshotHeader, magic) == 0);
static_assert(offsetof(SnapshotHeader, layout_version) == 8);
static_assert(offsetof(SnapshotHeader, header_size) == 12);
static_assert(offsetof(SnapshotHeader, position) == 16);
static_assert(offsetof(SnapshotHeader, schema_hash) == 24);
static_assert(offsetof(SnapshotHeader, created_at_ns) == 32);
static_assert(offsetof(SnapshotHeader, payload_length) == 40);
static_assert(offsetof(SnapshotHeader, payload_crc) == 48);
static_assert(offsetof(SnapshotHeader, header_crc) == 52);
static_assert(offsetof(SnapshotHeader, reserved) == 56);
static_assert(sizeof(SnapshotHeader) == 64);
inline constexpr size_t kHeaderCrcBytes = offsetof(SnapshotHeader, header_crc);

}  // namespace hfe::store::snapshot_format
