#!/usr/bin/env bash
# Start `aob up` (embedded servers under a temp AOB_DATA_DIR), wait until it is ready, run the shell tests, stop it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
aob=${AOB_BIN:-$here/../../.venv/bin/aob}
data_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$data_dir/up.log"

export AOB_DATA_DIR="$data_dir" AOB_API_PORT="$port" AOB_ADMIN_KEY="aob_shell_$RANDOM$RANDOM"
export AOB_RATE_KEY_PER_MIN="${AOB_RATE_KEY_PER_MIN:-200}" AOB_LOG_JSON=false
"$aob" up >"$log" 2>&1 &
up_pid=$!
stop() {
  kill -TERM "$up_pid" 2>/dev/null || true
  wait "$up_pid" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap stop EXIT

for _ in $(seq 1 600); do
  grep -q 'aob up: ready' "$log" && break
  kill -0 "$up_pid" 2>/dev/null || { echo "aob up exited early:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
grep -q 'aob up: ready' "$log" || { echo "aob up: not ready in 60 s" >&2; cat "$log" >&2; exit 1; }
export AOB_API_URL="http://127.0.0.1:$port" AOB_API_KEY="$AOB_ADMIN_KEY"
for _ in $(seq 1 300); do
  curl -sf "$AOB_API_URL/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "$AOB_API_URL/readyz" >/dev/null || { echo "API not ready at $AOB_API_URL" >&2; cat "$log" >&2; exit 1; }

status=0
for script in "$here"/test_*.sh; do
  echo "== $(basename "$script")"
  "$script" || status=1
done
[[ $status == 0 ]] || { echo "--- aob up log:" >&2; tail -50 "$log" >&2; }
exit $status
