# bench/lib.sh: what the benchmark scripts share. Sourced, not run.
#
#   bench_binaries          SERVER and LOAD: the built release binaries (built here unless
#                           BIN_DIR points at built ones)
#   start_etcd DIR PORT     etcd on 127.0.0.1:PORT (peer PORT+1) with its data under DIR and its log
#                           in DIR.log; sets ETCD_PID and waits (10 s at most) until it is healthy
#   wait_ironplane OUTFILE  waits (30 s at most) for the server whose stdout is OUTFILE to print its
#                           URL and answer /readyz ok; sets PORT
#   op NAME JQ              reads an ironplane-load JSON report on stdin: JQ applied to operation NAME

bench_binaries() {
  BIN_DIR=${BIN_DIR:-}
  if [[ -z $BIN_DIR ]]; then
    cargo build --release -q -p ironplane -p ironplane-load
    BIN_DIR=${CARGO_TARGET_DIR:-target}/release
  fi
  SERVER=$BIN_DIR/ironplane
  LOAD=$BIN_DIR/ironplane-load
}

start_etcd() {
  local dir=$1 port=$2
  etcd --data-dir "$dir" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --max-request-bytes 2097152 >"$dir.log" 2>&1 &
  ETCD_PID=$!
  for _ in $(seq 1 500); do
    curl -s "http://127.0.0.1:$port/health" 2>/dev/null | grep -q true && return 0
    sleep 0.02
  done
  echo "etcd did not start (see $dir.log)" >&2
  return 1
}

wait_ironplane() {
  local out=$1
  for _ in $(seq 1 3000); do
    PORT=$(sed -n 's#.*https://127.0.0.1:\([0-9]*\).*#\1#p' "$out" 2>/dev/null)
    if [[ -n $PORT ]] && curl -sk "https://127.0.0.1:$PORT/readyz" 2>/dev/null | grep -qx ok; then
      return 0
    fi
    sleep 0.01
  done
  echo "ironplane did not become ready (see $out)" >&2
  return 1
}

op() { jq -r --arg op "$1" ".ops[] | select(.name == \$op) | $2"; }
