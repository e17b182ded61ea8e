#!/usr/bin/env bash
# bench/dimensions.sh: how Ironplane's cost grows along each load dimension (clients, object size,
# object count, watchers), on its embedded store and on etcd, measured with ironplane-load.
#
#   bench/dimensions.sh                  # embedded store, then etcd (when installed)
#   BACKENDS=embedded bench/dimensions.sh
#   BIN_DIR=target/release OUT=/tmp/dims bench/dimensions.sh
#
# Every dimension starts a fresh server (and a fresh etcd) on a temporary data directory; every
# scenario is bounded in count and time. Prints one markdown table per dimension and backend, and
# keeps the JSON reports under $OUT. Loopback only; everything it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_binaries
OUT=${OUT:-$(mktemp -d)}
ETCD_PORT=${ETCD_PORT:-23995}
BACKENDS=${BACKENDS:-"embedded etcd"}
mkdir -p "$OUT"
for tool in curl jq etcd; do
  command -v "$tool" >/dev/null || { [[ $tool == etcd ]] && BACKENDS=embedded && continue; echo "needs $tool" >&2; exit 2; }
done

SERVER_PID=
ETCD_PID=
stop_all() {
  # etcd exits non-zero on SIGTERM: a status that must not end the script.
  if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [[ -n $ETCD_PID ]]; then kill "$ETCD_PID" 2>/dev/null; wait "$ETCD_PID" 2>/dev/null || true; fi
  SERVER_PID= ETCD_PID=
  return 0
}
trap stop_all EXIT

start() { # backend, name: a fresh server (and etcd) under $OUT/backend-name
  local backend=$1 dir=$OUT/$1-$2 flags=()
  rm -rf "$dir" && mkdir -p "$dir"
  if [[ $backend == etcd ]]; then
    start_etcd "$dir/etcd" "$ETCD_PORT"
    flags=(--etcd-servers "http://127.0.0.1:$ETCD_PORT")
  fi
  "$SERVER" serve --data-dir "$dir/data" --secure-port 0 "${flags[@]}" >"$dir/server.out" 2>"$dir/server.err" &
  SERVER_PID=$!
  wait_ironplane "$dir/server.out"
  export KUBECONFIG=$dir/data/kubeconfig
  PIDS=(--pid "$SERVER_PID")
  [[ -n $ETCD_PID ]] && PIDS+=(--pid "$ETCD_PID")
  DIR=$dir
}

load() { # report name, args...: run one scenario, keep its JSON, print it
  local name=$1
  shift
  "$LOAD" --no-progress --json "$@" "${PIDS[@]}" >"$DIR/$name.json"
  cat "$DIR/$name.json"
}
rss() { jq -r '[.processes[] | select(.pid != null) | "\((.rss_end / 1048576) | floor)"] | join(" + ")'; }
cores() { jq -r '[.processes[] | select(.pid != null) | "\(.cpu_seconds / .wall_seconds * 100 | round / 100)"] | join(" + ")'; }

for backend in $BACKENDS; do
  echo "## $backend, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  WHO="server"
  [[ $backend == etcd ]] && WHO="server + etcd"

  start "$backend" clients
  echo
  echo "Clients: create 1 KiB ConfigMaps (5,000 per row; 1,000 for one client)"
  echo
  echo "| clients | creates/s | p50 ms | p99 ms | cores ($WHO) |"
  echo "|---|---|---|---|---|"
  for clients in 1 8 32 64; do
    count=5000
    [[ $clients == 1 ]] && count=1000
    r=$(load "clients-$clients" create -n "$count" -c "$clients" --connections "$clients" --prefix "c$clients-")
    printf '| %s | %.0f | %.2f | %.2f | %s |\n' "$clients" "$(op create .throughput_per_s <<<"$r")" \
      "$(op create .latency_ms.p50 <<<"$r")" "$(op create .latency_ms.p99 <<<"$r")" "$(cores <<<"$r")"
  done
  stop_all

  start "$backend" size
  echo
  echo "Object size: create with 32 clients, then list them whole 5 times (each size in its own namespace)"
  echo
  echo "| data per object | objects | creates/s | create p99 ms | full list p50 ms | list MiB | RSS MiB after ($WHO) |"
  echo "|---|---|---|---|---|---|---|"
  for spec in 256:5000 1024:5000 16384:2000 262144:200; do
    size=${spec%%:*} count=${spec##*:}
    r=$(load "size-$size-create" create -n "$count" -c 32 --connections 32 --size "$size" --namespace "size-$size")
    l=$(load "size-$size-list" list -r 5 --namespace "size-$size")
    printf '| %s B | %s | %.0f | %.2f | %.1f | %.1f | %s |\n' "$size" "$count" \
      "$(op create .throughput_per_s <<<"$r")" "$(op create .latency_ms.p99 <<<"$r")" \
      "$(op list .latency_ms.p50 <<<"$l")" "$(op list '.bytes_received / 5 / 1048576' <<<"$l")" "$(rss <<<"$l")"
  done
  stop_all

  start "$backend" count
  echo
  echo "Object count: 1 KiB ConfigMaps in one namespace; full JSON lists (10 times) and lists by 500"
  echo
  echo "| objects | full list p50 ms | paginated pass ms | RSS MiB ($WHO) |"
  echo "|---|---|---|---|"
  have=0
  for total in 1000 10000 50000; do
    load "count-$total-create" create -n $((total - have)) -c 32 --connections 32 --prefix "n$total-" >/dev/null
    have=$total
    f=$(load "count-$total-list" list -r 10)
    p=$(load "count-$total-paged" list -r 10 --page-size 500)
    printf '| %s | %.1f | %.1f | %s |\n' "$total" "$(op list .latency_ms.p50 <<<"$f")" \
      "$(jq -r '.ops[] | select(.name == "list") | .elapsed_s * 100' <<<"$p")" "$(rss <<<"$f")"
  done
  stop_all

  start "$backend" watchers
  echo
  echo "Watchers: one collection, 100 updates/s of 1 KiB ConfigMaps for 10 s"
  echo
  echo "| watchers | delivery p50 ms | p99 ms | max ms | every event once, in order | cores ($WHO) |"
  echo "|---|---|---|---|---|---|"
  for watchers in 10 100 1000; do
    w=$(load "watchers-$watchers" watch -w "$watchers" --rate 100 --objects 10 --duration 10s)
    printf '| %s | %.2f | %.2f | %.2f | %s | %s |\n' "$watchers" "$(op delivery .latency_ms.p50 <<<"$w")" \
      "$(op delivery .latency_ms.p99 <<<"$w")" "$(op delivery .latency_ms.max <<<"$w")" \
      "$(jq -r .clean <<<"$w")" "$(cores <<<"$w")"
  done
  stop_all
  echo
done
echo "reports: $OUT" >&2
