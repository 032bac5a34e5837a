#!/usr/bin/env bash
# The main job: set up, build, then run the whole Host Factory event pipeline on a fresh store under
# /dev/shm: producer processes create requests, the workflow handler process sends commands to the simulated
# provider, which provisions machines (some fail) and completes or fails the requests, and a handler process
# writes the audit log, notifications, alerts and metrics. A summary line each second; outputs in
# hfevents-out/ (or $HFE_OUT).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/tools/setup.sh"
# The same build tree as the test command; it turns the tests back on when it runs.
"$here/tools/build.sh" "$here/build" -DHFE_BUILD_TESTS=OFF -DHFE_SANITIZE= >/dev/null
hf="$here/build/tools/hostfactory"
store=${HFE_STORE:-/dev/shm/hfevents-demo}
out=${HFE_OUT:-$here/hfevents-out}
if [ -e "$store/control.hfe" ]; then rm -rf "$store"; fi
rm -f "$out"/audit.jsonl* "$out"/notifications.jsonl* "$out"/alerts.jsonl* "$out"/metrics.prom "$out"/*-stats.json
"$hf" --store "$store" demo --out "$out" --producers "${HFE_PRODUCERS:-4}" --requests "${HFE_REQUESTS:-2500}" \
  --rate "${HFE_RATE:-1000}" --fail-rate "${HFE_FAIL_RATE:-0.05}"
echo
echo "== hostfactory --store $store subscriptions"
"$hf" --store "$store" subscriptions
echo
echo "== hostfactory --store $store verify"
"$hf" --store "$store" verify
echo
echo "== the last audit entry ($out/audit.jsonl) and request metrics ($out/metrics.prom)"
tail -n 1 "$out/audit.jsonl"
grep -E '^(requests_created_total|requests_completed_total|request_duration_seconds_count)' "$out/metrics.prom" | head -n 6
