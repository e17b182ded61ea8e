#!/usr/bin/env bash
# bench/ab-create.sh: server CPU per create and creates/s of two Ironplane builds, in interleaved
# rounds on fresh data directories, so that a change to the create path can be judged on a noisy
# machine (one run of each says little; the medians of several interleaved ones say more).
#
# Usage: bench/ab-create.sh OLD_BIN_DIR NEW_BIN_DIR
#   Each BIN_DIR holds a release `ironplane`; the load tool is NEW_BIN_DIR's `ironplane-load` for
#   both sides, so only the server differs. Each round starts each server, warms it with 3,000
#   creates, then measures `ironplane-load create -n $COUNT -c 32 --connections 32` and, when
#   h2load is installed, `h2load -n $COUNT -c 32 -m 1` POSTing a 1 KiB ConfigMap with a bearer
#   token. Server CPU comes from /proc/PID/stat before and after each measurement.
# Environment: ROUNDS (default 3), COUNT (default 20000), PORT (default 6610).
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 OLD_BIN_DIR NEW_BIN_DIR" >&2; exit 2; }
OLD=$1/ironplane
NEW=$2/ironplane
LOAD=$2/ironplane-load
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-20000}
PORT=${PORT:-6610}
TICKS=$(getconf CLK_TCK)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -c "import json; print(json.dumps({'apiVersion': 'v1', 'kind': 'ConfigMap',
  'metadata': {'generateName': 'h2-', 'namespace': 'default'}, 'data': {'payload': 'x' * 1024}}))" \
  >"$work/body.json"
echo 'ab-token,admin,admin,system:masters' >"$work/tokens.csv"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one LABEL BIN: one round against BIN; prints a line.
one() {
  local label=$1 bin=$2 dir pid t0 t1 report rate load_us h2_rate=- h2_us=-
  dir=$(mktemp -d "$work/run.XXXX")
  "$bin" serve --data-dir "$dir/data" --secure-port "$PORT" --token-auth-file "$work/tokens.csv" \
    >"$dir/out" 2>&1 &
  pid=$!
  for _ in $(seq 1 500); do
    curl -sk "https://127.0.0.1:$PORT/readyz" 2>/dev/null | grep -qx ok && break
    sleep 0.01
  done
  export KUBECONFIG=$dir/data/kubeconfig
  "$LOAD" create -n 3000 -c 32 --prefix warm- >/dev/null
  t0=$(cpu_ticks "$pid")
  report=$("$LOAD" create -n "$COUNT" -c 32 --connections 32 --prefix ab- --json)
  t1=$(cpu_ticks "$pid")
  rate=$(jq -r '.ops[] | select(.name == "create") | .throughput_per_s' <<<"$report")
  load_us=$(((t1 - t0) * 1000000 / TICKS / COUNT))
  if command -v h2load >/dev/null; then
    t0=$(cpu_ticks "$pid")
    h2_rate=$(h2load -n "$COUNT" -c 32 -m 1 -d "$work/body.json" \
      -H 'content-type: application/json' -H 'authorization: Bearer ab-token' \
      "https://127.0.0.1:$PORT/api/v1/namespaces/default/configmaps" 2>&1 |
      sed -n 's/.*finished in [0-9.]*s, \([0-9.]*\) req\/s.*/\1/p')
    t1=$(cpu_ticks "$pid")
    h2_us=$(((t1 - t0) * 1000000 / TICKS / COUNT))
  fi
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  printf '%-4s ironplane-load %6.0f/s, server %4s us/create | h2load %6s/s, server %4s us/create\n' \
    "$label" "$rate" "$load_us" "${h2_rate%.*}" "$h2_us"
}

for _ in $(seq 1 "$ROUNDS"); do
  one old "$OLD"
  one new "$NEW"
done
