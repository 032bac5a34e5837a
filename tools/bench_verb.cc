// bench: the benchmark suite (bench/harness) from the command line.
//   hostfactory bench [--quick] [--rounds N] [--rate MSGS_PER_S] [--out DIR] [--no-plots] [--only NAMES]   (--json: one object)
#include <iostream>

#include "bench/harness/harness.h"
#include "tools/cli_common.h"

namespace hfe::tools {

void AddBenchVerb(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<bench::SuiteOptions>();
  o->out_dir = "bench-results";
  auto no_plots = std::make_shared<bool>(false);
  auto* b = app.add_subcommand("bench", "latency and throughput of the pipeline beside baselines measured in the same run");
  b->add_flag("--quick", o->quick, "fewer samples and events (under two minutes)");
  b->add_option("--rounds", o->rounds, "rounds, interleaved (at least 3 to show the spread)")->capture_default_str()
      ->check(CLI::Range(1, 100));
  b->add_option("--rate", o->rate, "send latency messages at this rate (msgs/s), correcting for coordinated omission");
  b->add_option("--out", o->out_dir, "directory for results.json, .hgrm percentile files and PNG plots")
      ->capture_default_str();
  b->add_flag("--no-plots", *no_plots, "skip the gnuplot plots");
  b->add_option("--only", o->only, "run only these results (comma-separated names, e.g. throughput_1p1c_128,rtt_128)")
      ->delimiter(',');
  b->callback([&g, &rc, o, no_plots] {
    o->plots = !*no_plots;
    o->progress = !g.json;
    nlohmann::json r = bench::RunSuite(*o, !g.json);
    if (r.contains("error")) {
      std::fprintf(stderr, "%s\n", r["error"].get<std::string>().c_str());
      rc = 2;
      return;
    }
    if (g.json) std::cout << r.dump() << "\n";
    else if (!o->out_dir.empty()) std::printf("\nresults, percentile files and plots in %s/\n", o->out_dir.c_str());
    rc = 0;
  });
}

}  // namespace hfe::tools
