#!/usr/bin/env bash
# The ageing of a client with 100,000 invoices (issue 15, "Speed"): starts a private stack
# (profile bench-ageing), seeds the invoices as the issuing transaction writes them, reads one
# ageing from the store and through the API, and prints DynamoDB requests, read units, times
# and how it scales (tests/bench/ageing.rs). Debug build, like the tests: the emulator's time is
# not DynamoDB's; requests and read units are what carry over.
#
#   infra/bench/ageing.sh                       100,000 invoices, 25% still owed
#   AGEING_INVOICES=20000 AGEING_OPEN_PERCENT=100 infra/bench/ageing.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROFILE="bench-ageing"
cd "$ROOT"
cargo build --workspace --bins --examples
infra/local/up --profile "$PROFILE" --detach --no-build
trap 'infra/local/down --profile "$PROFILE" >/dev/null 2>&1 || true' EXIT
BACKOFFICE_STACK="$ROOT/.local/$PROFILE/stack.json" cargo run -q -p e2e-tests --example ageing
