#!/usr/bin/env bash
# One campaign-day of the KPI report job at scale (issue 16): starts a private stack (profile
# bench-kpis), generates 200,000 contacts of one Lima day (100 agents × 3 channels × the three
# families, with timings) and their pre-sales, measures kpi::fold alone in-process, seeds them as
# the store writes them, then runs the real Reports::compute in a process of its own and prints
# its wall time, CPU time, peak RSS (VmHWM), the Parquet file's size, its AWS requests and
# DynamoDB units from the emulator's ledger, and the same on DynamoDB (tests/bench/kpis.rs).
# Debug build, like the tests: the emulator's time is not DynamoDB's; requests, units, bytes,
# our CPU time and memory are what carry over.
#
# On moto the job's read of the day's partition is slow: each Query page costs moto about 5.5 s
# plus 0.055 ms per item in the whole table. 100,000 contacts took 16 minutes end to end on 2
# cores (14 for the job); 200,000 on a fresh stack, about 35 (docs/bench/kpis.md).
#
#   infra/bench/kpis.sh                         200,000 contacts
#   infra/bench/kpis.sh --contacts 100000
#   infra/bench/kpis.sh --contacts 200000 --fold-only    the in-process part alone, no stack
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROFILE="bench-kpis"
cd "$ROOT"
if [[ " $* " == *" --fold-only "* ]]; then
  exec cargo run -q -p e2e-tests --example kpis -- "$@"
fi
cargo build --workspace --bins --examples
infra/local/up --profile "$PROFILE" --detach --no-build
trap 'infra/local/down --profile "$PROFILE" >/dev/null 2>&1 || true' EXIT
BACKOFFICE_STACK="$ROOT/.local/$PROFILE/stack.json" cargo run -q -p e2e-tests --example kpis -- "$@"
