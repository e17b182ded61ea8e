//! End-to-end tests that drive the real kubectl against the `ironplane` binary.
//!
//! Each test starts `ironplane serve --data-dir <tempdir> --secure-port 0`, reads the kubeconfig
//! path from the line it prints, runs one kubectl (the `/usr/bin/kubectl` dispatcher, which picks
//! kubectl 1.32 for our 1.32 `/version`, and kubectl 1.27 and 1.33 directly) with a fresh
//! discovery cache through one scenario, and asserts on exit codes and on exact output lines
//! (AGE columns masked). At the end it sends SIGTERM and expects a clean exit within seconds, which
//! also tests graceful shutdown. A test skips, saying so, only when its kubectl is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The dispatcher that runs the kubectl matching the server's minor version.
const DISPATCHER: &str = "/usr/bin/kubectl";
/// Where the versioned kubectl binaries live.
const SDK_BIN: &str = "/usr/lib/google-cloud-sdk/bin";
/// The longest any single kubectl command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest to wait for the server to print its line, or a watcher its next line.
const WAIT: Duration = Duration::from_secs(15);

/// The Invalid message kubectl shows for the configmap name `Bad_Name`.
const BAD_NAME_INVALID: &str = "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \
    \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
    characters, '-' or '.', and must start and end with an alphanumeric character (e.g. \
    'example.com', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

#[test]
fn kubectl_dispatcher_picks_1_32_and_passes_the_scenario() {
    run_scenario(Path::new(DISPATCHER), 32);
}

#[test]
fn kubectl_1_27_passes_the_scenario() {
    run_scenario(&Path::new(SDK_BIN).join("kubectl.1.27"), 27);
}

#[test]
fn kubectl_1_33_passes_the_scenario() {
    run_scenario(&Path::new(SDK_BIN).join("kubectl.1.33"), 33);
}

/// Starts a server, runs the scenario with `bin` (kubectl 1.`minor`), and stops the server
/// gracefully.
fn run_scenario(bin: &Path, minor: u32) {
    if !bin.exists() {
        eprintln!("SKIPPED: {} is not installed", bin.display());
        return;
    }
    let started = Instant::now();
    let server = Server::start();
    let kubectl = Kubectl::new(bin, minor, &server.kubeconfig);
    check_version(&kubectl);
    check_namespaces(&kubectl);
    check_configmap_lifecycle(&kubectl);
    check_errors(&kubectl);
    check_selectors_and_chunking(&kubectl);
    check_watch(&kubectl);
    check_dry_run(&kubectl);
    check_other_kinds(&kubectl);
    check_quotas_and_limit_ranges(&kubectl);
    check_discovery(&kubectl);
    check_watch_events(&kubectl);
    check_delete_all_and_namespace_termination(&kubectl);
    server.stop();
    eprintln!(
        "{}: scenario passed in {:.1?}",
        bin.display(),
        started.elapsed()
    );
}

fn check_version(k: &Kubectl) {
    // kubectl 1.27 warns on stderr that the version skew exceeds one minor version.
    let out = k.run(&["version", "-o", "json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let server = out
        .stdout
        .split("\"serverVersion\"")
        .nth(1)
        .unwrap_or_default();
    assert!(
        server.contains("\"gitVersion\": \"v1.32."),
        "server version is not 1.32: {out}"
    );
}

fn check_namespaces(k: &Kubectl) {
    assert_table(
        &k.ok(&["get", "ns"]),
        &[
            "NAME STATUS AGE",
            "default Active <age>",
            "kube-node-lease Active <age>",
            "kube-public Active <age>",
            "kube-system Active <age>",
        ],
    );
    assert_eq!(k.ok(&["create", "ns", "e2e"]), "namespace/e2e created\n");
    k.fails(
        &["create", "ns", "e2e"],
        "Error from server (AlreadyExists): namespaces \"e2e\" already exists\n",
    );
    k.fails(
        &["delete", "ns", "default", "--wait=false"],
        "Error from server (Forbidden): namespaces \"default\" is forbidden: this namespace may \
         not be deleted\n",
    );
    k.fails(
        &["get", "ns", "nope"],
        "Error from server (NotFound): namespaces \"nope\" not found\n",
    );
    assert_table(
        &k.ok(&["get", "ns", "e2e", "--show-labels"]),
        &[
            "NAME STATUS AGE LABELS",
            "e2e Active <age> kubernetes.io/metadata.name=e2e",
        ],
    );
}

fn check_configmap_lifecycle(k: &Kubectl) {
    assert_eq!(
        k.ok(&["-n", "e2e", "create", "cm", "x", "--from-literal=a=1"]),
        "configmap/x created\n"
    );
    assert_eq!(
        mask_yaml(&k.ok(&["-n", "e2e", "get", "cm", "x", "-o", "yaml"])),
        "apiVersion: v1\n\
         data:\n  a: \"1\"\n\
         kind: ConfigMap\n\
         metadata:\n  \
           creationTimestamp: <masked>\n  \
           name: x\n  \
           namespace: e2e\n  \
           resourceVersion: <masked>\n  \
           uid: <masked>\n"
    );

    let manifest = k.write_file(
        "app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: e2e\n  \
         labels:\n    tier: web\ndata:\n  k: v\n",
    );
    assert_eq!(k.ok(&["apply", "-f", &manifest]), "configmap/app created\n");
    assert_eq!(
        k.ok(&["apply", "-f", &manifest]),
        "configmap/app unchanged\n"
    );
    let manifest = k.write_file(
        "app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: e2e\n  \
         labels:\n    tier: web\ndata:\n  k: v2\n",
    );
    assert_eq!(
        k.ok(&["apply", "-f", &manifest]),
        "configmap/app configured\n"
    );
    assert_eq!(
        k.ok(&["-n", "e2e", "get", "cm", "app", "-o", "jsonpath={.data.k}"]),
        "v2"
    );
    let applied = k.ok(&[
        "-n",
        "e2e",
        "get",
        "cm",
        "app",
        "-o",
        "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
    ]);
    assert!(applied.contains("\"k\":\"v2\""), "{applied}");

    assert_eq!(
        k.ok(&["-n", "e2e", "label", "cm", "app", "env=prod"]),
        "configmap/app labeled\n"
    );
    k.fails(
        &["-n", "e2e", "label", "cm", "app", "env=dev"],
        "error: 'env' already has a value (prod), and --overwrite is false\n",
    );
    assert_eq!(
        k.ok(&["-n", "e2e", "annotate", "cm", "app", "note=hello"]),
        format!("configmap/app {}\n", k.annotated())
    );
    assert_table(
        &k.ok(&["-n", "e2e", "get", "cm", "--show-labels"]),
        &[
            "NAME DATA AGE LABELS",
            "app 1 <age> env=prod,tier=web",
            "x 1 <age> <none>",
        ],
    );
    assert_eq!(
        k.ok(&[
            "-n",
            "e2e",
            "get",
            "cm",
            "app",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "hello"
    );
    assert_eq!(
        k.ok(&["-n", "e2e", "label", "cm", "app", "env-"]),
        "configmap/app unlabeled\n"
    );

    assert_eq!(
        k.ok(&["-n", "e2e", "create", "cm", "tmp"]),
        "configmap/tmp created\n"
    );
    assert_eq!(
        k.ok(&["-n", "e2e", "delete", "cm", "tmp"]),
        "configmap \"tmp\" deleted\n"
    );
}

fn check_errors(k: &Kubectl) {
    k.fails(
        &["-n", "e2e", "get", "cm", "nope"],
        "Error from server (NotFound): configmaps \"nope\" not found\n",
    );
    k.fails(
        &["-n", "e2e", "delete", "cm", "nope"],
        "Error from server (NotFound): configmaps \"nope\" not found\n",
    );
    k.fails(
        &["-n", "e2e", "create", "cm", "x"],
        "error: failed to create configmap: configmaps \"x\" already exists\n",
    );
    k.fails(
        &["-n", "e2e", "create", "cm", "Bad_Name"],
        &format!("error: failed to create configmap: {BAD_NAME_INVALID}\n"),
    );
    k.fails(
        &["-n", "nope", "create", "cm", "x"],
        "error: failed to create configmap: namespaces \"nope\" not found\n",
    );
    let manifest = k.write_file(
        "nope.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: nope\n",
    );
    k.fails(
        &["apply", "-f", &manifest],
        &format!(
            "Error from server (NotFound): error when creating \"{manifest}\": namespaces \"nope\" \
             not found\n"
        ),
    );
    let out = k.run(&["-n", "nope", "get", "cm"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(
        out.stderr, "No resources found in nope namespace.\n",
        "{out}"
    );
}

fn check_selectors_and_chunking(k: &Kubectl) {
    assert_eq!(
        k.ok(&[
            "-n",
            "e2e",
            "create",
            "cm",
            "db",
            "--from-literal=a=1",
            "--from-literal=b=2"
        ]),
        "configmap/db created\n"
    );
    assert_eq!(
        k.ok(&["-n", "e2e", "label", "cm", "db", "tier=db"]),
        "configmap/db labeled\n"
    );
    let cases: &[(&[&str], &[&str])] = &[
        (&["-l", "tier=web"], &["NAME DATA AGE", "app 1 <age>"]),
        (
            &["-l", "tier!=web"],
            &["NAME DATA AGE", "db 2 <age>", "x 1 <age>"],
        ),
        (
            &["-l", "tier in (web,db)"],
            &["NAME DATA AGE", "app 1 <age>", "db 2 <age>"],
        ),
        (
            &["-l", "tier notin (web)"],
            &["NAME DATA AGE", "db 2 <age>", "x 1 <age>"],
        ),
        (
            &["-l", "tier"],
            &["NAME DATA AGE", "app 1 <age>", "db 2 <age>"],
        ),
        (&["-l", "!tier"], &["NAME DATA AGE", "x 1 <age>"]),
        (
            &["--field-selector", "metadata.name=x"],
            &["NAME DATA AGE", "x 1 <age>"],
        ),
        (
            &["--field-selector", "metadata.name!=x"],
            &["NAME DATA AGE", "app 1 <age>", "db 2 <age>"],
        ),
        (
            &["--field-selector", "metadata.name!=x", "-l", "tier=db"],
            &["NAME DATA AGE", "db 2 <age>"],
        ),
    ];
    for (selector, expected) in cases {
        let mut args = vec!["-n", "e2e", "get", "cm"];
        args.extend_from_slice(selector);
        assert_table(&k.ok(&args), expected);
    }
    let out = k.run(&["-n", "e2e", "get", "cm", "-l", "tier=nothing"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stderr, "No resources found in e2e namespace.\n",
        "{out}"
    );
    k.fails(
        &["-n", "e2e", "get", "cm", "--field-selector", "data.a=1"],
        "Error from server (BadRequest): Unable to find \"/v1, Resource=configmaps\" that match \
         label selector \"\", field selector \"data.a=1\": \"data.a\" is not a known field \
         selector: only \"metadata.name\", \"metadata.namespace\"\n",
    );

    // --chunk-size=1 pages through the list one object at a time; -v=6 logs each request.
    let out = k.run(&["-n", "e2e", "get", "cm", "--chunk-size=1", "-v=6"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_table(
        &out.stdout,
        &["NAME DATA AGE", "app 1 <age>", "db 2 <age>", "x 1 <age>"],
    );
    let pages = out
        .stderr
        .lines()
        .filter(|line| {
            line.contains("/api/v1/namespaces/e2e/configmaps?") && line.contains("limit=1")
        })
        .count();
    assert_eq!(pages, 3, "expected three pages of one: {out}");
    assert_eq!(
        out.stderr.matches("continue=").count(),
        2,
        "expected two continue requests: {out}"
    );
}

fn check_watch(k: &Kubectl) {
    let mut watcher = k.watch(&["-n", "e2e", "get", "cm", "x", "-w"]);
    assert_table_line(&watcher.next_line(), "NAME DATA AGE");
    assert_table_line(&watcher.next_line(), "x 1 <age>");
    assert_eq!(
        k.ok(&[
            "-n",
            "e2e",
            "patch",
            "cm",
            "x",
            "-p",
            r#"{"data":{"b":"2"}}"#
        ]),
        "configmap/x patched\n"
    );
    assert_table_line(&watcher.next_line(), "x 2 <age>");
    assert_eq!(
        k.ok(&["-n", "e2e", "label", "cm", "x", "seen=yes"]),
        "configmap/x labeled\n"
    );
    assert_table_line(&watcher.next_line(), "x 2 <age>");
    watcher.stop();
}

fn check_watch_events(k: &Kubectl) {
    let mut watcher = k.watch(&["-n", "e2e", "get", "cm", "-w", "--output-watch-events"]);
    assert_table_line(&watcher.next_line(), "EVENT NAME DATA AGE");
    for name in ["app", "db", "x"] {
        let line = watcher.next_line();
        assert!(
            line.starts_with("ADDED ") && line.contains(name),
            "initial event for {name}: {line:?}"
        );
    }
    assert_eq!(
        k.ok(&["-n", "e2e", "create", "cm", "w"]),
        "configmap/w created\n"
    );
    assert_table_line(&watcher.next_line(), "ADDED w 0 <age>");
    assert_eq!(
        k.ok(&["-n", "e2e", "annotate", "cm", "w", "a=b"]),
        format!("configmap/w {}\n", k.annotated())
    );
    assert_table_line(&watcher.next_line(), "MODIFIED w 0 <age>");
    assert_eq!(
        k.ok(&["-n", "e2e", "delete", "cm", "w"]),
        "configmap \"w\" deleted\n"
    );
    assert_table_line(&watcher.next_line(), "DELETED w 0 <age>");
    watcher.stop();
}

fn check_dry_run(k: &Kubectl) {
    assert_eq!(
        k.ok(&["-n", "e2e", "create", "cm", "dry", "--dry-run=server"]),
        "configmap/dry created (server dry run)\n"
    );
    k.fails(
        &["-n", "e2e", "get", "cm", "dry"],
        "Error from server (NotFound): configmaps \"dry\" not found\n",
    );
    let yaml = k.ok(&[
        "-n",
        "e2e",
        "create",
        "cm",
        "dry",
        "--dry-run=server",
        "-o",
        "yaml",
    ]);
    assert!(
        yaml.contains("  uid: "),
        "a server dry run fills in the uid: {yaml}"
    );
    assert!(
        !yaml.contains("resourceVersion"),
        "a dry run has no resourceVersion: {yaml}"
    );
    assert_eq!(
        k.ok(&["-n", "e2e", "delete", "cm", "x", "--dry-run=server"]),
        "configmap \"x\" deleted (server dry run)\n"
    );
    assert_eq!(
        k.ok(&[
            "-n",
            "e2e",
            "label",
            "cm",
            "x",
            "dry=run",
            "--dry-run=server"
        ]),
        "configmap/x labeled (server dry run)\n"
    );
    assert_eq!(
        k.ok(&[
            "-n",
            "e2e",
            "get",
            "cm",
            "x",
            "-o",
            "jsonpath={.metadata.labels}"
        ]),
        r#"{"seen":"yes"}"#
    );
}

fn check_other_kinds(k: &Kubectl) {
    assert_eq!(
        k.ok(&[
            "-n",
            "e2e",
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=user=admin"
        ]),
        "secret/s created\n"
    );
    assert_eq!(
        k.ok(&[
            "-n",
            "e2e",
            "get",
            "secret",
            "s",
            "-o",
            "jsonpath={.type} {.data.user}"
        ]),
        "Opaque YWRtaW4="
    );
    k.fails(
        &["-n", "e2e", "create", "secret", "generic", "s"],
        "error: failed to create secret secrets \"s\" already exists\n",
    );
    assert_eq!(
        k.ok(&["-n", "e2e", "create", "sa", "robot"]),
        "serviceaccount/robot created\n"
    );
    assert_table(
        &k.ok(&["get", "secrets,sa,cm", "-A"]),
        &[
            "NAMESPACE NAME TYPE DATA AGE",
            "e2e secret/s Opaque 1 <age>",
            "",
            "NAMESPACE NAME SECRETS AGE",
            "e2e serviceaccount/robot 0 <age>",
            "",
            "NAMESPACE NAME DATA AGE",
            "e2e configmap/app 1 <age>",
            "e2e configmap/db 2 <age>",
            "e2e configmap/x 2 <age>",
            "kube-system configmap/extension-apiserver-authentication 1 <age>",
            "kube-system configmap/kube-apiserver-legacy-service-account-token-tracking 1 <age>",
        ],
    );
}

/// ResourceQuotas and LimitRanges, and what `kubectl describe ns` makes of them (the expected
/// text is what upstream 1.32 printed for the same commands; no controller fills quota status
/// there either, so `describe` shows the quota's rows only once status is written).
fn check_quotas_and_limit_ranges(k: &Kubectl) {
    assert_eq!(
        k.ok(&["create", "ns", "quotas"]),
        "namespace/quotas created\n"
    );
    let no_policies = "Name:         quotas\n\
                       Labels:       kubernetes.io/metadata.name=quotas\n\
                       Annotations:  <none>\n\
                       Status:       Active\n\
                       \n\
                       No resource quota.\n\
                       \n\
                       No LimitRange resource.\n";
    assert_eq!(k.ok(&["describe", "ns", "quotas"]), no_policies);

    let quota = k.write_file(
        "quota.yaml",
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: compute\n  namespace: quotas\n\
         spec:\n  hard:\n    configmaps: \"2\"\n    requests.cpu: 1000m\n    limits.memory: 1.5Gi\n\
         \x20   pods: \"10\"\n",
    );
    assert_eq!(
        k.ok(&["create", "-f", &quota]),
        "resourcequota/compute created\n"
    );
    assert_eq!(
        k.ok(&[
            "-n",
            "quotas",
            "get",
            "quota",
            "compute",
            "-o",
            "jsonpath={.spec.hard}"
        ]),
        r#"{"configmaps":"2","limits.memory":"1536Mi","pods":"10","requests.cpu":"1"}"#
    );
    let limits = k.write_file(
        "limits.yaml",
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: limits\n  namespace: quotas\n\
         spec:\n  limits:\n  - type: Container\n    max:\n      cpu: \"2\"\n      memory: 1Gi\n\
         \x20   min:\n      cpu: 100m\n    maxLimitRequestRatio:\n      cpu: \"10\"\n\
         \x20 - type: Pod\n    max:\n      memory: 2Gi\n",
    );
    assert_eq!(
        k.ok(&["create", "-f", &limits]),
        "limitrange/limits created\n"
    );
    assert_same_lines(
        &k.ok(&["-n", "quotas", "describe", "limits"]),
        "Name:       limits\n\
         Namespace:  quotas\n\
         Type        Resource  Min   Max  Default Request  Default Limit  Max Limit/Request Ratio\n\
         ----        --------  ---   ---  ---------------  -------------  -----------------------\n\
         Container   cpu       100m  2    2                2              10\n\
         Container   memory    -     1Gi  1Gi              1Gi            -\n\
         Pod         memory    -     2Gi  -                -              -\n",
    );

    // The quota's status, as a quota controller would write it.
    let status = k.write_file(
        "quota-status.json",
        r#"{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"compute","namespace":"quotas"},
            "spec":{"hard":{"pods":"1"}},
            "status":{"hard":{"configmaps":"2","requests.cpu":"1","limits.memory":"1536Mi","pods":"10"},
                      "used":{"configmaps":"1","requests.cpu":"0","limits.memory":"0"}}}"#,
    );
    assert_eq!(
        k.ok(&["replace", "--subresource=status", "-f", &status]),
        "resourcequota/compute replaced\n"
    );
    assert_table(
        &k.ok(&["-n", "quotas", "get", "quota"]),
        &[
            "NAME AGE REQUEST LIMIT",
            "compute <age> configmaps: 1/2, pods: 0/10, requests.cpu: 0/1 limits.memory: 0/1536Mi",
        ],
    );
    assert_same_lines(
        &k.ok(&["describe", "ns", "quotas"]),
        "Name:         quotas\n\
         Labels:       kubernetes.io/metadata.name=quotas\n\
         Annotations:  <none>\n\
         Status:       Active\n\
         \n\
         Resource Quotas\n\
         \x20 Name:          compute\n\
         \x20 Resource       Used  Hard\n\
         \x20 --------       ---   ---\n\
         \x20 configmaps     1     2\n\
         \x20 limits.memory  0     1536Mi\n\
         \x20 pods           0     10\n\
         \x20 requests.cpu   0     1\n\
         \n\
         Resource Limits\n\
         \x20Type       Resource  Min   Max  Default Request  Default Limit  Max Limit/Request Ratio\n\
         \x20----       --------  ---   ---  ---------------  -------------  -----------------------\n\
         \x20Container  cpu       100m  2    2                2              10\n\
         \x20Container  memory    -     1Gi  1Gi              1Gi            -\n\
         \x20Pod        memory    -     2Gi  -                -              -\n",
    );

    let bad = k.write_file(
        "bad-quota.json",
        r#"{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"bad","namespace":"quotas"},
            "spec":{"hard":{"pods":"-1","cpu":"1"},"scopes":["BestEffort","NotBestEffort"]}}"#,
    );
    k.fails(
        &["create", "-f", &bad],
        "The ResourceQuota \"bad\" is invalid: \n\
         * spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0\n\
         * spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: \
         unsupported scope applied to resource\n\
         * spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: \
         conflicting scopes\n",
    );
    let unparsable = k.write_file(
        "unparsable-quota.json",
        r#"{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"bad","namespace":"quotas"},
            "spec":{"hard":{"pods":"abc"}}}"#,
    );
    k.fails(
        &["create", "-f", &unparsable],
        &format!(
            "Error from server (BadRequest): error when creating \"{unparsable}\": ResourceQuota in \
             version \"v1\" cannot be handled as a ResourceQuota: quantities must match the regular \
             expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'\n"
        ),
    );
}

fn check_discovery(k: &Kubectl) {
    assert_table(
        &k.ok(&["api-resources"]),
        &[
            "NAME SHORTNAMES APIVERSION NAMESPACED KIND",
            "configmaps cm v1 true ConfigMap",
            "events ev v1 true Event",
            "limitranges limits v1 true LimitRange",
            "namespaces ns v1 false Namespace",
            "resourcequotas quota v1 true ResourceQuota",
            "secrets v1 true Secret",
            "serviceaccounts sa v1 true ServiceAccount",
            "events ev events.k8s.io/v1 true Event",
        ],
    );
    assert_eq!(k.ok(&["api-versions"]), "events.k8s.io/v1\nv1\n");
    // Both event resources answer to `ev`; kubectl 1.30 and later say so when the short name
    // picks core's, as against upstream.
    let out = k.run(&["get", "ev", "-n", "kube-public"]);
    assert_eq!(out.code, Some(0), "{out}");
    let warning = if k.minor >= 30 {
        "Warning: short name \"ev\" could also match lower priority resource events.events.k8s.io\n"
    } else {
        ""
    };
    assert_eq!(
        out.stderr,
        format!("{warning}No resources found in kube-public namespace.\n"),
        "{out}"
    );
}

fn check_delete_all_and_namespace_termination(k: &Kubectl) {
    assert_eq!(
        k.ok(&["-n", "e2e", "delete", "cm", "--all"]),
        "configmap \"app\" deleted\nconfigmap \"db\" deleted\nconfigmap \"x\" deleted\n"
    );
    let out = k.run(&["-n", "e2e", "get", "cm"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stderr, "No resources found in e2e namespace.\n",
        "{out}"
    );
    // There is no namespace controller, so the namespace stays Terminating: do not wait for it.
    assert_eq!(
        k.ok(&["delete", "ns", "e2e", "--wait=false"]),
        "namespace \"e2e\" deleted\n"
    );
    assert_table(
        &k.ok(&["get", "ns", "e2e"]),
        &["NAME STATUS AGE", "e2e Terminating <age>"],
    );
    k.fails(
        &["-n", "e2e", "create", "cm", "late"],
        "error: failed to create configmap: configmaps \"late\" is forbidden: unable to create new \
         content in namespace e2e because it is being terminated\n",
    );
}

/// An `ironplane serve` child process with its own data directory.
struct Server {
    child: Child,
    kubeconfig: String,
    dir: TempDir,
}

impl Server {
    /// Starts the server on 127.0.0.1 and a free port and waits for its "serving" line.
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = File::create(dir.path().join("server.log")).expect("server log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ironplane"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--bind-address", "127.0.0.1", "--secure-port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start ironplane");
        let stdout = child.stdout.take().expect("stdout");
        let lines = spawn_line_reader(stdout);
        let line = match lines.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ironplane printed no line ({error}); its log:\n{}",
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
                );
            }
        };
        assert!(
            line.starts_with("Ironplane is serving on https://127.0.0.1:"),
            "unexpected first line: {line:?}"
        );
        let kubeconfig = line
            .split_once("export KUBECONFIG=")
            .map(|(_, path)| path.trim().to_owned())
            .unwrap_or_else(|| panic!("no KUBECONFIG in {line:?}"));
        assert!(Path::new(&kubeconfig).is_file(), "{kubeconfig} missing");
        Server {
            child,
            kubeconfig,
            dir,
        }
    }

    /// Sends SIGTERM and expects a clean exit (status 0) within a few seconds.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for ironplane") {
                assert!(
                    status.success(),
                    "ironplane exited with {status} after SIGTERM; its log:\n{}",
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ironplane did not exit within 5 s of SIGTERM; its log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only reached running when a test failed before `stop`.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One kubectl binary pointed at one server, with its own discovery cache and scratch folder.
struct Kubectl {
    bin: PathBuf,
    /// The kubectl minor version, for the few messages that differ between versions.
    minor: u32,
    kubeconfig: String,
    scratch: TempDir,
}

/// What a finished kubectl command did.
struct Output {
    args: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\n$ kubectl {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

impl Kubectl {
    fn new(bin: &Path, minor: u32, kubeconfig: &str) -> Kubectl {
        let scratch = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(scratch.path().join("cache")).expect("cache dir");
        Kubectl {
            bin: bin.to_owned(),
            minor,
            kubeconfig: kubeconfig.to_owned(),
            scratch,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.scratch.path().join("cache"))
            .env("HOME", self.scratch.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(Stdio::null());
        command
    }

    /// What `kubectl annotate` prints after the object: kubectl 1.27 says "annotate" where later
    /// versions say "annotated".
    fn annotated(&self) -> &'static str {
        if self.minor <= 27 {
            "annotate"
        } else {
            "annotated"
        }
    }

    /// Writes a file in the scratch folder and returns its path.
    fn write_file(&self, name: &str, contents: &str) -> String {
        let path = self.scratch.path().join(name);
        std::fs::write(&path, contents).expect("write manifest");
        path.to_str().expect("utf-8 path").to_owned()
    }

    /// Runs kubectl to completion (failing the test after [`COMMAND_TIMEOUT`]).
    fn run(&self, args: &[&str]) -> Output {
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.bin.display()));
        let pid = child.id();
        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        let output = match finished.recv_timeout(COMMAND_TIMEOUT) {
            Ok(output) => output.expect("wait for kubectl"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("kubectl {} took over {COMMAND_TIMEOUT:?}", args.join(" "));
            }
        };
        Output {
            args: args.join(" "),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs kubectl, expects success and an empty stderr, and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.code, Some(0), "{out}");
        assert_eq!(out.stderr, "", "{out}");
        out.stdout
    }

    /// Runs kubectl and expects exit status 1, nothing on stdout and exactly `stderr`.
    fn fails(&self, args: &[&str], stderr: &str) {
        let out = self.run(args);
        assert_eq!(out.code, Some(1), "{out}");
        assert_eq!(out.stdout, "", "{out}");
        assert_eq!(out.stderr, stderr, "{out}");
    }

    /// Starts a long-running kubectl (such as `get -w`) whose stdout is read line by line.
    fn watch(&self, args: &[&str]) -> Watcher {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.bin.display()));
        let lines = spawn_line_reader(child.stdout.take().expect("stdout"));
        Watcher {
            args: args.join(" "),
            child,
            lines,
        }
    }
}

/// A running `kubectl get -w`.
struct Watcher {
    args: String,
    child: Child,
    lines: Receiver<String>,
}

impl Watcher {
    /// The next line the watcher printed, waiting at most [`WAIT`].
    fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(error) => {
                let _ = self.child.kill();
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                let why = match error {
                    RecvTimeoutError::Timeout => "printed nothing more",
                    RecvTimeoutError::Disconnected => "exited",
                };
                panic!("kubectl {} {why}; stderr:\n{stderr}", self.args);
            }
        }
    }

    /// Ends the watcher; it must not have printed anything on stderr.
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        assert_eq!(stderr, "", "kubectl {} wrote to stderr", self.args);
        let extra: Vec<String> = self.lines.try_iter().collect();
        assert!(
            extra.is_empty(),
            "kubectl {} printed unexpected lines: {extra:?}",
            self.args
        );
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Forwards the lines of `pipe` to a channel from a thread of its own.
fn spawn_line_reader(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Whether a table cell is a kubectl age such as `0s`, `59s`, `2m3s`, `10m`, `3h4m`, `2d` or `3y45d`.
fn is_age(cell: &str) -> bool {
    let mut rest = cell;
    let mut groups = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        match rest.bytes().next() {
            Some(b's' | b'm' | b'h' | b'd' | b'y') => rest = &rest[1..],
            _ => return false,
        }
        groups += 1;
    }
    groups > 0
}

/// A table line with its cells separated by one space and ages replaced by `<age>`.
fn normalize_table_line(line: &str) -> String {
    line.split_whitespace()
        .map(|cell| if is_age(cell) { "<age>" } else { cell })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same lines in any order: `kubectl describe` prints a limit range's rows in the order of a
/// Go map, which differs from run to run (and between kubectl versions).
fn assert_same_lines(actual: &str, expected: &str) {
    let mut actual_lines: Vec<&str> = actual.lines().collect();
    let mut expected_lines: Vec<&str> = expected.lines().collect();
    actual_lines.sort_unstable();
    expected_lines.sort_unstable();
    assert_eq!(actual_lines, expected_lines, "{actual}");
}

fn assert_table(actual: &str, expected: &[&str]) {
    let lines: Vec<String> = actual.lines().map(normalize_table_line).collect();
    assert_eq!(lines, expected, "table was:\n{actual}");
}

fn assert_table_line(actual: &str, expected: &str) {
    assert_eq!(
        normalize_table_line(actual),
        expected,
        "line was: {actual:?}"
    );
}

/// YAML with the values of uid, resourceVersion and creationTimestamp replaced by `<masked>`.
fn mask_yaml(yaml: &str) -> String {
    let mut out = String::new();
    for line in yaml.lines() {
        let key = line.trim_start().split(':').next().unwrap_or("");
        if matches!(key, "uid" | "resourceVersion" | "creationTimestamp") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}{key}: <masked>\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn ages_are_recognised() {
    for age in ["0s", "59s", "2m3s", "10m", "3h4m", "2d", "3y45d"] {
        assert!(is_age(age), "{age}");
    }
    for cell in ["", "s", "x", "1", "e2e", "1x", "ab1s", "<none>"] {
        assert!(!is_age(cell), "{cell}");
    }
    assert_eq!(
        normalize_table_line("app    1      2m3s   env=prod"),
        "app 1 <age> env=prod"
    );
}
