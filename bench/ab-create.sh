#!/usr/bin/env bash
# bench/ab-create.sh: server CPU per create and creates/s of two Ironplane builds, judged on a
# noisy machine by running them at the same time: both servers start together on fresh data
# directories and each is driven by its own load process, so that whatever the machine does
# meanwhile (other tenants, frequency changes) weighs on both alike. Running one build after the
# other, the same build's CPU per create was seen to move by 30% from run to run; at the same
# time, an A/A comparison stays within about 4%.
#
# Usage: bench/ab-create.sh OLD_BIN_DIR NEW_BIN_DIR
#   Each BIN_DIR holds a release `ironplane`; the load tool is NEW_BIN_DIR's `ironplane-load` for
#   both sides, so only the servers differ. Each round starts both servers, warms each with 2,000
#   creates, then measures `ironplane-load create -n $COUNT -c 32` over 32 connections and over
#   one, and, when h2load is installed, `h2load -n $COUNT -c 32 -m 1` POSTing a 1 KiB ConfigMap
#   with a bearer token, against both servers at once. Server CPU comes from /proc/PID/stat.
#   Creates/s are each side's own while sharing the machine: compare them with each other only.
#   With WRITES=1, each round also runs update, patch and delete over the objects the first
#   create made (32 clients on 32 connections), both servers at once.
# Environment: ROUNDS (default 3), COUNT (default 20000), PORT (default 6610; uses PORT+1 too),
#   WRITES.
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
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
python3 -c "import json; print(json.dumps({'apiVersion': 'v1', 'kind': 'ConfigMap',
  'metadata': {'generateName': 'h2-', 'namespace': 'default'}, 'data': {'payload': 'x' * 1024}}))" \
  >"$work/body.json"
echo 'ab-token,admin,admin,system:masters' >"$work/tokens.csv"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
per_op() { echo $((($2 - $1) * 1000000 / TICKS / COUNT)); }

# start BIN PORT DIR: start a server, wait for /readyz, print its pid.
start() {
  "$1" serve --data-dir "$3/data" --secure-port "$2" --token-auth-file "$work/tokens.csv" \
    >"$3/out" 2>&1 &
  local pid=$!
  for _ in $(seq 1 500); do
    curl -sk "https://127.0.0.1:$2/readyz" 2>/dev/null | grep -qx ok && break
    sleep 0.01
  done
  echo "$pid"
}

# load DIR ARGS...: one ironplane-load create run against DIR's server; prints creates/s.
load() {
  local dir=$1
  shift
  KUBECONFIG=$dir/data/kubeconfig "$LOAD" create -n "$COUNT" -c 32 --no-progress --json "$@" |
    jq -r '.ops[] | select(.name == "create") | .throughput_per_s | floor'
}

# scenario DIR NAME ARGS...: one ironplane-load run of scenario NAME (update, patch, delete) over
# the first $COUNT objects against DIR's server; prints the rate of its last operation.
scenario() {
  local dir=$1 name=$2
  shift 2
  KUBECONFIG=$dir/data/kubeconfig "$LOAD" "$name" -n "$COUNT" -c 32 --connections 32 \
    --no-progress --json "$@" | jq -r '.ops[-1].throughput_per_s | floor'
}

h2() {
  h2load -n "$COUNT" -c 32 -m 1 -d "$work/body.json" -H 'content-type: application/json' \
    -H 'authorization: Bearer ab-token' "https://127.0.0.1:$1/api/v1/namespaces/default/configmaps" \
    2>&1 | sed -n 's/.*finished in [0-9.]*m\{0,1\}s, \([0-9.]*\) req\/s.*/\1/p'
}

# measure LABEL CMD_OLD CMD_NEW: run both at once, print ops/s and server CPU per operation.
measure() {
  local label=$1 a0 b0 a1 b1
  a0=$(cpu_ticks "$old_pid")
  b0=$(cpu_ticks "$new_pid")
  eval "$2" >"$work/rate.old" &
  local j1=$!
  eval "$3" >"$work/rate.new" &
  local j2=$!
  wait "$j1" "$j2"
  a1=$(cpu_ticks "$old_pid")
  b1=$(cpu_ticks "$new_pid")
  printf '  %-28s old %6s/s %4s us/op | new %6s/s %4s us/op\n' "$label" \
    "$(cut -d. -f1 "$work/rate.old")" "$(per_op "$a0" "$a1")" \
    "$(cut -d. -f1 "$work/rate.new")" "$(per_op "$b0" "$b1")"
}

for round in $(seq 1 "$ROUNDS"); do
  old_dir=$(mktemp -d "$work/old.XXXX")
  new_dir=$(mktemp -d "$work/new.XXXX")
  old_pid=$(start "$OLD" "$PORT" "$old_dir")
  new_pid=$(start "$NEW" "$((PORT + 1))" "$new_dir")
  pids=("$old_pid" "$new_pid")
  KUBECONFIG=$old_dir/data/kubeconfig "$LOAD" create -n 2000 --prefix warm- >/dev/null
  KUBECONFIG=$new_dir/data/kubeconfig "$LOAD" create -n 2000 --prefix warm- >/dev/null
  echo "round $round"
  measure "ironplane-load, 32 conns" "load $old_dir --connections 32 --prefix a-" \
    "load $new_dir --connections 32 --prefix a-"
  if [[ -n ${WRITES:-} ]]; then
    for name in update patch delete; do
      measure "$name, 32 conns" "scenario $old_dir $name --prefix a-" \
        "scenario $new_dir $name --prefix a-"
    done
  fi
  measure "ironplane-load, 1 conn" "load $old_dir --connections 1 --prefix b-" \
    "load $new_dir --connections 1 --prefix b-"
  if command -v h2load >/dev/null; then
    measure "h2load -c 32 -m 1" "h2 $PORT" "h2 $((PORT + 1))"
  fi
  kill "$old_pid" "$new_pid"
  wait "$old_pid" "$new_pid" 2>/dev/null || true
  pids=()
done
