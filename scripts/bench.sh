#!/usr/bin/env bash
# Times the whole embedded corpus against the in-process reference server.
# Not a test: the goal (issue 3) is under 20 s on 2 cores. Pass extra
# grpc-conform flags after the script name, e.g. `scripts/bench.sh --jobs 8`.
# PROFILE=release builds optimised (slow to build; the default is the dev
# profile, whose dependencies are built with opt-level 1).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-dev}"
cargo build --quiet --profile "$profile"
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin="target/$dir/grpc-conform"
runs="${RUNS:-3}"
for i in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  status=0
  "$bin" "$@" >/dev/null || status=$?
  end=$(date +%s.%N)
  printf 'run %d: %.2f s (exit %d)\n' "$i" "$(awk "BEGIN{print $end - $start}")" "$status"
done
echo "fixtures: $("$bin" --list "$@" | wc -l)"
