#!/usr/bin/env bash
# compare-kubectl.sh — a dev tool: runs one broad scenario of kubectl commands against an API server
# and writes a transcript (command, exit code, stdout, stderr) with volatile values masked (uids,
# resourceVersions, timestamps, ages, the server port, generated name suffixes, tokens), so that
# the transcripts of Ironplane and of upstream kube-apiserver can be diffed line by line.
#
# Usage:
#   scripts/compare-kubectl.sh run TRANSCRIPT
#       Run the scenario against the (fresh) server in $KUBECONFIG; write TRANSCRIPT (masked) and
#       TRANSCRIPT.raw (unmasked).
#   scripts/compare-kubectl.sh compare [OUT_DIR]
#       Start a fresh Ironplane and a fresh upstream kube-apiserver + etcd, run the scenario against
#       each, stop both, and print `diff -u upstream.txt ironplane.txt` (exit 0 when identical).
#   scripts/compare-kubectl.sh mask < RAW > MASKED
#       Apply the masking alone (to re-mask a .raw transcript after changing the rules).
#
# Environment:
#   KUBECTL            kubectl for both sides (default /usr/lib/google-cloud-sdk/bin/kubectl.1.32:
#                      the /usr/bin/kubectl dispatcher would pick 1.28 for a 1.28 server)
#   IRONPLANE_BIN      the ironplane binary (default: `cargo build -p ironplane`, then
#                      debug/ironplane under $CARGO_TARGET_DIR or target/)
#   UPSTREAM_KUBECONFIG  use an already running, freshly started upstream instead of starting one
#   ANCHOR_DIR         folder with bin/kube-apiserver from ../shared/upstream/rebuild.sh
#                      (default /work/upstream-out); its run/ folder holds the upstream state
#   UPSTREAM_SCRIPTS   folder with start-upstream.sh and stop-upstream.sh (default $ANCHOR_DIR, else
#                      /work/shared/upstream)
#   KUBE_APISERVER_BIN, KUBE_APISERVER_PORT, ETCD_PORT  passed on to start-upstream.sh
#                      (KUBE_APISERVER_BIN=$ANCHOR_DIR/bin/kube-apiserver-ocp-1.32.6 compares with the
#                      1.32.6 OpenShift-fork build). start-upstream.sh first stops whatever an earlier
#                      start with the same ANCHOR_DIR left running: on a shared machine, use an
#                      ANCHOR_DIR of your own (holding a bin/ symlink) and another port.
#
# Upstream here runs without a controller-manager, as Ironplane does: namespaces stay Terminating
# (so `delete ns` uses --wait=false) and there is no default ServiceAccount.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
START_DIR=$PWD
KUBECTL=${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.32}

# ---------------------------------------------------------------------------------------------
# Masking

# Reads a raw transcript on stdin and writes it masked. Ages are masked only as whole
# whitespace-separated cells; runs of two or more spaces after a non-space are squeezed to three, so
# that column widths changed by masked cells do not show as differences (leading indentation stays).
mask() {
  sed -E \
    -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uid>/g' \
    -e 's/("?resourceVersion"?: ?)"[0-9]+"/\1"<rv>"/g' \
    -e 's/(resourceVersion=)[0-9]+/\1<rv>/g' \
    -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})/<time>/g' \
    -e 's/[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}/<date>/g' \
    -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)? [+-][0-9]{4}( [A-Z]+)?/<date>/g' \
    -e 's#/tmp/(LIVE|MERGED)-[0-9]+#/tmp/\1-<n>#g' \
    -e 's/(127\.0\.0\.1|localhost|\[::1\]):[0-9]+/\1:<port>/g' \
    -e 's/\b(gen-|genns-)[a-z0-9]{5}\b/\1<suffix>/g' \
    -e 's/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/<jwt>/g' \
    -e 's/("continue": ?")[^"]+"/\1<continue>"/g' \
    -e 's/("remainingItemCount": ?)[0-9]+/\1<n>/g' \
    -e ':age' \
    -e 's/(^|[[:space:]])([0-9]+[smhdy]){1,2}([[:space:]]|$)/\1<age>\3/' \
    -e 't age' \
    -e 's/([^ ])  +/\1   /g'
}

# ---------------------------------------------------------------------------------------------
# The transcript

RAW=/dev/null
STEP=0

k() { "$KUBECTL" "$@"; }

# Records one entry: the command line as shown, its exit code, stdout and stderr.
record() { # shown-command rc stdout-file stderr-file
  STEP=$((STEP + 1))
  {
    printf '### %03d $ %s\n' "$STEP" "$1"
    printf '[exit %s]\n' "$2"
    if [[ -s $3 ]]; then printf -- '--- stdout\n'; cat "$3"; [[ $(tail -c1 "$3") == "" ]] || printf '\n[no newline at end]\n'; fi
    if [[ -s $4 ]]; then printf -- '--- stderr\n'; cat "$4"; [[ $(tail -c1 "$4") == "" ]] || printf '\n[no newline at end]\n'; fi
    printf '\n'
  } >>"$RAW"
}

# run kubectl ARGS...: runs kubectl with a 60 s limit and records it.
run() {
  local shown="kubectl" a rc
  for a in "$@"; do shown+=" $(printf '%q' "$a")"; done
  timeout 60 "$KUBECTL" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null
  rc=$?
  record "$shown" "$rc" "$WORK/out" "$WORK/err"
}

# run_sh 'shell text': runs a shell pipeline (with `k` for kubectl) and records it.
run_sh() {
  local rc
  timeout 60 bash -c "k() { \"\$KUBECTL\" \"\$@\"; }; $1" >"$WORK/out" 2>"$WORK/err" </dev/null
  rc=$?
  record "$1" "$rc" "$WORK/out" "$WORK/err"
}

# Waits until FILE has at least N lines and then stops growing for half a second (10 s at most).
settle() { # file min-lines
  local i size last=-1 stable=0
  for i in $(seq 1 200); do
    size=$(wc -c <"$1")
    if (($(wc -l <"$1") >= $2)) && ((size == last)); then
      stable=$((stable + 1))
      ((stable >= 10)) && return 0
    else
      stable=0
    fi
    last=$size
    sleep 0.05
  done
}

WATCH_PID=
WATCH_SHOWN=
# watch_start MIN_LINES ARGS...: starts kubectl ARGS in the background and waits until it printed
# MIN_LINES lines (its initial state) and went quiet.
watch_start() {
  local min=$1 a
  shift
  WATCH_SHOWN="kubectl"
  for a in "$@"; do WATCH_SHOWN+=" $(printf '%q' "$a")"; done
  : >"$WORK/watch.out"
  : >"$WORK/watch.err"
  "$KUBECTL" "$@" >"$WORK/watch.out" 2>"$WORK/watch.err" </dev/null &
  WATCH_PID=$!
  settle "$WORK/watch.out" "$min"
}

# watch_stop MIN_LINES: waits until the watcher printed MIN_LINES lines in all and went quiet,
# stops it, and records what it printed.
watch_stop() {
  settle "$WORK/watch.out" "$1"
  if kill -0 "$WATCH_PID" 2>/dev/null; then
    kill -TERM "$WATCH_PID" 2>/dev/null
    wait "$WATCH_PID" 2>/dev/null
    record "$WATCH_SHOWN  # (watch, stopped)" "-" "$WORK/watch.out" "$WORK/watch.err"
  else
    wait "$WATCH_PID" 2>/dev/null
    record "$WATCH_SHOWN  # (watch, ended by itself)" "$?" "$WORK/watch.out" "$WORK/watch.err"
  fi
}

section() { printf '######## %s\n\n' "$1" >>"$RAW"; }

write_fixtures() {
  cd "$WORK" || exit 1
  cat >app.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: app
  namespace: cmp
  labels:
    tier: web
data:
  k: v
EOF
  sed 's/k: v$/k: v2/' app.yaml >app-v2.yaml
  cat >multi.yaml <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: cmp-multi
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
  namespace: cmp-multi
data:
  a: "1"
---
apiVersion: v1
kind: Secret
metadata:
  name: two
  namespace: cmp-multi
stringData:
  password: hunter2
EOF
  cat >gen.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  generateName: gen-
  namespace: cmp
data:
  a: b
EOF
  cat >immutable.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: frozen
  namespace: cmp
immutable: true
data:
  a: "1"
EOF
  cat >finalizer.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: held
  namespace: cmp
  finalizers:
  - example.com/hold
data:
  a: "1"
EOF
  cat >badkey.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: badkey
  namespace: cmp
data:
  "bad key": v
  "..": w
EOF
  cat >badlabels.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: badlabels
  namespace: cmp
  labels:
    "bad key": "x"
    good: "bad value!"
  annotations:
    "Bad/Annotation/Key": "x"
EOF
  cat >wrongns.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: wrongns
  namespace: elsewhere
EOF
  cat >unknownfield.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: unknownfield
  namespace: cmp
  bogus: 1
data:
  a: "1"
spec:
  x: 1
EOF
  cat >wrongtype.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: wrongtype
  namespace: cmp
data:
  a: 1
EOF
  cat >tls-bad.yaml <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: tls-bad
  namespace: cmp
type: kubernetes.io/tls
data:
  tls.crt: ""
EOF
  cat >basic.yaml <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: basic
  namespace: cmp
type: kubernetes.io/basic-auth
stringData:
  username: admin
  password: secret
EOF
  cat >basic-bad.yaml <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: basic-bad
  namespace: cmp
type: kubernetes.io/basic-auth
stringData:
  other: x
EOF
  cat >sa-token.yaml <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: robot-token
  namespace: cmp
  annotations:
    kubernetes.io/service-account.name: robot
type: kubernetes.io/service-account-token
EOF
  cat >sa-token-bad.yaml <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: robot-token-bad
  namespace: cmp
type: kubernetes.io/service-account-token
EOF
  cat >event.yaml <<'EOF'
apiVersion: v1
kind: Event
metadata:
  name: c1.fixed
  namespace: cmp
involvedObject:
  apiVersion: v1
  kind: ConfigMap
  name: one
  namespace: cmp
reason: Testing
message: a fixed event about c1
type: Normal
source:
  component: compare-kubectl
firstTimestamp: "2020-01-02T03:04:05Z"
lastTimestamp: "2020-01-02T03:04:05Z"
count: 3
EOF
  cat >event-warning.yaml <<'EOF'
apiVersion: v1
kind: Event
metadata:
  name: c1.warning
  namespace: cmp
involvedObject:
  apiVersion: v1
  kind: ConfigMap
  name: one
  namespace: cmp
reason: Broken
message: a warning about c1
type: Warning
source:
  component: compare-kubectl
  host: node-1
firstTimestamp: "2021-01-02T03:04:05Z"
lastTimestamp: "2021-01-02T03:04:05Z"
count: 1
EOF
  cat >event-bad.yaml <<'EOF'
apiVersion: v1
kind: Event
metadata:
  name: bad.event
  namespace: cmp
involvedObject:
  kind: ConfigMap
  name: c1
  namespace: other
reason: Testing
type: Odd
EOF
  cat >raw-cm.json <<'EOF'
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"rawcm"},"data":{"x":"y"}}
EOF
  cat >ssa.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
data:
  owned: "yes"
EOF
  printf 'line one\nline two\n' >file.txt
  printf 'KEY1=value1\n# comment\nKEY2=value two\n' >vars.env
  head -c 1100000 /dev/zero | tr '\0' 'a' >big.txt
  head -c 3300000 /dev/zero | tr '\0' 'b' >huge.txt
  mkdir -p dir
  printf 'alpha\n' >dir/a.txt
  printf 'beta\n' >dir/b.txt
}

# ---------------------------------------------------------------------------------------------
# The scenario

scenario() {
  section "version and discovery (differences here are expected between 1.28 and 1.32 servers)"
  run_sh 'k version -o json | jq -c "{major: .serverVersion.major, minor: .serverVersion.minor}"'
  run api-resources
  run api-resources --namespaced=true -o wide
  run api-versions
  run_sh 'k get --raw /api | jq -c ".kind, .versions"'
  run cluster-info

  section "namespaces"
  run get ns
  run get ns -o wide
  run get namespaces -o name
  run get ns default -o yaml
  run get ns kube-system --show-labels
  run create ns cmp
  run create ns cmp
  run create ns Bad_NS
  run get ns cmp -o json
  run describe ns cmp
  run get ns -l kubernetes.io/metadata.name=cmp
  run get ns --field-selector metadata.name=cmp
  run get ns --field-selector status.phase=Active -o name
  run delete ns default --wait=false
  run delete ns kube-system --wait=false
  run delete ns kube-public --wait=false
  run get ns nope
  run label ns cmp team=blue

  section "configmaps: create, get, output formats"
  run -n cmp create cm c1 --from-literal=a=1 --from-literal=b=2
  run -n cmp get cm c1 -o yaml
  run -n cmp get cm c1 -o json
  run -n cmp get cm c1 -o wide
  run -n cmp get cm c1 -o name
  run -n cmp get configmap/c1 -o 'jsonpath={.metadata.name}{" "}{.data}{"\n"}'
  run -n cmp get cm c1 -o 'custom-columns=NAME:.metadata.name,NS:.metadata.namespace,A:.data.a'
  run -n cmp get cm c1 -o go-template='{{.metadata.name}} {{len .data}}{{"\n"}}'
  # describe prints data in Go map order (random): describe objects with one key only.
  run -n cmp create cm one --from-literal=only=value
  run -n cmp describe cm one
  run -n cmp create cm from-file --from-file=file.txt --from-file=renamed=file.txt
  run -n cmp get cm from-file -o yaml
  run -n cmp create cm from-dir --from-file=dir
  run -n cmp get cm from-dir -o 'jsonpath={.data}{"\n"}'
  run -n cmp create cm from-env --from-env-file=vars.env
  run -n cmp get cm from-env -o yaml
  run -n cmp create -f gen.yaml
  run -n cmp get cm -o name
  run_sh 'for c in $(k -n cmp get cm -o name | grep gen-); do k -n cmp get "$c" -o jsonpath="{.metadata.generateName} {.metadata.name}{\"\n\"}"; done'
  run -n cmp create cm c1
  run -n cmp create cm Bad_Name
  run -n cmp create cm "$(printf 'n%.0s' $(seq 1 254))"
  run -n nope create cm c1
  run -n nope get cm
  run -n nope get cm c1
  run -n cmp get cm nope
  run -n cmp get cm nope --ignore-not-found
  run -n cmp delete cm nope
  run -n cmp delete cm nope --ignore-not-found
  run -n cmp describe cm nope
  run create -f badkey.yaml
  run create -f badlabels.yaml
  run -n cmp create -f wrongns.yaml
  run create -f unknownfield.yaml
  run create -f unknownfield.yaml --validate=false
  run -n cmp get cm unknownfield -o yaml
  run create -f wrongtype.yaml
  run -n cmp create cm big --from-file=big.txt
  run -n cmp create cm huge --from-file=huge.txt
  run create --raw /api/v1/namespaces/cmp/configmaps -f raw-cm.json
  run create --raw /api/v1/namespaces/cmp/configmaps -f raw-cm.json
  run_sh 'k get --raw /api/v1/namespaces/cmp/configmaps/rawcm >raw.json; jq -c "del(.metadata.managedFields)" raw.json; printf "ends with: %q\n" "$(tail -c1 raw.json | od -An -c | tr -d " ")"'
  # Pretty JSON as the server writes it, without the managedFields block (and trailing commas).
  run_sh 'k get --raw "/api/v1/namespaces/cmp/configmaps/rawcm?pretty=true" | awk "/\"managedFields\": \\[/ {skip = 1; next} skip && /^    \\]/ {skip = 0; next} !skip" | sed "s/,\$//"'
  run get --raw /api/v1/namespaces/cmp/configmaps/nope
  run get --raw /api/v1/namespaces/nope/configmaps

  section "apply, label, annotate"
  run apply -f app.yaml
  run apply -f app.yaml
  run apply -f app-v2.yaml
  run -n cmp get cm app -o yaml
  run apply -f app-v2.yaml --dry-run=server
  run diff -f app.yaml
  run diff -f app-v2.yaml
  run_sh 'k -n cmp create cm noannot --dry-run=client -o yaml | k apply -f -'
  run -n cmp create cm noannot
  run_sh 'k -n cmp create cm noannot --dry-run=client -o yaml --from-literal=z=1 | k apply -f -'
  run -n cmp get cm noannot -o yaml
  run -n cmp label cm app env=prod
  run -n cmp label cm app env=dev
  run -n cmp label cm app env=dev --overwrite
  run -n cmp label cm app env-
  run -n cmp label cm app 'bad key=1'
  run -n cmp label cm app too-long=$(printf 'x%.0s' $(seq 1 64))
  run -n cmp annotate cm app note=hello
  run -n cmp annotate cm app note=again
  run -n cmp annotate cm app note=again --overwrite
  run -n cmp annotate cm app note-
  run -n cmp label cm --all batch=one
  run -n cmp get cm --show-labels
  run -n cmp label cm app env=dry --dry-run=server
  run -n cmp get cm app --show-labels
  run apply -f multi.yaml
  run apply -f multi.yaml
  run -n cmp-multi get cm,secret
  run -n cmp-multi get secret two -o yaml
  run delete -f multi.yaml --wait=false
  run -n cmp get cm c1 -o yaml --show-managed-fields

  section "selectors and chunking"
  run -n cmp get cm -l tier=web
  run -n cmp get cm -l 'tier!=web'
  run -n cmp get cm -l 'tier in (web,db)'
  run -n cmp get cm -l 'tier notin (web)'
  run -n cmp get cm -l tier
  run -n cmp get cm -l '!tier'
  run -n cmp get cm -l 'tier==web,batch=one'
  run -n cmp get cm -l 'a b'
  run -n cmp get cm -l tier=nothing
  run -n cmp get cm --field-selector metadata.name=c1
  run -n cmp get cm --field-selector metadata.name==c1
  run -n cmp get cm --field-selector metadata.name!=c1
  run -n cmp get cm --field-selector metadata.namespace=cmp -o name
  run get cm -A --field-selector metadata.namespace=cmp -o name
  run -n cmp get cm --field-selector data.a=1
  run -n cmp get cm --field-selector 'metadata.name'
  run -n cmp get cm --field-selector metadata.name=c1 -l tier=web
  run_sh 'k get --raw "/api/v1/namespaces/cmp/configmaps?labelSelector=a%20b"'
  run_sh 'k get --raw "/api/v1/namespaces/cmp/configmaps?fieldSelector=metadata.name%3D%3Dx%3D%3Dy"'
  run_sh 'k get --raw "/api/v1/namespaces/cmp/configmaps?labelSelector=tier%3Dweb" | jq -c ".kind, .apiVersion, [.items[].metadata.name]"'
  run -n cmp get cm --chunk-size=1
  run -n cmp get cm --chunk-size=2 -o name
  run get cm -A --chunk-size=1 -o name
  run_sh 'k get --raw "/api/v1/namespaces/cmp/configmaps?limit=2" | jq -c "{kind, continue: (.metadata.continue | length > 0), remaining: .metadata.remainingItemCount, names: [.items[].metadata.name]}"'
  run_sh 'k get --raw "/api/v1/namespaces/cmp/configmaps?limit=2&continue=bogus"'
  run -n cmp get cm --sort-by=.metadata.name -o name
  run -n cmp get cm -o yaml -l tier=web

  section "dry run"
  run -n cmp create cm dry --dry-run=server
  run -n cmp create cm dry --dry-run=server -o yaml
  run -n cmp get cm dry
  run -n cmp delete cm c1 --dry-run=server
  run -n cmp get cm c1 -o name
  run -n cmp create secret generic drysecret --from-literal=a=b --dry-run=server -o yaml
  run create ns dryns --dry-run=server
  run get ns dryns
  run -n cmp patch cm c1 -p '{"data":{"dry":"run"}}' --dry-run=server
  run -n cmp get cm c1 -o 'jsonpath={.data}{"\n"}'

  section "patch, replace"
  # Remember where this section starts, to replay it later with a watch from this resourceVersion.
  k get --raw /api/v1/namespaces/cmp/configmaps | jq -r .metadata.resourceVersion >"$WORK/rv"
  run -n cmp patch cm c1 --type=merge -p '{"data":{"c":"3"}}'
  run -n cmp patch cm c1 --type=merge -p '{"data":{"c":"3"}}'
  run -n cmp patch cm c1 --type=json -p '[{"op":"remove","path":"/data/a"}]'
  run -n cmp patch cm c1 --type=json -p '[{"op":"test","path":"/data/b","value":"nope"}]'
  run -n cmp patch cm c1 --type=json -p '[{"op":"remove","path":"/data/missing"}]'
  run -n cmp patch cm c1 --type=strategic -p '{"data":{"d":"4"},"metadata":{"labels":{"patched":"yes"}}}'
  run -n cmp patch cm c1 -p '{"data":{"b":null}}'
  run -n cmp patch cm c1 -p '{bad'
  run -n cmp patch cm c1 -p '{"metadata":{"labels":{"bad key":"x"}}}'
  run -n cmp patch cm c1 -p '{"metadata":{"name":"other"}}'
  run -n cmp patch cm nope -p '{"data":{"x":"y"}}'
  run -n cmp get cm c1 -o yaml
  run_sh 'k -n cmp get cm c1 -o yaml | sed "s/  c: \"3\"/  c: \"30\"/" | k replace -f -'
  run_sh 'k -n cmp get cm c1 -o yaml > stale.yaml; k -n cmp label cm c1 bump=1 >/dev/null; k replace -f stale.yaml'
  run_sh 'k -n cmp get cm c1 -o json | jq ".metadata.uid = \"00000000-0000-0000-0000-000000000000\"" | k replace -f -'
  run_sh 'k -n cmp get cm c1 -o json | jq "del(.metadata.resourceVersion) | .data.e = \"5\"" | k replace -f -'
  run_sh 'k -n cmp get cm c1 -o yaml | k replace --force -f -'
  run -n cmp get cm c1 -o 'jsonpath={.data}{"\n"}'
  run -n cmp replace -f app.yaml
  run_sh 'sed "s/name: app/name: missing/" app.yaml | k replace -f -'
  run apply -f immutable.yaml
  run -n cmp patch cm frozen -p '{"data":{"a":"2"}}'
  run -n cmp patch cm frozen -p '{"immutable":false}'
  run -n cmp patch cm frozen -p '{"metadata":{"labels":{"ok":"yes"}}}'

  section "secrets and serviceaccounts"
  run -n cmp create secret generic s1 --from-literal=user=admin
  run -n cmp create secret generic s1
  run -n cmp get secret s1 -o yaml
  run -n cmp describe secret s1
  run -n cmp create secret docker-registry reg --docker-server=registry.example.com --docker-username=u --docker-password=p --docker-email=u@example.com
  run -n cmp get secret reg -o yaml
  run -n cmp create secret generic from-file --from-file=file.txt --type=example.com/custom
  run create -f tls-bad.yaml
  run create -f basic.yaml
  run create -f basic-bad.yaml
  run -n cmp get secret basic -o yaml
  run -n cmp create secret generic 'bad key' --from-literal=a=b
  run -n cmp create secret generic badkey --from-literal='bad key=b'
  run -n cmp get secrets
  run -n cmp get secrets -o wide
  run -n cmp get secrets --field-selector type=Opaque
  run -n cmp get secrets --field-selector type=kubernetes.io/dockerconfigjson -o name
  run -n cmp get secrets --field-selector data.user=x
  run -n cmp patch secret s1 --type=merge -p '{"type":"kubernetes.io/tls"}'
  run -n cmp patch secret s1 -p '{"stringData":{"extra":"x"}}'
  run -n cmp get secret s1 -o 'jsonpath={.data}{"\n"}'
  run -n cmp create sa robot
  run -n cmp create sa robot
  run -n cmp create sa Bad_SA
  run -n cmp get sa robot -o yaml
  run -n cmp describe sa robot
  run create -f sa-token.yaml
  run create -f sa-token-bad.yaml
  run -n cmp get secret robot-token -o yaml
  run -n cmp get sa
  run get sa -A
  run get secrets,sa,cm -A
  run -n cmp get secrets,sa,cm
  run -n cmp get cm,secret -o name

  section "events"
  run create -f event.yaml
  run create -f event-warning.yaml
  run create -f event-bad.yaml
  run -n cmp get events
  run -n cmp get ev -o wide
  run -n cmp events
  run -n cmp events --for configmap/one
  run -n cmp events --types=Warning
  run -n cmp get events --field-selector involvedObject.kind=ConfigMap,reason=Testing -o name
  run -n cmp get events --field-selector type=Warning -o name
  run -n cmp get events --field-selector source=compare-kubectl -o name
  run -n cmp get events --field-selector involvedObject.name=one,involvedObject.namespace=cmp -o name
  run -n cmp get events --field-selector reportingComponent= -o name
  run -n cmp get events --field-selector bogus=1
  run -n cmp get event c1.fixed -o yaml
  run -n cmp describe cm one
  run get events -A -o name

  section "watch"
  watch_start 2 -n cmp get cm c1 -w
  run -n cmp label cm c1 watched=yes
  run -n cmp patch cm c1 -p '{"data":{"w":"1"}}'
  watch_stop 4
  watch_start 2 -n cmp get cm -l tier=web -w --output-watch-events
  run -n cmp create cm w1 --dry-run=client -o yaml
  run_sh 'k -n cmp create cm w1 --dry-run=client -o yaml | k label -f - --local tier=web -o yaml | k create -f -'
  run -n cmp label cm w1 tier-
  run -n cmp label cm c1 tier=web
  run -n cmp delete cm c1
  watch_stop 6
  watch_start 1 -n cmp get cm -w --watch-only
  run -n cmp create cm w2
  run -n cmp delete cm w2
  watch_stop 3
  watch_start 1 -n cmp get cm app -w -o json
  run -n cmp annotate cm app watched=json
  watch_stop 2
  run -n cmp get cm app -o name
  run_sh 'k get --raw "/api/v1/namespaces/cmp/configmaps?watch=true&timeoutSeconds=1&labelSelector=tier%3Dweb" | jq -c "{type, name: .object.metadata.name}"'
  run_sh 'k get --raw "/api/v1/namespaces/cmp/configmaps?watch=true&resourceVersion=$(cat rv)&timeoutSeconds=2" | jq -c "del(.object.metadata.managedFields)"'
  run_sh '(sleep 1; k -n cmp create cm waited --from-literal=ready=yes >/dev/null) & k -n cmp wait --for=jsonpath="{.data.ready}"=yes cm/waited --timeout=20s; wait'
  run_sh '(sleep 1; k -n cmp delete cm waited >/dev/null) & k -n cmp wait --for=delete cm/waited --timeout=20s; wait'
  run -n cmp wait --for=delete cm/nope --timeout=2s
  run -n cmp wait --for=condition=Ready cm/app --timeout=1s

  section "deletion"
  run apply -f finalizer.yaml
  run -n cmp delete cm held --wait=false
  run -n cmp get cm held -o yaml
  run -n cmp delete cm held --wait=false
  run -n cmp patch cm held --type=merge -p '{"data":{"late":"x"}}'
  run -n cmp patch cm held --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'
  run -n cmp get cm held
  run -n cmp delete cm app --grace-period=0 --force
  # Foreground and orphan deletion leave a finalizer for the garbage collector, which does not
  # run here (no controller-manager): do not wait, look, then remove the finalizer by hand.
  run -n cmp delete cm from-file --cascade=foreground --wait=false
  run -n cmp delete cm from-dir --cascade=orphan --wait=false
  run -n cmp get cm from-file from-dir -o yaml
  run -n cmp patch cm from-file --type=merge -p '{"metadata":{"finalizers":null}}'
  run -n cmp patch cm from-dir --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'
  run -n cmp get cm from-file from-dir
  run -n cmp delete cm -l tier=web
  run_sh 'k delete --raw "/api/v1/namespaces/cmp/configmaps?labelSelector=batch%3Done" | jq -c "{kind, names: [.items[].metadata.name]}"'
  run -n cmp delete -f immutable.yaml
  run -n cmp delete cm --all
  run -n cmp get cm
  run -n cmp delete secrets,sa --all
  run -n cmp delete events --all
  run -n cmp get all
  run delete ns cmp --wait=false
  run get ns cmp
  run get ns cmp -o yaml
  run describe ns cmp
  run -n cmp create cm late
  run -n cmp get cm
  run delete ns cmp --wait=false
  run delete ns cmp-multi --wait=false
  run get ns

  section "beyond this issue (other groups and subresources; differences expected for now)"
  run create ns extra
  run -n extra create sa bot
  run -n extra create token bot --duration=10m
  run auth can-i create configmaps
  run auth whoami
  run explain configmap.immutable
  run explain secret.type
  run -n extra get all
  run get --raw /apis/events.k8s.io/v1
  run -n extra apply -f ssa.yaml --server-side
  run -n extra apply -f ssa.yaml --server-side
  run -n extra get cm ssa -o yaml --show-managed-fields
  run delete ns extra --wait=false
}

# ---------------------------------------------------------------------------------------------
# Modes

# run_transcript TRANSCRIPT: the scenario against $KUBECONFIG.
run_transcript() {
  local out=$1
  : "${KUBECONFIG:?set KUBECONFIG to the server to run against}"
  [[ -x $KUBECTL ]] || { echo "no kubectl at $KUBECTL" >&2; exit 1; }
  WORK=$(mktemp -d)
  KUBECACHEDIR=$WORK/cache
  HOME_BEFORE=${HOME:-}
  export KUBECTL KUBECACHEDIR
  export HOME=$WORK/home
  mkdir -p "$HOME"
  unset KUBECTL_EXTERNAL_DIFF
  RAW=$out.raw
  : >"$RAW"
  write_fixtures
  scenario
  [[ -n $WATCH_PID ]] && kill "$WATCH_PID" 2>/dev/null
  mask <"$RAW" >"$out"
  export HOME=$HOME_BEFORE
  cd "$START_DIR" || exit 1
  rm -rf "$WORK"
  echo "wrote $out ($STEP commands)"
}

IRONPLANE_PID=
stop_ironplane() {
  [[ -n $IRONPLANE_PID ]] || return 0
  kill -TERM "$IRONPLANE_PID" 2>/dev/null
  local i
  for i in $(seq 1 100); do kill -0 "$IRONPLANE_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$IRONPLANE_PID" 2>/dev/null && { echo "ironplane did not stop on SIGTERM; killing it" >&2; kill -KILL "$IRONPLANE_PID"; }
  wait "$IRONPLANE_PID" 2>/dev/null
  echo "ironplane exited with status $?"
  IRONPLANE_PID=
}

compare() {
  local dir=${1:-$(mktemp -d)}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local bin=${IRONPLANE_BIN:-}
  if [[ -z $bin ]]; then
    (cd "$ROOT" && cargo build -p ironplane) || exit 1
    bin=${CARGO_TARGET_DIR:-$ROOT/target}/debug/ironplane
  fi

  # Ironplane, fresh.
  rm -rf "$dir/ironplane-data"
  "$bin" serve --data-dir "$dir/ironplane-data" --bind-address 127.0.0.1 --secure-port 0 \
    >"$dir/ironplane.stdout" 2>"$dir/ironplane.log" </dev/null &
  IRONPLANE_PID=$!
  trap stop_ironplane EXIT
  local i
  for i in $(seq 1 200); do grep -q 'export KUBECONFIG=' "$dir/ironplane.stdout" 2>/dev/null && break; sleep 0.05; done
  local ikc
  ikc=$(sed -n 's/.*export KUBECONFIG=//p' "$dir/ironplane.stdout")
  [[ -n $ikc ]] || { echo "ironplane did not start: $(cat "$dir/ironplane.log")" >&2; exit 1; }
  KUBECONFIG=$ikc run_transcript "$dir/ironplane.txt"
  stop_ironplane

  # Upstream, fresh.
  local ukc=${UPSTREAM_KUBECONFIG:-} started=
  if [[ -z $ukc ]]; then
    local anchor=${ANCHOR_DIR:-/work/upstream-out}
    local scripts=${UPSTREAM_SCRIPTS:-$anchor}
    [[ -x $scripts/start-upstream.sh ]] || scripts=/work/shared/upstream
    ANCHOR_DIR=$anchor "$scripts/start-upstream.sh" | tee "$dir/upstream.start" || exit 1
    ukc=$(sed -n 's/^KUBECONFIG=//p' "$dir/upstream.start")
    started=$scripts
  fi
  STEP=0
  KUBECONFIG=$ukc run_transcript "$dir/upstream.txt"
  if [[ -n $started ]]; then
    ANCHOR_DIR=${ANCHOR_DIR:-/work/upstream-out} "$started/stop-upstream.sh"
  fi

  echo "transcripts in $dir; diff -u upstream.txt ironplane.txt:"
  diff -u "$dir/upstream.txt" "$dir/ironplane.txt" >"$dir/diff.txt"
  local rc=$?
  cat "$dir/diff.txt"
  ((rc == 0)) && echo "identical"
  return $rc
}

case ${1:-} in
  run) [[ -n ${2:-} ]] || { echo "usage: $0 run TRANSCRIPT" >&2; exit 2; }
    out=$2
    [[ $out == /* ]] || out=$PWD/$out
    run_transcript "$out" ;;
  compare) compare "${2:-}" ;;
  mask) mask ;;
  *) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
