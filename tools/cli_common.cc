// Opening the store for a verb, and one-line errors.
#include "tools/cli_common.h"

#include <dirent.h>
#include <sys/stat.h>

#include <sstream>

namespace hfe::tools {

int Fail(const Status& s) { return Fail(s.message()); }

int Fail(const std::string& message) {
  std::fprintf(stderr, "hostfactory: %s\n", message.c_str());
  return 1;
}

Status CheckStreamOption(std::string_view stream) {
  Status s = store::EventStore::CheckStreamName(stream);
  return s.ok() ? s : InvalidArgument("--stream: " + s.message());
}

Result<std::unique_ptr<store::EventStore>> OpenStore(const GlobalOptions& g, bool create) {
  store::StoreOptions o;
  struct stat st;
  std::string control = g.store + "/control.hfe";
  if (create && ::lstat(g.store.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && ::lstat(control.c_str(), &st) != 0) {
    // A directory without a store: create one only when it is empty.
    if (DIR* d = ::opendir(g.store.c_str())) {
      int entries = 0;
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != ".." && n != "lock" && n != "open.lock") ++entries;
      }
      ::closedir(d);
      if (entries > 0) {
        return InvalidArgument("'" + g.store + "' is not an hfevents store (no control.hfe) and is not empty; " +
                               "point --store at a store or at a new directory");
      }
    }
  }
  o.create_if_missing = create;
  o.segment_size = g.segment_mb << 20;
  o.stream_capacity = g.stream_capacity;
  o.dedup_window = g.dedup_window;
  o.sync = g.sync == "every-append" ? store::SyncPolicy::kEveryAppend
           : g.sync == "interval"   ? store::SyncPolicy::kInterval
                                    : store::SyncPolicy::kNone;
  o.recovery = g.recovery == "strict"    ? store::RecoveryMode::kStrict
               : g.recovery == "salvage" ? store::RecoveryMode::kSalvage
                                         : store::RecoveryMode::kPointInTime;
  auto s = store::EventStore::Open(g.store, o);
  if (s.ok() && !(*s)->recovery_report().damage.empty()) {
    const auto& r = (*s)->recovery_report();
    std::fprintf(stderr, "hostfactory: recovered '%s': %s; dropped %llu frame(s), %llu bytes; skipped %llu\n",
                 g.store.c_str(), r.damage.c_str(), static_cast<unsigned long long>(r.frames_dropped),
                 static_cast<unsigned long long>(r.bytes_dropped), static_cast<unsigned long long>(r.frames_skipped));
  }
  return s;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace hfe::tools
