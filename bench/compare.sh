#!/usr/bin/env bash
# bench/compare.sh: the same ironplane-load scenarios against Ironplane on its embedded store,
# Ironplane on etcd, and (when ANCHOR_DIR points at a ../shared/upstream build) upstream
# kube-apiserver on etcd, in one run on this machine, so that the figures can be compared.
#
#   ANCHOR_DIR=/path/to/upstream-out bench/compare.sh
#   KUBE_APISERVER_BIN=$ANCHOR_DIR/bin/kube-apiserver-ocp-1.32.6 ANCHOR_DIR=... bench/compare.sh
#   BIN_DIR=target/release SCENARIOS="create list" bench/compare.sh
#
# Prints one table per server (throughput, p50/p99 latency, RSS and CPU of the server and of etcd)
# and writes the JSON reports under $OUT (default: a temporary directory). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_binaries
SCENARIOS=${SCENARIOS:-"create list paged watch"}
OUT=${OUT:-$(mktemp -d)}
ETCD_PORT=${ETCD_PORT:-23991}
mkdir -p "$OUT"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n ${ANCHOR_DIR:-} && -x ${ANCHOR_DIR}/stop-upstream.sh ]]; then
    ANCHOR_DIR=$ANCHOR_DIR "$ANCHOR_DIR/stop-upstream.sh" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

start_ironplane() { # name, extra flags...
  local name=$1 dir
  shift
  dir=$OUT/$name
  mkdir -p "$dir"
  "$SERVER" serve --data-dir "$dir/data" --secure-port 0 "$@" >"$dir/server.out" 2>"$dir/server.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_ironplane "$dir/server.out"
  export KUBECONFIG=$dir/data/kubeconfig
}

run_scenarios() { # name, pids...
  local name=$1
  shift
  local pids=()
  for pid in "$@"; do pids+=(--pid "$pid"); done
  for scenario in $SCENARIOS; do
    case $scenario in
      create) args=(create -n 10000 -c 32 --connections 32 --size 1024) ;;
      list) args=(list -r 20) ;;
      paged) args=(list -r 20 --page-size 500) ;;
      table) args=(list -r 5 --table) ;;
      watch) args=(watch -w 1000 --rate 100 --objects 10 --duration 20s) ;;
      *) echo "unknown scenario $scenario" >&2; continue ;;
    esac
    "$LOAD" --no-progress --json "${args[@]}" "${pids[@]}" >"$OUT/$name-$scenario.json" || true
    summarize "$name" "$scenario" "$OUT/$name-$scenario.json"
  done
}

summarize() { # name, scenario, report
  jq -r --arg name "$1" --arg scenario "$2" '
    (.ops[] | select(.name == "create" or .name == "list" or .name == "delivery")) as $op
    | [$name, $scenario, $op.name, ($op.throughput_per_s | floor), $op.latency_ms.p50, $op.latency_ms.p99,
       ([.processes[] | select(.pid != null) | "\(.name) \((.rss_peak / 1048576) | floor)MiB \(.cpu_seconds)s"] | join(", "))]
    | @tsv' "$3"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf 'server\tscenario\top\tops/s\tp50 ms\tp99 ms\tpeak RSS and CPU of the server (and etcd)\n'

start_ironplane embedded
run_scenarios ironplane-embedded "$SERVER_PID"
kill "$SERVER_PID"

if command -v etcd >/dev/null; then
  start_etcd "$OUT/etcd-ironplane" "$ETCD_PORT"
  PIDS+=("$ETCD_PID")
  start_ironplane on-etcd --etcd-servers "http://127.0.0.1:$ETCD_PORT"
  run_scenarios ironplane-etcd "$SERVER_PID" "$ETCD_PID"
  kill "$SERVER_PID" "$ETCD_PID"
else
  echo "etcd not installed: skipping Ironplane on etcd" >&2
fi

if [[ -n ${ANCHOR_DIR:-} ]]; then
  ANCHOR_DIR=$ANCHOR_DIR "$ANCHOR_DIR/start-upstream.sh" >"$OUT/upstream.out" 2>&1
  export KUBECONFIG=$ANCHOR_DIR/run/kubeconfig
  run_scenarios upstream "$(cat "$ANCHOR_DIR/run/kube-apiserver.pid")" "$(cat "$ANCHOR_DIR/run/etcd.pid")"
fi
echo "reports: $OUT" >&2
