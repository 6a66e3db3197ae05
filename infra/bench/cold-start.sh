#!/usr/bin/env bash
# Cold starts of every function of infra/template.yaml beside hello-lambda (issue 14, item 2):
# init (spawn to the first GET /next of the Runtime API) over N fresh processes, init after an
# idle second, the first invocation and W warm ones of a real event, peak RSS (VmHWM), the
# ratios to hello-lambda and a PASS/over mark per target; and for GET /presales/{id}, its one
# DynamoDB GetItem timed directly against the emulator.
#
#   infra/bench/cold-start.sh [--profile release|dev] [--bin-dir DIR] [--stack NAME]
#                             [--runs 20] [--idle-runs 5] [--warm 50] [--only Fn1,Fn2]
#
#   --profile release  (default) `cargo build --release` of the template's binaries and
#                      hello-lambda (fat LTO: ~30 min on 2 cores); the harness with the bench
#                      profile (optimised, thin LTO), so its own overhead stays small.
#   --profile dev      target/debug binaries and harness: a quick check that everything runs.
#                      Its figures are NOT representative of Lambda.
#   --bin-dir DIR      measure the binaries already in DIR (no build of the functions).
#
# Starts its own local stack (profile `coldstart`: emulator, SUNAT stand-in, gateway), seeds one
# sale through the public API (tests' own helpers do the same), stops the stack's gateway so its
# pollers and schedules stay off the CPU, runs the benchmark (infra/bench/cold-start, crate
# `cold-start`) and brings the stack down on exit. Prints figures; never fails on one.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"
LOG_PREFIX="cold-start"  # read by lib.sh's log

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

profile="release"
bin_dir=""
stack="coldstart"
run_args=()
while (($#)); do
  case "$1" in
    --profile) [[ $# -ge 2 ]] || die "--profile needs a value"; profile="$2"; shift 2 ;;
    --bin-dir) [[ $# -ge 2 ]] || die "--bin-dir needs a value"; bin_dir="$(cd "$2" && pwd)"; shift 2 ;;
    --stack) [[ $# -ge 2 ]] || die "--stack needs a value"; stack="$2"; shift 2 ;;
    --runs | --idle-runs | --warm | --only)
      [[ $# -ge 2 ]] || die "$1 needs a value"; run_args+=("$1" "$2"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
[[ "$profile" == release || "$profile" == dev ]] || die "--profile is release or dev, not '$profile'"
check_profile "$stack"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

# The binaries the template names (Metadata.BuildProperties.Binary), and the yardstick.
mapfile -t binaries < <(sed -n 's/^ *Binary: *\([A-Za-z0-9_-]*\) *$/\1/p' "$TEMPLATE")
((${#binaries[@]})) || die "no Binary in $TEMPLATE"
bin_args=()
for b in "${binaries[@]}" hello-lambda; do bin_args+=(--bin "$b"); done

# The stack runs the debug build of the gateway and the functions.
log "cargo build --workspace --bins (the local stack's debug binaries)"
cargo build --workspace --bins
if [[ "$profile" == release ]]; then
  build_label="release (opt-level s, fat LTO), x86_64"
  if [[ -z "$bin_dir" ]]; then
    log "cargo build --release ${bin_args[*]}"
    cargo build --release "${bin_args[@]}"
    bin_dir="$TARGET/release"
  fi
  # Built apart: one invocation with the functions would unify the SDK features this crate
  # turns on (the default HTTPS client) into the functions' binaries.
  log "cargo build --profile bench -p cold-start"
  cargo build --profile bench -p cold-start
  harness="$TARGET/release/cold-start"
else
  build_label="debug (NOT representative of Lambda: a try-out only)"
  [[ -n "$bin_dir" ]] || bin_dir="$TARGET/debug"
  harness="$TARGET/debug/cold-start"
fi

STATE="$(state_dir "$stack")"
cleanup() { "$ROOT/infra/local/down" --profile "$stack" || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh emulator: the review queue must serve this run's pre-sale and nothing else.
"$ROOT/infra/local/down" --profile "$stack"
"$ROOT/infra/local/up" --profile "$stack" --detach --no-build >/dev/null
"$harness" --stack "$STATE/stack.json" seed --out "$STATE/bench-seed.json"

gateway_pid="$(json_field "$STATE/stack.json" pids.gateway)"
if pid_is "$gateway_pid" local-gateway; then
  log "stopping the stack's gateway (pid $gateway_pid): only the emulator answers from here on"
  stop_pid "$gateway_pid" "gateway" 15
fi

log "measuring $bin_dir ($build_label)"
"$harness" --stack "$STATE/stack.json" run --seed "$STATE/bench-seed.json" --bin-dir "$bin_dir" \
  --build "$build_label" --log-dir "$STATE/bench-logs" "${run_args[@]+"${run_args[@]}"}"
echo "machine: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
