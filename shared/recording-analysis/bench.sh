#!/usr/bin/env bash
# Analysis throughput and peak memory, side by side with ffmpeg's silencedetect+astats, on
# one-hour files: 8 kHz mu-law mono WAV, 44.1 kHz 16-bit stereo WAV, 128 kbit/s MP3.
#
#   shared/recording-analysis/bench.sh [minutes]      (default 60; files cached in .local/bench)
#
# Installs ffmpeg and GNU time from Debian if missing. Not part of CI (release build, long run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
minutes="${1:-60}"
seconds=$((minutes * 60))
dir=".local/bench"
mkdir -p "$dir"

if ! command -v ffmpeg >/dev/null || [ ! -x /usr/bin/time ]; then
  echo "installing ffmpeg and time (apt-get)…" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg time >/dev/null
fi

# Speech-like source: pink noise gated into 2.4 s "turns" with quiet gaps, plus a tone.
source_filter="anoisesrc=d=${seconds}:c=pink:r=44100:a=0.4,volume='if(lt(mod(t\,4)\,2.4)\,1\,0.01)':eval=frame"
make() { # name, ffmpeg output args…
  local out="$dir/$1"; shift
  if [ ! -s "$out" ]; then
    echo "generating $out (${minutes} min)…" >&2
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$source_filter" "$@" "$out"
  fi
}
make "mulaw-8k-mono-${minutes}m.wav" -ar 8000 -ac 1 -c:a pcm_mulaw
make "pcm-44k-stereo-${minutes}m.wav" -ar 44100 -ac 2 -c:a pcm_s16le
make "mp3-128k-${minutes}m.mp3" -ar 44100 -ac 2 -c:a libmp3lame -b:a 128k

echo "building the bench (profile bench)…" >&2
bin=$(cargo bench -p recording-analysis --bench throughput --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="throughput": print(m["executable"])' | tail -n1)
[ -x "$bin" ] || { echo "bench binary not found" >&2; exit 1; }

measure() { # prints "cpu_seconds peak_kb" of the command
  local t; t=$(mktemp)
  /usr/bin/time -f "%U %S %M" -o "$t" "$@" >/dev/null 2>&1 || true
  awk '{printf "%.2f %d\n", $1 + $2, $3}' "$t"; rm -f "$t"
}

printf '\n%-28s %8s | %12s %9s | %12s %9s | %6s\n' file audio_s "ours a-s/cpu" "ours MB" "ffmpeg a-s/cpu" "ffmpeg MB" ratio
for f in "$dir"/mulaw-8k-mono-"${minutes}"m.wav "$dir"/pcm-44k-stereo-"${minutes}"m.wav "$dir"/mp3-128k-"${minutes}"m.mp3; do
  audio=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$f")
  read -r ours_cpu ours_kb < <(measure "$bin" "$f")
  read -r ff_cpu ff_kb < <(measure ffmpeg -hide_banner -nostats -i "$f" -af silencedetect,astats -f null -)
  python3 - "$f" "$audio" "$ours_cpu" "$ours_kb" "$ff_cpu" "$ff_kb" <<'PY'
import sys, os
f, audio, oc, ok, fc, fk = sys.argv[1:]
audio, oc, fc = float(audio), max(float(oc), 0.01), max(float(fc), 0.01)
ours, ff = audio / oc, audio / fc
print(f"{os.path.basename(f):<28} {audio:8.0f} | {ours:12.0f} {int(ok)/1024:9.1f} | {ff:14.0f} {int(fk)/1024:9.1f} | {ours/ff:5.1f}x")
PY
done
echo
echo "a-s/cpu: seconds of audio analyzed per CPU-second (user+sys); MB: peak RSS. Goal: >= 2x ffmpeg, <= 32 MB."
