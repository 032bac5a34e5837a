// JsonlFile: an append-only JSON-lines file whose entries carry the event `position` they came from.
// One write(2) per entry (O_APPEND), or per buffer of entries when `buffer_bytes` is set; rotation by size (path -> path.1 -> path.2 ..., `keep` files); a sync
// policy; on open a torn last line (a write cut by a crash) is removed and the position of the last complete
// entry is returned, so handlers that write here resume exactly after what they wrote.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "ipc/status.h"

namespace hfe::handlers {

struct JsonlOptions {
  std::string path;
  uint64_t max_bytes = 64ull << 20;  // rotate past this size (0: never)
  int keep = 5;                      // rotated files kept
  int sync_every = 0;                // fdatasync every N entries (0: leave it to the kernel)
  size_t buffer_bytes = 0;           // write entries together once this many bytes wait (0: one write each);
                                     // Flush() writes the rest
};

class JsonlFile {
 public:
  JsonlFile() = default;
  ~JsonlFile();
  JsonlFile(const JsonlFile&) = delete;
  JsonlFile& operator=(const JsonlFile&) = delete;

  Status Open(const JsonlOptions& options);
  // Appends one entry (a JSON object with a "position"), rotating afterwards when the file got too big.
  Status Append(const nlohmann::json& entry);
  // Appends one entry given as its JSON text (no newline) and the position it records.
  Status AppendLine(std::string_view line, uint64_t position);
  // Writes the buffered entries.
  Status Flush();
  Status Sync();
  // Position of the newest entry appended (0: none; recovered from the file on open) and of the newest one
  // written to the file (the same unless entries wait in the buffer).
  uint64_t last_position() const { return last_position_; }
  uint64_t written_position() const { return written_position_; }
  uint64_t entries() const { return entries_; }

 private:
  Status Rotate();
  Status WriteBuffer();
  JsonlOptions o_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  uint64_t entries_ = 0;
  uint64_t last_position_ = 0;
  uint64_t written_position_ = 0;
  uint64_t unsynced_ = 0;   // entries written since the last fdatasync
  uint64_t buffered_ = 0;   // entries in the buffer
  std::string buffer_;
};

// Replaces `path` with `text` whole (a temp file renamed over it), so a reader sees the old or the new file.
Status WriteFileAtomically(const std::string& path, std::string_view text);

}  // namespace hfe::handlers
