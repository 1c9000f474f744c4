#!/usr/bin/env bash
# The long fuzzing campaign (docs/fuzzing.md): every harness under
# tests/it/fuzz/ runs round after round with fresh seeds for FUZZ_SECONDS
# (default 300: two harnesses a target, so 10 minutes a target), and prints
# how many cases it ran. A failure is shrunk, kept in proptest-regressions/
# (commit it) and fails the script. THREADS harnesses run at once (default 1).
# PROFILE=release builds optimised (slow to build; the default is the dev
# profile, whose dependencies are built with opt-level 1).
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_SECONDS="${FUZZ_SECONDS:-300}"
profile="${PROFILE:-dev}"
cargo test --locked --profile "$profile" --test it fuzz:: -- \
  --test-threads="${THREADS:-1}" --nocapture 2>&1 | grep -E '^(fuzz |test |test result|thread .* panicked)|minimal failing'
