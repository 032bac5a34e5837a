#!/usr/bin/env bash
# The main job: set up, build, then run producer processes that append Host Factory request lifecycles
# concurrently into a fresh store under /dev/shm, and print what was appended with the throughput.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/tools/setup.sh"
"$here/tools/build.sh" "$here/build" -DHFE_BUILD_TESTS=OFF >/dev/null
hf="$here/build/tools/hostfactory"
store=${HFE_STORE:-/dev/shm/hfevents-demo}
if [ -e "$store/control.hfe" ]; then rm -rf "$store"; fi
"$hf" --store "$store" simulate --producers "${HFE_PRODUCERS:-4}" --requests "${HFE_REQUESTS:-5000}"
echo
echo "== hostfactory --store $store stats"
"$hf" --store "$store" stats
echo
echo "== hostfactory --store $store verify"
"$hf" --store "$store" verify
echo
echo "== the newest 3 events (hostfactory --store $store read --last 3)"
"$hf" --store "$store" read --last 3
