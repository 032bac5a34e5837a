// The benchmark suite behind `hostfactory bench`: cross-process latency and throughput of the pipeline
// beside baselines measured in the same run, interleaved round by round, with machine details, exact
// percentiles, JSON, HdrHistogram-style percentile files and gnuplot plots.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hfe::bench {

struct SuiteOptions {
  bool quick = false;           // under two minutes
  int rounds = 3;               // every measurement this many times, interleaved
  double rate = 0;              // messages/s for latency tests; 0 = back to back. With a rate, latencies are
                                // measured from the intended send time (coordinated omission corrected)
  std::string out_dir;          // JSON, percentile files and plots; empty = none written
  bool plots = true;
  bool progress = true;         // a line on stderr per measurement
  std::vector<std::string> only;  // result names to run (e.g. throughput_1p1c_128, rtt_128); empty = all
};

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;
};
Percentiles Summarise(std::vector<int64_t> samples);  // exact, from every sample
nlohmann::json ToJson(const Percentiles& p);

// Runs the suite; returns {"machine": {...}, "results": [...]} (see README) and prints the table to stdout
// unless `print_table` is false. Returns {"error": "..."} and runs nothing when `only` names an unknown result.
nlohmann::json RunSuite(const SuiteOptions& options, bool print_table);

// Machine description: CPU model, cores, kernel, governor if visible.
nlohmann::json MachineInfo();

}  // namespace hfe::bench
