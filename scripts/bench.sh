#!/usr/bin/env bash
# Times the whole embedded corpus against the in-process reference server.
# Not a test. The budget: under 6 s with 4 jobs on 2 cores (JOBS=4, the
# default here); the script says whether the fastest run kept it. Pass extra
# grpc-conform flags after the script name, e.g. `scripts/bench.sh --filter 'size/*'`.
# PROFILE=release builds optimised (slow to build; the default is the dev
# profile, whose dependencies are built with opt-level 1).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-dev}"
cargo build --quiet --profile "$profile"
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin="target/$dir/grpc-conform"
runs="${RUNS:-3}"
jobs="${JOBS:-4}"
budget_s="${BUDGET_S:-6}"
times=()
for i in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  status=0
  "$bin" --jobs "$jobs" "$@" >/dev/null || status=$?
  end=$(date +%s.%N)
  t=$(awk "BEGIN{printf \"%.2f\", $end - $start}")
  times+=("$t")
  printf 'run %d: %s s (exit %d)\n' "$i" "$t" "$status"
done
best=$(printf '%s\n' "${times[@]}" | sort -n | head -1)
echo "fixtures: $("$bin" --list "$@" | wc -l), jobs: $jobs, cores: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk "BEGIN{exit !($best < $budget_s)}"; then
  echo "fastest run $best s: within the $budget_s s budget"
else
  echo "fastest run $best s: OVER the $budget_s s budget"
fi
