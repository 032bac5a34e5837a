// The bridge's stats: a JSON file and the same numbers as Prometheus text, rewritten about once a second, and
// the listing `debug-events --store-health` shows.
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include "handlers/jsonl_file.h"
#include "tools/bridge/bridge.h"

namespace hfe::bridge {
namespace {

// Prometheus label values escape backslash, quote and newline.
std::string LabelValue(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string ImportParkOwner(const std::string& topic, const std::string& group) {
  return "kafka:" + topic + "@" + group;
}

std::string DefaultStatsPath(const std::string& store_dir, const std::string& kind, const std::string& name) {
  std::string n = name;
  std::replace(n.begin(), n.end(), '/', '_');
  return store_dir + "/bridge/" + kind + "." + n + ".json";
}

Status WriteStats(const std::string& json_path, const nlohmann::json& j) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(json_path).parent_path(), ec);
  if (ec) return IoError("cannot create the directory of the stats file '" + json_path + "': " + ec.message());
  HFE_RETURN_IF_ERROR(handlers::WriteFileAtomically(json_path, j.dump() + "\n"));
  const std::string kind = j.value("kind", "bridge");
  const std::string labels = "{name=\"" + LabelValue(j.value("name", "")) + "\",topic=\"" +
                             LabelValue(j.value("topic", "")) + "\"}";
  std::string prom;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_number() || k == "pid") continue;
    const std::string metric = "hfevents_bridge_" + kind + "_" + k;
    const bool counter = k.size() > 6 && k.compare(k.size() - 6, 6, "_total") == 0;
    prom += "# TYPE " + metric + (counter ? " counter\n" : " gauge\n");
    prom += metric + labels + " " + v.dump() + "\n";
  }
  std::string prom_path = json_path;
  if (prom_path.size() > 5 && prom_path.compare(prom_path.size() - 5, 5, ".json") == 0) prom_path.resize(prom_path.size() - 5);
  return handlers::WriteFileAtomically(prom_path + ".prom", prom);
}

std::vector<nlohmann::json> ReadStats(const std::string& store_dir) {
  std::vector<nlohmann::json> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(store_dir + "/bridge", ec)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream f(e.path());
    auto j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;
    const int pid = j.value("pid", 0);
    j["alive"] = pid > 0 && !j.value("final", false) && (::kill(pid, 0) == 0 || errno == EPERM);
    out.push_back(std::move(j));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.dump() < b.dump(); });
  return out;
}

}  // namespace hfe::bridge
