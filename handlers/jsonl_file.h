// JsonlFile: an append-only JSON-lines file whose entries carry the event `position` they came from.
// One write(2) per entry (O_APPEND); rotation by size (path -> path.1 -> path.2 ..., `keep` files); a sync
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
  Status Sync();
  // Position of the newest entry written (0: none), recovered from the file on open.
  uint64_t last_position() const { return last_position_; }
  uint64_t entries() const { return entries_; }

 private:
  Status Rotate();
  JsonlOptions o_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  uint64_t entries_ = 0;
  uint64_t last_position_ = 0;
};

}  // namespace hfe::handlers
