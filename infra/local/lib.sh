# shellcheck shell=bash disable=SC2034  # variables used by the scripts that source this
# Helpers shared by infra/local/{up,down,test,token}. Sourced, never run.
#
# Layout (all git-ignored, under the repository root):
#   .local/venv/                 Python tools (moto's server, cfn-lint, boto3), from requirements.txt
#   .local/<profile>/            one isolated stack: stack.json, resources.json, jwt_secret,
#                                moto.pid, gateway.pid, sunat.pid, sunat/ (the SUNAT stand-in's
#                                credentials and certificate), logs/

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$LOCAL_DIR/../.." && pwd)"
VENV="$ROOT/.local/venv"
VENV_PY="$VENV/bin/python"
REQUIREMENTS="$LOCAL_DIR/requirements.txt"
TEMPLATE="$ROOT/infra/template.yaml"
SEED="$LOCAL_DIR/seed.json"
REGION="us-east-1"  # fixed: the local stack never follows the caller's AWS_REGION
STACK_NAME="backoffice-local"

# Cargo resolves a relative CARGO_TARGET_DIR against the directory it runs in: pin it to the
# caller's directory before any script changes directory.
if [[ -n "${CARGO_TARGET_DIR:-}" && "${CARGO_TARGET_DIR}" != /* ]]; then
  CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
  export CARGO_TARGET_DIR
fi
BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/debug"

log() { printf '%s\n' "${LOG_PREFIX:-local}: $*" >&2; }
die() { log "error: $*"; exit 1; }

# A profile names a directory and nothing else.
check_profile() {
  [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$ ]] || die "bad profile name '$1' (letters, digits, '-', '_')"
}

state_dir() { printf '%s\n' "$ROOT/.local/$1"; }

# The system Python that creates the venv (3.11+: tomllib).
system_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3 python; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  die "python 3.11+ not found (set PYTHON=/path/to/python3)"
}

file_hash() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    "$(system_python)" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
  fi
}

# Run "$@" holding an exclusive lock on file $1 (serialises concurrent scripts).
with_lock() {
  local lock="$1"; shift
  mkdir -p "$(dirname "$lock")"
  if command -v flock >/dev/null 2>&1; then
    (
      flock 9
      "$@"
    ) 9>"$lock"
  else
    "$@"
  fi
}

# .local/venv with requirements.txt installed; reinstalls only when that file changes.
ensure_venv() { with_lock "$ROOT/.local/venv.lock" _ensure_venv; }
_ensure_venv() {
  local stamp="$VENV/.requirements.sha256" wanted
  wanted="$(file_hash "$REQUIREMENTS")"
  if [[ -x "$VENV_PY" ]] && ! "$VENV_PY" -c 'import sys' >/dev/null 2>&1; then
    log "the venv at .local/venv is broken (its Python moved?): recreating it"
    rm -rf "$VENV"
  fi
  if [[ ! -x "$VENV_PY" ]]; then
    log "creating .local/venv"
    "$(system_python)" -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  fi
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  log "installing infra/local/requirements.txt into .local/venv (quiet; log in .local/pip.log)"
  rm -f "$stamp"
  if ! "$VENV_PY" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS" >"$ROOT/.local/pip.log" 2>&1; then
    tail -n 30 "$ROOT/.local/pip.log" >&2
    die "pip install failed (full log: .local/pip.log)"
  fi
  printf '%s\n' "$wanted" >"$stamp"
}

# Debian packages the stack and the tests run, as "package:command": xmlsec1 (the SUNAT
# stand-in verifies and signs XML), pdftoppm and zbarimg (an invoice PDF's page and QR code),
# xmllint, chromium (the console's browser test, driven by Playwright from tests/browser/).
# Installs only the missing ones; `apt-get update` only when the install fails for want of
# package lists (a fresh machine has none).
DEBIAN_PACKAGES=(xmlsec1:xmlsec1 poppler-utils:pdftoppm zbar-tools:zbarimg libxml2-utils:xmllint chromium:chromium)
ensure_debian_packages() { with_lock "$ROOT/.local/apt.lock" _ensure_debian_packages; }
_ensure_debian_packages() {
  local entry missing=() sudo=() apt_log="$ROOT/.local/apt.log"
  for entry in "${DEBIAN_PACKAGES[@]}"; do
    command -v "${entry#*:}" >/dev/null 2>&1 || missing+=("${entry%%:*}")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null 2>&1 || die "missing: ${missing[*]} (no apt-get here: install them by hand)"
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "missing Debian packages ${missing[*]}: run as root, or install sudo"
    sudo=(sudo)
  fi
  local install=("${sudo[@]+"${sudo[@]}"}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}")
  log "installing Debian packages: ${missing[*]} (log in .local/apt.log)"
  if "${install[@]}" >"$apt_log" 2>&1; then return 0; fi
  if grep -qE 'Unable to locate package|has no installation candidate|404 +Not Found' "$apt_log"; then
    log "apt-get install found no package lists: apt-get update, then again"
    if "${sudo[@]+"${sudo[@]}"}" apt-get update >>"$apt_log" 2>&1 && "${install[@]}" >>"$apt_log" 2>&1; then
      return 0
    fi
  fi
  tail -n 20 "$apt_log" >&2
  die "apt-get install ${missing[*]} failed (full log: .local/apt.log)"
}

# A free TCP port on the loopback interface.
free_port() {
  "$VENV_PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_in_use() {
  "$VENV_PY" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)' "$1"
}

# HTTP status of a GET (000 when nothing answers).
http_status() {
  "$VENV_PY" - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# Is pid $1 alive and running a command line that contains $2? (guards against pid reuse)
pid_is() {
  local pid="$1" pattern="$2" cmdline
  pid_alive "$pid" || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  else
    cmdline="$(ps -o args= -p "$pid" 2>/dev/null || true)"
  fi
  [[ "$cmdline" == *"$pattern"* ]]
}

# Wait until $1 answers 200 (or $2 seconds pass); fail early if pid $3 dies.
wait_http_ok() {
  local url="$1" timeout="$2" pid="$3" deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    [[ "$(http_status "$url")" == 200 ]] && return 0
    pid_alive "$pid" || return 1
    sleep 0.3
  done
  log "no answer from $url after ${timeout}s"
  return 1
}

json_field() { # json_field FILE KEY[.SUB...]
  "$VENV_PY" - "$1" "$2" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value.get(key) if isinstance(value, dict) else None
print("" if value is None else value)
PY
}

show_log_tail() { # show_log_tail FILE [LINES]
  local file="$1" lines="${2:-40}"
  [[ -s "$file" ]] || return 0
  printf -- '----- last %s lines of %s -----\n' "$lines" "${file#"$ROOT"/}" >&2
  tail -n "$lines" "$file" >&2
}

show_all_logs() { # show_all_logs DIR
  local f
  for f in "$1"/*.log; do
    [[ -e "$f" ]] && show_log_tail "$f" 40
  done
  return 0
}

# Stop one process we started: TERM, up to $3 seconds, then KILL; then whatever is left of its
# process group (it was started with setsid: the function processes of the gateway).
stop_pid() {
  local pid="$1" what="$2" grace="${3:-10}" i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then
    log "$what (pid $pid) did not stop in ${grace}s: killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  else
    kill -TERM -- "-$pid" 2>/dev/null || true
  fi
}

# Stop the gateway, the SUNAT stand-in, then moto, of a profile; forget its stack.json. Quiet when
# nothing runs.
stop_profile() {
  local profile="$1" dir pid stopped=0
  dir="$(state_dir "$profile")"
  [[ -d "$dir" ]] || return 0
  local gateway_pid="" moto_pid="" sunat_pid=""
  [[ -f "$dir/gateway.pid" ]] && gateway_pid="$(cat "$dir/gateway.pid" 2>/dev/null || true)"
  [[ -f "$dir/moto.pid" ]] && moto_pid="$(cat "$dir/moto.pid" 2>/dev/null || true)"
  [[ -f "$dir/sunat.pid" ]] && sunat_pid="$(cat "$dir/sunat.pid" 2>/dev/null || true)"
  if [[ -f "$dir/stack.json" && -x "$VENV_PY" ]]; then
    pid="$(json_field "$dir/stack.json" pids.gateway 2>/dev/null || true)"; [[ -n "$pid" ]] && gateway_pid="$pid"
    pid="$(json_field "$dir/stack.json" pids.moto 2>/dev/null || true)"; [[ -n "$pid" ]] && moto_pid="$pid"
    pid="$(json_field "$dir/stack.json" pids.sunat 2>/dev/null || true)"; [[ -n "$pid" ]] && sunat_pid="$pid"
  fi
  if pid_is "$gateway_pid" local-gateway; then
    stop_pid "$gateway_pid" "gateway" 15
    stopped=1
  fi
  if pid_is "$sunat_pid" sunat/standin.py; then
    stop_pid "$sunat_pid" "the SUNAT stand-in" 5
    stopped=1
  fi
  if pid_is "$moto_pid" moto_server.py; then
    stop_pid "$moto_pid" "moto" 5
    stopped=1
  fi
  rm -f "$dir/stack.json" "$dir/gateway.pid" "$dir/moto.pid" "$dir/sunat.pid"
  if ((stopped)); then log "profile $profile stopped"; fi
  return 0
}

# True when the profile's stack.json exists, its processes live and the gateway answers.
stack_alive() {
  local dir="$1" gateway_pid moto_pid sunat_pid api
  [[ -f "$dir/stack.json" && -x "$VENV_PY" ]] || return 1
  gateway_pid="$(json_field "$dir/stack.json" pids.gateway 2>/dev/null)" || return 1
  moto_pid="$(json_field "$dir/stack.json" pids.moto 2>/dev/null)" || return 1
  sunat_pid="$(json_field "$dir/stack.json" pids.sunat 2>/dev/null)" || return 1
  api="$(json_field "$dir/stack.json" api_url 2>/dev/null)" || return 1
  pid_is "$gateway_pid" local-gateway && pid_is "$moto_pid" moto_server.py && pid_is "$sunat_pid" sunat/standin.py &&
    [[ "$(http_status "$api/_local/health")" == 200 ]]
}
