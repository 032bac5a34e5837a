// hostfactory: inspect, troubleshoot, feed and benchmark an hfevents store.
#include <cstdio>
#include <exception>

#include "tools/cli_common.h"

int main(int argc, char** argv) {
  hfe::tools::GlobalOptions g;
  int rc = 0;
  CLI::App app{"hostfactory: the Host Factory event store (hfevents) command line"};
  app.set_version_flag("--version", "hfevents 0.1.0");
  app.add_option("--store", g.store, "store directory (tmpfs by default)")->capture_default_str();
  app.add_flag("--json", g.json, "machine-readable JSON output");
  app.add_option("--segment-mb", g.segment_mb, "segment size in MiB when creating a store (power of two)")
      ->capture_default_str();
  app.add_option("--stream-capacity", g.stream_capacity, "distinct streams when creating a store")->capture_default_str();
  app.add_option("--dedup-window", g.dedup_window, "events deduplicated by id when creating a store")
      ->capture_default_str();
  app.add_option("--sync", g.sync, "sync policy when creating a store on disk: none, interval, every-append")
      ->check(CLI::IsMember({"none", "interval", "every-append"}))
      ->capture_default_str();
  app.add_option("--recovery", g.recovery, "recovery on open: point-in-time, strict, salvage")
      ->check(CLI::IsMember({"point-in-time", "strict", "salvage"}))
      ->capture_default_str();
  app.require_subcommand(1);
  app.fallthrough();
  hfe::tools::AddStoreVerbs(app, g, rc);
  hfe::tools::AddSimulateVerb(app, g, rc);
  hfe::tools::AddHandleVerbs(app, g, rc);
  hfe::tools::AddBenchVerb(app, g, rc);
  hfe::tools::AddDebugVerb(app, g, rc);
  hfe::tools::AddProviderVerb(app, g, rc);
  hfe::tools::AddDemoVerb(app, g, rc);
  hfe::tools::AddSnapshotVerbs(app, g, rc);
  hfe::tools::AddBridgeVerb(app, g, rc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    // The last line of defence: every verb checks its input and reports through Status; an exception that
    // still reaches here is a bug, reported in one line rather than by std::terminate.
    std::fprintf(stderr, "hostfactory: unexpected error: %s (nothing more was written; please report it)\n", e.what());
    return 1;
  }
  return rc;
}
