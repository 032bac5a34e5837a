// The on-disk / shared-memory format of an hfevents store: control region, segments, frames, records.
// Writers (producers, the resolver) and readers all include this file; nothing else defines these bytes.
//
// Why "commit, then resolve in log order" (DESIGN.md, design B)
// ---------------------------------------------------------------
// Producers only claim space, write a frame that carries its expectations (streams, expected versions,
// event ids) and commit it. One resolver at a time — any process may hold the role; a dead holder is replaced
// at once (liveness is pid + start time) — walks committed frames in position order, decides each against the
// stream table and the dedup index, writes the verdict and the assigned versions into the frame, updates the
// tables and advances the release-stored *resolved watermark*. Readers deliver only resolved, accepted frames.
// We chose it over claim-then-commit because every hard case becomes trivial in a single order: multi-stream
// atomic appends, concurrent appends of the same event id, gap-free versions, and crash repair (the resolver's
// work is a deterministic function of the committed frames, so a new holder redoes whatever a dead one left
// half-done). The price is one serial step per frame (two hash lookups per event) and acks that wait for it.
//
// Claiming space (helping, so that every claimed frame has its length written)
// -----------------------------------------------------------------------------
// A producer reads the tail T and CASes the frame state word at T from 0 to IN_PROGRESS(pid, length), then
// CASes the tail from T to T+length. Anyone who finds a non-zero state word at the tail helps by advancing the
// tail past it. So a frame is never reserved without its length being known, and a crashed claimant cannot
// leave a hole of unknown size. A frame that does not fit in the segment's rest is preceded by a padding frame
// to the segment's end; the log continues in the next segment.
//
// Committing and unblocking
// -------------------------
// The producer writes the body and the CRC, then CASes IN_PROGRESS -> DATA. The resolver, finding a frame
// IN_PROGRESS past the unblock timeout (or at once when the writer's pid is dead), CASes it to PAD. The writer's
// commit CAS then fails: it learns it was unblocked and retries with a new claim. Nothing is lost: a frame is
// acknowledged only after the resolver accepted it.
//
// Positions
// ---------
// A global position is a byte offset in the log: segment_index * segment_size + offset. Every event's position
// is the offset of its record header, so positions are unique and increase along the log (they are not dense).
//
// Block map of the control file `control.hfe`
// -------------------------------------------
//   +----------------------------+ 0
//   | ControlHeader (4096 bytes) |   handshake, geometry, tail, watermark, lease, journal, counters
//   +----------------------------+ stream_table_offset
//   | StreamSlot[stream_slots]   |   open addressing, linear probing; written by the resolver only
//   +----------------------------+ dedup_table_offset
//   | DedupHashSlot[dedup_slots] |   event id hash -> ring slot, for the last `dedup_window` accepted events
//   +----------------------------+ dedup_ring_offset
//   | DedupRingEntry[window]     |   FIFO of the window, in acceptance order (the hash is rebuilt from it)
//   +----------------------------+ time_index_offset
//   | TimeIndexSlot[time_slots]  |   newest occurred_at per segment (sparse time index)
//   +----------------------------+ subscription_table_offset
//   | SubscriptionSlot[subs]     |   durable subscriptions: name, filter, acked cursor, member
//   +----------------------------+ reader_table_offset
//   | ReaderSlot[reader_slots]   |   read sections in progress (redaction waits them out)
//   +----------------------------+
//
// A segment file `segments/<index as 16 hex digits>.log`, segment_size bytes:
//   +----------------------------+ 0
//   | SegmentHeader (64 bytes)   |
//   +----------------------------+ 64
//   | frame | frame | ... | pad  |   frames are 32-byte aligned; the last one pads to the end
//   +----------------------------+ segment_size
//
// Frame (32-byte aligned, `length` bytes including padding; a 128-byte event appended alone to a stream with
// a name of up to 16 bytes takes 256 bytes, in a batch of 16 about 190 bytes each):
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------------------------------------------------------+
//  |        length (i32; < 0 while in progress)                    |  0  \ state word (u64, atomic)
//  +---------------------------------------------------------------+     |
//  |        tag (u32: writer pid while in progress, else type)     |  4  /
//  +---------------------------------------------------------------+
//  |        crc (u32, masked CRC32C; see FrameCrc)                 |  8
//  +---------------------------------------------------------------+
//  |        verdict (u32, atomic; written by the resolver)         | 12
//  +-------------------------------+-------------------------------+
//  |  record_count (u16)           |  stream_count (u16)           | 16
//  +-------------------------------+-------------------------------+
//  |        records_offset (u32, from the frame start)             | 20
//  +---------------------------------------------------------------+
//  |        writer_token (u64: pid | start time << 32)             | 24
//  +---------------------------------------------------------------+
//  | StreamEntry[stream_count] (16 bytes + name padded to 8 each)  | 32
//  +---------------------------------------------------------------+
//  | RecordHeader (56 bytes) + payload (padded to 8), per record   | records_offset
//  +---------------------------------------------------------------+
//
// StreamEntry (no hash of the name: the resolver hashes the name itself, so no producer can file a frame
// under another stream's slot):
//  +---------------------------------------------------------------+
//  |        expected_version (i64; meaning by expected_kind)       |  0
//  +---------------+---------------+-------------------------------+
//  | expected_kind | reserved (u8) |  name_length (u16)            |  8
//  +---------------+---------------+-------------------------------+
//  |        event_count (u32, events of this stream in the frame)  | 12
//  +---------------------------------------------------------------+
//  |        name bytes, zero-padded to a multiple of 8             | 16
//  +---------------------------------------------------------------+
//
// RecordHeader:
//  +---------------------------------------------------------------+
//  |        version (u64; written by the resolver)                 |  0
//  |        prev_position (u64; written by the resolver)           |  8
//  |        event_id (16 bytes: hi u64, lo u64)                    | 16
//  +---------------------------------------------------------------+
//  |        event_type (u32)                                       | 32
//  +-------------------------------+-------------------------------+
//  |  stream_index (u16)           |  flags (u16)                  | 36
//  +-------------------------------+-------------------------------+
//  |        occurred_at_ns (i64)                                   | 40
//  +---------------------------------------------------------------+
//  |        payload_length (u32)                                   | 48
//  +---------------------------------------------------------------+
//  |        frame_offset (u32: this record's offset in its frame)  | 52
//  +---------------------------------------------------------------+
//
// Resolver-written fields (verdict; each record's version and prev_position) are outside the CRC: they are
// decided after the producer committed and are re-derivable by re-resolving the log (`verify` does). For an
// accepted frame, version is the event's stream version and prev_position the position of the stream's
// previous event (kNoPosition for the first). For AlreadyAppended, version and prev_position are the original
// event's version and position. For a conflict, record 0's version holds the stream's actual version
// (kNoVersion when it has no events) and the verdict's bits 8..23 the index of the conflicting stream entry.
//
// The CRC (FrameCrc) covers: the segment index (8 bytes LE), the final length (4 bytes LE), bytes [16, 32) of
// the frame header, the stream entries, and every record from its byte 16 to the end of its padded payload.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipc/region_format.h"

namespace hfe::store::format {

inline constexpr uint64_t kControlMagic = 0x31564548'4c525443ull;   // "CTRLHEV1"
inline constexpr uint64_t kSegmentMagic = 0x31564548'474d4553ull;   // "SEGMHEV1"
// 2: subscription table; 3: tombstones, PID namespace, readers; 4: compact frames (32-byte alignment, 16-byte
// stream entries without hashes, 56-byte record headers)
inline constexpr uint32_t kLayoutVersion = 4;

inline constexpr uint64_t kNoPosition = ~0ull;
inline constexpr uint64_t kNoVersion = ~0ull;     // "the stream has no events" (version -1)
inline constexpr uint32_t kFrameAlign = 32;
inline constexpr uint32_t kSegmentHeaderSize = 64;
inline constexpr uint32_t kControlHeaderSize = 4096;
inline constexpr uint32_t kMaxStreamName = 1024;
inline constexpr uint32_t kMaxRecordsPerFrame = 65535;
inline constexpr uint32_t kMaxStreamsPerFrame = 4096;

inline constexpr uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

// ---------------------------------------------------------------------------------------------- state word
enum FrameType : uint32_t { kTypeData = 1, kTypePad = 2 };

inline constexpr uint64_t MakeInProgress(uint32_t pid, uint32_t length) {
  return (uint64_t{pid} << 32) | static_cast<uint32_t>(-static_cast<int32_t>(length));
}
inline constexpr uint64_t MakeCommitted(FrameType type, uint32_t length) { return (uint64_t{type} << 32) | length; }
inline constexpr int32_t StateLength(uint64_t s) { return static_cast<int32_t>(static_cast<uint32_t>(s)); }
inline constexpr uint32_t StateTag(uint64_t s) { return static_cast<uint32_t>(s >> 32); }
inline constexpr bool StateInProgress(uint64_t s) { return s != 0 && StateLength(s) < 0; }
inline constexpr uint32_t StateAbsLength(uint64_t s) {
  int32_t l = StateLength(s);
  return static_cast<uint32_t>(l < 0 ? -l : l);
}

// ---------------------------------------------------------------------------------------------- verdicts
enum Verdict : uint32_t {
  kVerdictPending = 0,
  kVerdictAccepted = 1,
  kVerdictConflict = 2,         // an expected version did not hold; nothing visible
  kVerdictDuplicate = 3,        // every event id was already appended; nothing new visible
  kVerdictPartialDuplicate = 4, // some ids were appended before, some not: refused whole
  kVerdictCorrupt = 5,          // CRC or bounds failed; skipped and counted
  kVerdictStreamTableFull = 6,  // a new stream did not fit in the stream table
  kVerdictStreamDeleted = 7,    // a stream was hard-deleted before this frame (verdict bits 8..23: its entry)
};
// Accepted verdicts of a tombstone whose stream had no slot carry this bit: the slot it takes is counted.
inline constexpr uint32_t kVerdictTombstoneSlot = 1u << 24;
inline constexpr uint32_t VerdictCode(uint32_t v) { return v & 0xff; }
inline constexpr uint32_t VerdictStream(uint32_t v) { return (v >> 8) & 0xffff; }
inline constexpr uint32_t MakeVerdict(Verdict code, uint32_t stream_index = 0) {
  return code | ((stream_index & 0xffff) << 8);
}

enum ExpectedKind : uint8_t { kExpectAny = 0, kExpectNoStream = 1, kExpectStreamExists = 2, kExpectExact = 3 };

// ---------------------------------------------------------------------------------------------- frame
struct FrameHeader {
  uint64_t state;          // atomic
  uint32_t crc;
  uint32_t verdict;        // atomic, resolver-written
  uint16_t record_count;
  uint16_t stream_count;
  uint32_t records_offset;
  uint64_t writer_token;
};
static_assert(offsetof(FrameHeader, state) == 0);
static_assert(offsetof(FrameHeader, crc) == 8);
static_assert(offsetof(FrameHeader, verdict) == 12);
static_assert(offsetof(FrameHeader, record_count) == 16);
static_assert(offsetof(FrameHeader, stream_count) == 18);
static_assert(offsetof(FrameHeader, records_offset) == 20);
static_assert(offsetof(FrameHeader, writer_token) == 24);
static_assert(sizeof(FrameHeader) == 32);
inline constexpr uint32_t kCrcHeaderBegin = 16;  // header bytes [16, 32) are covered by the CRC

struct StreamEntry {
  uint64_t expected_version;
  uint8_t expected_kind;
  uint8_t reserved;
  uint16_t name_length;
  uint32_t event_count;
  // followed by name bytes, zero-padded to a multiple of 8
};
static_assert(offsetof(StreamEntry, expected_version) == 0);
static_assert(offsetof(StreamEntry, expected_kind) == 8);
static_assert(offsetof(StreamEntry, reserved) == 9);
static_assert(offsetof(StreamEntry, name_length) == 10);
static_assert(offsetof(StreamEntry, event_count) == 12);
static_assert(sizeof(StreamEntry) == 16);
inline constexpr uint32_t StreamEntrySize(uint32_t name_length) {
  return static_cast<uint32_t>(sizeof(StreamEntry) + AlignUp(name_length, 8));
}

struct RecordHeader {
  uint64_t version;        // resolver-written
  uint64_t prev_position;  // resolver-written
  uint64_t event_id_hi;
  uint64_t event_id_lo;
  uint32_t event_type;
  uint16_t stream_index;
  uint16_t flags;
  int64_t occurred_at_ns;
  uint32_t payload_length;
  uint32_t frame_offset;   // offset of this record from its frame's start
  // followed by payload_length bytes, zero-padded to a multiple of 8
};
static_assert(offsetof(RecordHeader, version) == 0);
static_assert(offsetof(RecordHeader, prev_position) == 8);
static_assert(offsetof(RecordHeader, event_id_hi) == 16);
static_assert(offsetof(RecordHeader, event_id_lo) == 24);
static_assert(offsetof(RecordHeader, event_type) == 32);
static_assert(offsetof(RecordHeader, stream_index) == 36);
static_assert(offsetof(RecordHeader, flags) == 38);
static_assert(offsetof(RecordHeader, occurred_at_ns) == 40);
static_assert(offsetof(RecordHeader, payload_length) == 48);
static_assert(offsetof(RecordHeader, frame_offset) == 52);
static_assert(sizeof(RecordHeader) == 56);
inline constexpr uint32_t kCrcRecordBegin = 16;  // record bytes [16, end) are covered by the CRC
// RecordHeader.flags. Redacted: the payload was zeroed in place (length and position kept) and the frame's
// CRC recomputed; readers present the event as redacted, with no body.
inline constexpr uint16_t kRecordRedacted = 1;
// Tombstone: a record of "$meta-<stream>" that hard-deletes <stream>. Set by the store's own writer (never by
// users, who cannot write '$' streams) and covered by the CRC; the resolver, accepting it, marks <stream>'s
// slot deleted, so appends are refused in log order from that frame on.
inline constexpr uint16_t kRecordTombstone = 2;
inline constexpr char kMetaStreamPrefix[] = "$meta-";
inline constexpr uint32_t RecordSize(uint32_t payload_length) {
  return static_cast<uint32_t>(sizeof(RecordHeader) + AlignUp(payload_length, 8));
}

// ---------------------------------------------------------------------------------------------- segment
struct SegmentHeader {
  uint64_t magic;
  uint64_t segment_index;
  uint64_t segment_size;
  uint8_t reserved[40];
};
static_assert(offsetof(SegmentHeader, magic) == 0);
static_assert(offsetof(SegmentHeader, segment_index) == 8);
static_assert(offsetof(SegmentHeader, segment_size) == 16);
static_assert(sizeof(SegmentHeader) == kSegmentHeaderSize);

// ---------------------------------------------------------------------------------------------- tables
struct StreamSlot {
  uint64_t hash_lo;       // 0 = empty; release-stored last when the slot is first filled
  uint64_t hash_hi;
  uint64_t next_version;  // number of events in the stream; bit 63: hard-deleted (kStreamDeleted)
  uint64_t last_position; // position of the newest event
};
static_assert(offsetof(StreamSlot, hash_lo) == 0);
static_assert(offsetof(StreamSlot, hash_hi) == 8);
static_assert(offsetof(StreamSlot, next_version) == 16);
static_assert(offsetof(StreamSlot, last_position) == 24);
static_assert(sizeof(StreamSlot) == 32);
// A hard-deleted stream keeps its slot with this bit set in next_version: the resolver refuses every later
// append to it (kVerdictStreamDeleted). Versions never reach 2^63, so the bit cannot be a count.
inline constexpr uint64_t kStreamDeleted = 1ull << 63;
inline constexpr uint64_t SlotVersion(uint64_t next_version) { return next_version & ~kStreamDeleted; }

// The dedup window's FIFO, in acceptance order: the source of truth (the hash is rebuilt from it).
struct DedupRingEntry {
  uint64_t id_hi;
  uint64_t id_lo;
  uint64_t position;      // 0 = empty (no record ever sits at position 0)
};
static_assert(offsetof(DedupRingEntry, id_lo) == 8);
static_assert(offsetof(DedupRingEntry, position) == 16);
static_assert(sizeof(DedupRingEntry) == 24);

// A dedup hash slot, 8 bytes so that the table of a 1 M-event window (16 MiB) stays in the last-level cache:
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------------------------------------------------------+
//  |        ring slot + 1 (u32; 0 = empty slot)                    |  0
//  +---------------------------------------------------------------+
//  |        low 32 bits of the event id's hash (home and tag)      |  4
//  +---------------------------------------------------------------+
// A tag match is confirmed against the full id in the ring entry.
using DedupHashSlot = uint64_t;
inline constexpr uint64_t MakeDedupSlot(uint64_t hash, uint64_t ring_slot) {
  return (hash << 32) | ((ring_slot + 1) & 0xffffffffu);
}
inline constexpr uint32_t DedupSlotHash(uint64_t slot) { return static_cast<uint32_t>(slot >> 32); }
inline constexpr uint64_t DedupSlotRing(uint64_t slot) { return (slot & 0xffffffffu) - 1; }
inline constexpr uint64_t kMaxDedupWindow = 1ull << 30;

struct TimeIndexSlot {
  uint64_t segment_plus_one;  // 0 = empty
  int64_t max_occurred_at_ns;
};
static_assert(sizeof(TimeIndexSlot) == 16);

// ---------------------------------------------------------------------------------------------- subscriptions
// A durable subscription. Created and deleted under the store's admin flock; the cursor is advanced by its
// member on ack (release), read by anyone (acquire).
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------------------------------------------------------+
//  |  state (u32, atomic: 0 free, 1 active; release-stored last)   |   0
//  +---------------------------------------------------------------+
//  |  name_length (u32)                                            |   4
//  +---------------------------------------------------------------+
//  |  name (56 bytes, zero-padded)                                 |   8
//  +---------------------------------------------------------------+
//  |  cursor (u64, atomic): everything before it is acknowledged   |  64
//  |  delivered (u64), acked (u64): event counts                   |  72
//  |  start_position (u64)                                         |  88
//  |  member_token (u64, atomic: pid | start time << 32; 0 = none) |  96
//  |  heartbeat_ns (i64, wall clock)                               | 104
//  |  type_filter (4 x u64: bit t set = event type t; all 0 = any) | 112
//  +-------------------------------+-------------------------------+
//  |  prefix_length (u16)          | kind (u8) | reserved (5 bytes)| 144
//  +-------------------------------+-------------------------------+
//  |  stream prefix (64 bytes, zero-padded)                        | 152
//  |  parked (u64), created_at_ns (i64), reserved (24 bytes)       | 216
//  +---------------------------------------------------------------+ 256
inline constexpr uint32_t kMaxSubscriptionName = 56;
inline constexpr uint32_t kMaxStreamPrefix = 64;
inline constexpr uint64_t kSubscriptionSlots = 128;
inline constexpr uint8_t kSubscriptionSingle = 0;
inline constexpr uint8_t kSubscriptionGroup = 1;
struct SubscriptionSlot {
  uint32_t state;
  uint32_t name_length;
  char name[kMaxSubscriptionName];
  uint64_t cursor;
  uint64_t delivered;
  uint64_t acked;
  uint64_t start_position;
  uint64_t member_token;
  int64_t heartbeat_ns;
  uint64_t type_filter[4];
  uint16_t prefix_length;
  uint8_t kind;            // kSubscriptionSingle or kSubscriptionGroup
  uint8_t reserved0[5];
  char prefix[kMaxStreamPrefix];
  uint64_t parked;
  int64_t created_at_ns;
  uint8_t reserved1[24];
};
static_assert(offsetof(SubscriptionSlot, name) == 8);
static_assert(offsetof(SubscriptionSlot, cursor) == 64);
static_assert(offsetof(SubscriptionSlot, delivered) == 72);
static_assert(offsetof(SubscriptionSlot, acked) == 80);
static_assert(offsetof(SubscriptionSlot, start_position) == 88);
static_assert(offsetof(SubscriptionSlot, member_token) == 96);
static_assert(offsetof(SubscriptionSlot, heartbeat_ns) == 104);
static_assert(offsetof(SubscriptionSlot, type_filter) == 112);
static_assert(offsetof(SubscriptionSlot, prefix_length) == 144);
static_assert(offsetof(SubscriptionSlot, kind) == 146);
static_assert(offsetof(SubscriptionSlot, prefix) == 152);
static_assert(offsetof(SubscriptionSlot, parked) == 216);
static_assert(offsetof(SubscriptionSlot, created_at_ns) == 224);
static_assert(sizeof(SubscriptionSlot) == 256);

// ---------------------------------------------------------------------------------------------- readers
// A read section in progress: zero-copy views handed to a visitor point into the log, so a redaction must not
// zero a payload that a visitor may be reading. Each reader thread, for the length of a read (and its
// visits), owns a slot whose word is (section generation << 32 | pid); 0 is a free slot. A redaction flags
// the record first (new views present it as redacted, with zeros for a body), then waits until every slot
// that held a section at that moment has changed or its owner is dead, and only then zeroes the bytes. The
// owner's liveness token (pid + start time) follows the word; a slot whose owner died is taken back.
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------------------------------------------------------+
//  |        pid (u32; 0 with a zero generation = free)             |  0  \ section word (u64, atomic)
//  +---------------------------------------------------------------+     |
//  |        section generation (u32, never 0 while held)           |  4  /
//  +---------------------------------------------------------------+
//  |        owner (u64, atomic: liveness token, pid | start << 32) |  8
//  +---------------------------------------------------------------+
//  |        reserved (48 bytes: one slot per cache line)           | 16
//  +---------------------------------------------------------------+ 64
inline constexpr uint64_t kReaderSlots = 1024;
struct alignas(64) ReaderSlot {
  uint64_t section;
  uint64_t owner;
  uint8_t reserved[48];
};
static_assert(offsetof(ReaderSlot, section) == 0);
static_assert(offsetof(ReaderSlot, owner) == 8);
static_assert(sizeof(ReaderSlot) == 64);
inline constexpr uint64_t MakeSection(uint32_t generation, uint32_t pid) { return (uint64_t{generation} << 32) | pid; }
inline constexpr uint32_t SectionPid(uint64_t section) { return static_cast<uint32_t>(section); }

// ---------------------------------------------------------------------------------------------- control
enum SyncMode : uint32_t { kSyncNone = 0, kSyncInterval = 1, kSyncEveryAppend = 2 };

struct ControlHeader {
  ipc::RegionHeader region;       //    0: handshake
  uint64_t segment_size;          //   32
  uint64_t stream_slots;          //   40
  uint64_t dedup_window;          //   48
  uint64_t dedup_slots;           //   56
  uint64_t stream_table_offset;   //   64
  uint64_t dedup_table_offset;    //   72
  uint64_t dedup_ring_offset;     //   80
  uint64_t time_index_offset;     //   88
  uint64_t time_index_slots;      //   96
  uint64_t unblock_timeout_ns;    //  104
  int64_t created_at_ns;          //  112
  uint32_t sync_policy;           //  120
  uint32_t sync_interval_ms;      //  124
  // -- cache line 128: the claim tail (producers)
  uint64_t tail;                  //  128  atomic
  uint64_t prepared_segment;      //  136  atomic: newest segment created and pre-touched
  uint8_t pad1[256 - 144];
  // -- cache line 256: the resolved watermark (resolver writes; producers and readers wait on it)
  uint64_t resolved;              //  256  atomic; futex waits on its low 32 bits
  uint32_t waiters;               //  264  atomic: processes parked on `resolved`
  uint32_t reserved2;             //  268
  uint8_t pad2[384 - 272];
  // -- cache line 384: resolver role and its redo journal
  uint64_t lease;                 //  384  atomic: liveness token of the holder, 0 when free
  uint64_t journal_frame;         //  392  frame whose table updates are being applied
  uint64_t journal_dedup_base;    //  400  dedup_count before that frame
  uint64_t repairs;               //  408  times a dead holder's work was redone
  uint64_t journal_accepted_events;   // 416  counters as they were before journal_frame
  uint64_t journal_accepted_frames;   // 424
  uint64_t journal_rejected_frames;   // 432
  uint64_t journal_corrupt_frames;    // 440
  uint64_t journal_stream_count;      // 448
  uint8_t pad3[512 - 456];
  // -- cache line 512: counters, written by the resolver only
  uint64_t accepted_events;       //  512
  uint64_t accepted_frames;       //  520
  uint64_t rejected_frames;       //  528
  uint64_t corrupt_frames;        //  536
  uint64_t padded_frames;         //  544  stalled frames turned into padding
  uint64_t stream_count;          //  552
  uint64_t dedup_count;           //  560  ids ever entered in the window ring
  uint64_t first_segment;         //  568  oldest segment still in the log
  int64_t newest_occurred_at_ns;  //  576
  uint64_t subscription_table_offset;  // 584
  uint64_t subscription_slots;         // 592
  uint8_t pad4[640 - 600];
  // -- cache line 640: read by every append, written once per store in a while
  uint64_t metadata_flags;        //  640  kMetaAny: some stream has metadata; kMetaHardDelete: some is tombstoned
  uint64_t pid_namespace;         //  648  inode of the creator's PID namespace (liveness is read from /proc)
  uint64_t reader_table_offset;   //  656
  uint64_t reader_slots;          //  664
  uint64_t reserved3;             //  672
  // -- durability on disk (unused on tmpfs)
  uint64_t durable_position;      //  680  atomic: the log below it was synced to disk before it was stored
  uint64_t clean_shutdown;        //  688  1: the last process to leave synced everything; 0 while in use
  uint8_t pad5[kControlHeaderSize - 696];
};
inline constexpr uint64_t kMetaAny = 1;         // ReadStream looks for "$meta-<stream>" only when set
inline constexpr uint64_t kMetaHardDelete = 2;  // appends check for a tombstone only when set
static_assert(offsetof(ControlHeader, segment_size) == 32);
static_assert(offsetof(ControlHeader, stream_slots) == 40);
static_assert(offsetof(ControlHeader, dedup_window) == 48);
static_assert(offsetof(ControlHeader, dedup_slots) == 56);
static_assert(offsetof(ControlHeader, stream_table_offset) == 64);
static_assert(offsetof(ControlHeader, dedup_table_offset) == 72);
static_assert(offsetof(ControlHeader, dedup_ring_offset) == 80);
static_assert(offsetof(ControlHeader, time_index_offset) == 88);
static_assert(offsetof(ControlHeader, time_index_slots) == 96);
static_assert(offsetof(ControlHeader, unblock_timeout_ns) == 104);
static_assert(offsetof(ControlHeader, created_at_ns) == 112);
static_assert(offsetof(ControlHeader, sync_policy) == 120);
static_assert(offsetof(ControlHeader, sync_interval_ms) == 124);
static_assert(offsetof(ControlHeader, tail) == 128);
static_assert(offsetof(ControlHeader, prepared_segment) == 136);
static_assert(offsetof(ControlHeader, resolved) == 256);
static_assert(offsetof(ControlHeader, waiters) == 264);
static_assert(offsetof(ControlHeader, lease) == 384);
static_assert(offsetof(ControlHeader, journal_frame) == 392);
static_assert(offsetof(ControlHeader, journal_dedup_base) == 400);
static_assert(offsetof(ControlHeader, repairs) == 408);
static_assert(offsetof(ControlHeader, journal_accepted_events) == 416);
static_assert(offsetof(ControlHeader, journal_stream_count) == 448);
static_assert(offsetof(ControlHeader, accepted_events) == 512);
static_assert(offsetof(ControlHeader, dedup_count) == 560);
static_assert(offsetof(ControlHeader, first_segment) == 568);
static_assert(offsetof(ControlHeader, metadata_flags) == 640);
static_assert(offsetof(ControlHeader, pid_namespace) == 648);
static_assert(offsetof(ControlHeader, reader_table_offset) == 656);
static_assert(offsetof(ControlHeader, reader_slots) == 664);
static_assert(offsetof(ControlHeader, durable_position) == 680);
static_assert(offsetof(ControlHeader, clean_shutdown) == 688);
static_assert(offsetof(ControlHeader, newest_occurred_at_ns) == 576);
static_assert(offsetof(ControlHeader, subscription_table_offset) == 584);
static_assert(offsetof(ControlHeader, subscription_slots) == 592);
static_assert(sizeof(ControlHeader) == kControlHeaderSize);
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);

}  // namespace hfe::store::format
