#!/usr/bin/env bash
# bench/compare.sh: the same ironplane-load scenarios against Ironplane on its embedded store,
# Ironplane on etcd, and (when ANCHOR_DIR points at a ../shared/upstream build) upstream
# kube-apiserver on etcd, in one run on this machine, so that the figures can be compared.
#
#   ANCHOR_DIR=/path/to/upstream-out bench/compare.sh
#   KUBE_APISERVER_BIN=$ANCHOR_DIR/bin/kube-apiserver-ocp-1.32.6 ANCHOR_DIR=... bench/compare.sh
#   BIN_DIR=target/release SCENARIOS="create list" bench/compare.sh
#
# Scenarios, in the order run (each later one works on the ConfigMaps `create` made):
#   create list paged table get update patch watch mixed delete: ironplane-load
#   h2create h2list h2page: Debian's h2load (when installed) with a bearer token: 10,000 POSTs
#     of a 1 KiB ConfigMap with generateName from 32 clients, 20 full lists, 100 pages of 500
# Prints one line per operation and server (throughput, p50/p99 latency, RSS and CPU of the server
# and of etcd; for h2load, its mean and max instead) and writes the reports under $OUT (default: a
# temporary directory). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_binaries
SCENARIOS=${SCENARIOS:-"create list paged get update patch watch mixed delete h2create h2list h2page"}
OUT=${OUT:-$(mktemp -d)}
ETCD_PORT=${ETCD_PORT:-23991}
mkdir -p "$OUT"
# Ironplane accepts this bearer token too, so that h2load can speak to both servers alike.
H2_TOKEN=compare-$RANDOM$RANDOM
echo "$H2_TOKEN,admin,admin,system:masters" >"$OUT/tokens.csv"
python3 -c "import json; print(json.dumps({'apiVersion': 'v1', 'kind': 'ConfigMap',
  'metadata': {'generateName': 'h2-'}, 'data': {'payload': 'x' * 1024}}))" >"$OUT/h2-body.json"

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
  "$SERVER" serve --data-dir "$dir/data" --secure-port 0 --token-auth-file "$OUT/tokens.csv" "$@" \
    >"$dir/server.out" 2>"$dir/server.err" &
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
      get | update | patch) args=("$scenario" -n 10000 -c 32 --connections 32) ;;
      delete) args=(delete -n 10000 -c 32 --connections 32) ;;
      watch) args=(watch -w 1000 --rate 100 --objects 10 --duration 20s) ;;
      mixed) args=(mixed --informers 20 --update-rate 100 --list-every 5s --duration 20s) ;;
      h2create | h2list | h2page)
        h2 "$name" "$scenario"
        continue
        ;;
      *) echo "unknown scenario $scenario" >&2; continue ;;
    esac
    "$LOAD" --no-progress --json "${args[@]}" "${pids[@]}" >"$OUT/$name-$scenario.json" || true
    summarize "$name" "$scenario" "$OUT/$name-$scenario.json"
  done
}

summarize() { # name, scenario, report
  jq -r --arg name "$1" --arg scenario "$2" '
    (.ops[] | select(.name != "informer page")) as $op
    | [$name, $scenario, $op.name, ($op.throughput_per_s | floor), $op.latency_ms.p50, $op.latency_ms.p99,
       ([.processes[] | select(.pid != null) | "\(.name) \((.rss_peak / 1048576) | floor)MiB \(.cpu_seconds)s"] | join(", "))]
    | @tsv' "$3"
}

# h2 NAME SCENARIO: one h2load run against the server of $KUBECONFIG, with the bearer token.
h2() {
  command -v h2load >/dev/null || { echo "h2load not installed: skipping $2" >&2; return 0; }
  local server path args
  server=$(sed -n 's/^ *server: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$KUBECONFIG" | head -1)
  path=/api/v1/namespaces/ironplane-load/configmaps
  case $2 in
    h2create) args=(-n 10000 -c 32 -m 1 -d "$OUT/h2-body.json" -H 'content-type: application/json') ;;
    h2list) args=(-n 20 -c 1 -m 1) ;;
    h2page) args=(-n 100 -c 1 -m 1) path="$path?limit=500" ;;
  esac
  h2load "${args[@]}" -H "authorization: Bearer $H2_TOKEN" "$server$path" >"$OUT/$1-$2.txt" 2>&1 || true
  awk -v name="$1" -v scenario="$2" '
    /finished in/ { rate = $4 + 0 }
    /status codes:/ { ok = $3 + 0 }
    /^time for request:/ { min = $4; max = $5; mean = $6 }
    END { printf "%s\t%s\th2load (%d 2xx)\t%d\tmean %s\tmax %s\t\n", name, scenario, ok, rate, mean, max }
  ' "$OUT/$1-$2.txt"
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
  H2_TOKEN=$(cat "$ANCHOR_DIR/run/pki/token")
  run_scenarios upstream "$(cat "$ANCHOR_DIR/run/kube-apiserver.pid")" "$(cat "$ANCHOR_DIR/run/etcd.pid")"
fi
echo "reports: $OUT" >&2
