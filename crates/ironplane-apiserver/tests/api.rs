//! Integration tests: the server on 127.0.0.1:0 over HTTPS, driven the way clients drive it, and
//! its answers compared with upstream's (status codes, reasons, messages, byte-exact bodies).

mod support;

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Credentials, FrameReader, TestServer, configmap};

const CM: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn health_version_and_discovery_are_public() {
    let server = TestServer::start().await;
    for path in [
        "/healthz", "/livez", "/readyz", "/version", "/api", "/apis", "/api/v1",
    ] {
        let response = server
            .send(Credentials::Anonymous, Method::GET, path, &[], "")
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{path}: {}",
            response.text()
        );
    }
    let version = server.get("/version").await.json();
    assert_eq!(version["major"], "1");
    assert_eq!(version["minor"], "32");
    let verbose = server.get("/readyz?verbose").await.text();
    assert!(verbose.contains("[+]etcd ok"), "{verbose}");
    assert!(verbose.ends_with("readyz check passed\n"), "{verbose}");
    let excluded = server.get("/readyz?verbose&exclude=etcd").await.text();
    assert!(excluded.contains("[+]etcd excluded: ok"), "{excluded}");
    assert_eq!(server.get("/livez/etcd").await.text(), "ok");
    assert_eq!(
        server.get("/livez/nonexistent").await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn everything_else_needs_credentials() {
    let server = TestServer::start().await;
    let anonymous = server
        .send(
            Credentials::Anonymous,
            Method::GET,
            "/api/v1/namespaces",
            &[],
            "",
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.text(),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#,
            "\n"
        )
    );
    let bad_token = server
        .send(Credentials::BadToken, Method::GET, "/healthz", &[], "")
        .await;
    assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);
    let token = server
        .send(
            Credentials::Token,
            Method::GET,
            "/api/v1/namespaces",
            &[],
            "",
        )
        .await;
    assert_eq!(token.status, StatusCode::OK);
    server.stop().await;
}

/// Two seats in all (the global-default level gets one): a burst of creates from one ordinary
/// user waits for them in its queues instead of being refused, and an administrator
/// (system:masters) is exempt, as with upstream's default priority and fairness.
#[tokio::test]
async fn a_burst_past_the_concurrency_limit_waits_for_seats() {
    let server = std::sync::Arc::new(
        TestServer::start_with(|config| {
            config.max_requests_inflight = 1;
            config.max_mutating_requests_inflight = 1;
            config.tokens = ironplane_apiserver::authn::TokenAuthenticator::parse(&format!(
                "{},alice,uid-2\n",
                support::TOKEN
            ))
            .unwrap();
        })
        .await,
    );
    for (credentials, prefix) in [
        (Credentials::Token, "queued"),
        (Credentials::Certificate, "exempt"),
    ] {
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let server = std::sync::Arc::clone(&server);
                tokio::spawn(async move {
                    let body = configmap(&format!("{prefix}-{i}"), &[("k", "v")]);
                    server
                        .send(
                            credentials,
                            Method::POST,
                            CM,
                            &[("content-type", "application/json")],
                            serde_json::to_vec(&body).unwrap(),
                        )
                        .await
                })
            })
            .collect();
        for task in tasks {
            let response = task.await.unwrap();
            assert_eq!(
                response.status,
                StatusCode::CREATED,
                "{prefix}: {}",
                response.text()
            );
        }
    }
    let list = server.get(CM).await.json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(80));
    match std::sync::Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("every request task has finished"),
    }
}

#[tokio::test]
async fn system_namespaces_exist_at_start() {
    let server = TestServer::start().await;
    let list = server.get("/api/v1/namespaces").await.json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    let default = server.get("/api/v1/namespaces/default").await.json();
    assert_eq!(default["status"]["phase"], "Active");
    assert_eq!(default["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(
        default["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "default"
    );
    server.stop().await;
}

#[tokio::test]
async fn configmap_lifecycle_and_upstream_errors() {
    let server = TestServer::start().await;
    let created = server.post(CM, &configmap("exists", &[("a", "b")])).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let object = created.json();
    let rv = object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!object["metadata"]["uid"].as_str().unwrap().is_empty());
    // The create answer (the stored encoding with the revision spliced in) is byte for byte what
    // a read encodes.
    assert_eq!(
        created.text(),
        server.get(&format!("{CM}/exists")).await.text()
    );

    let again = server.post(CM, &configmap("exists", &[("a", "b")])).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        again.text(),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"exists\" already exists","reason":"AlreadyExists","details":{"name":"exists","kind":"configmaps"},"code":409}"#,
            "\n"
        )
    );

    let missing = server.get(&format!("{CM}/missing")).await;
    assert_eq!(
        missing.text(),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"missing\" not found","reason":"NotFound","details":{"name":"missing","kind":"configmaps"},"code":404}"#,
            "\n"
        )
    );

    let mut update = configmap("exists", &[("a", "c")]);
    update["metadata"]["resourceVersion"] = json!(rv);
    let updated = server.put(&format!("{CM}/exists"), &update).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    let stale = server.put(&format!("{CM}/exists"), &update).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(
        stale.json()["message"],
        "Operation cannot be fulfilled on configmaps \"exists\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let invalid = server.post(CM, &configmap("Bad_Name", &[("a", "b")])).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        invalid.text(),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')","reason":"Invalid","details":{"name":"Bad_Name","kind":"ConfigMap","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')","field":"metadata.name"}]},"code":422}"#,
            "\n"
        )
    );

    let deleted = server.delete(&format!("{CM}/exists")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.json()["status"], "Success");
    assert_eq!(
        server.get(&format!("{CM}/exists")).await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_upstream_errors() {
    let server = TestServer::start().await;
    let malformed = server
        .send(
            Credentials::Certificate,
            Method::POST,
            CM,
            &[("content-type", "application/json")],
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x""#,
        )
        .await;
    assert_eq!(
        malformed.text(),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: unexpected end of JSON input ({\"apiVersion\":\"v1\",\"kind\":\"Con ...)","reason":"BadRequest","code":400}"#,
            "\n"
        )
    );
    let mismatch = server
        .post(
            CM,
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(
        mismatch.json()["message"],
        "Secret in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion"
    );
    let wrong_type = server
        .send(
            Credentials::Certificate,
            Method::POST,
            CM,
            &[("content-type", "text/plain")],
            "{}",
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let xml = server
        .send(
            Credentials::Certificate,
            Method::GET,
            CM,
            &[("accept", "application/xml")],
            "",
        )
        .await;
    assert_eq!(xml.status, StatusCode::NOT_ACCEPTABLE);
    let put_collection = server.put(CM, &configmap("x", &[])).await;
    assert_eq!(
        put_collection.text(),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server does not allow this method on the requested resource","reason":"MethodNotAllowed","details":{},"code":405}"#,
            "\n"
        )
    );
    let unknown_group = server.get("/apis/nonexistent.example.com/v1/widgets").await;
    assert_eq!(unknown_group.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_group.text(), "404 page not found\n");
    let unknown_resource = server.get("/api/v1/widgets").await;
    assert_eq!(
        unknown_resource.text(),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#,
            "\n"
        )
    );
    let missing_namespace = server
        .post(
            "/api/v1/namespaces/does-not-exist/configmaps",
            &configmap("x", &[]),
        )
        .await;
    assert_eq!(
        missing_namespace.text(),
        concat!(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces \"does-not-exist\" not found","reason":"NotFound","details":{"name":"does-not-exist","kind":"namespaces"},"code":404}"#,
            "\n"
        )
    );
    let too_large = server
        .send(
            Credentials::Certificate,
            Method::POST,
            CM,
            &[("content-type", "application/json")],
            vec![b' '; 3 * 1024 * 1024 + 1],
        )
        .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[tokio::test]
async fn watch_resumes_and_bookmarks() {
    let server = TestServer::start().await;
    let first = server.post(CM, &configmap("one", &[])).await.json();
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = server
        .stream(
            &format!("{CM}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut frames = FrameReader::new(body);
    server.post(CM, &configmap("two", &[])).await;
    let added = frames.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["metadata"]["name"], "two");
    server.delete(&format!("{CM}/one")).await;
    let deleted = frames.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(deleted["type"], "DELETED");
    assert_eq!(deleted["object"]["metadata"]["name"], "one");
    let bookmark = frames.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    server.stop().await;
}

#[tokio::test]
async fn watch_with_initial_events_ends_them_with_a_bookmark() {
    let server = TestServer::start().await;
    server.post(CM, &configmap("a", &[])).await;
    server.post(CM, &configmap("b", &[])).await;
    let (status, _, body) = server
        .stream(
            &format!("{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut frames = FrameReader::new(body);
    let mut names = Vec::new();
    loop {
        let frame = frames.next(Duration::from_secs(5)).await.unwrap();
        if frame["type"] == "BOOKMARK" {
            assert_eq!(
                frame["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
                "true"
            );
            break;
        }
        assert_eq!(frame["type"], "ADDED");
        names.push(
            frame["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(names, ["a", "b"]);
    server.stop().await;
}

#[tokio::test]
async fn lists_paginate_and_select() {
    let server = TestServer::start().await;
    for index in 0..5 {
        let mut cm = configmap(&format!("cm-{index}"), &[]);
        cm["metadata"]["labels"] = json!({"parity": if index % 2 == 0 { "even" } else { "odd" }});
        assert_eq!(server.post(CM, &cm).await.status, StatusCode::CREATED);
    }
    let page = server.get(&format!("{CM}?limit=2")).await.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["metadata"]["remainingItemCount"], 3);
    let token = page["metadata"]["continue"].as_str().unwrap().to_owned();
    let next = server
        .get(&format!("{CM}?limit=2&continue={token}"))
        .await
        .json();
    assert_eq!(next["items"][0]["metadata"]["name"], "cm-2");
    assert_eq!(next["metadata"]["remainingItemCount"], 1);
    let token = next["metadata"]["continue"].as_str().unwrap().to_owned();
    let last = server
        .get(&format!("{CM}?limit=2&continue={token}"))
        .await
        .json();
    assert_eq!(last["items"][0]["metadata"]["name"], "cm-4");
    assert!(last["metadata"]["continue"].is_null());
    assert!(last["metadata"]["remainingItemCount"].is_null());
    // Counted again from the start, the same pages say the same.
    let again = server.get(&format!("{CM}?limit=4")).await.json();
    assert_eq!(again["metadata"]["remainingItemCount"], 1);
    let even = server
        .get(&format!("{CM}?labelSelector=parity%3Deven"))
        .await
        .json();
    assert_eq!(even["items"].as_array().unwrap().len(), 3);
    let named = server
        .get(&format!("{CM}?fieldSelector=metadata.name%3Dcm-4"))
        .await
        .json();
    assert_eq!(named["items"].as_array().unwrap().len(), 1);
    let unsupported = server.get(&format!("{CM}?fieldSelector=foo%3Dbar")).await;
    assert_eq!(unsupported.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unsupported.json()["message"],
        "\"foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    let bad_token = server
        .get(&format!("{CM}?limit=1&continue=not-a-token"))
        .await;
    assert_eq!(
        bad_token.json()["message"],
        "invalid continue token: continue key is not valid: invalid character '\\x9e' looking for beginning of value"
    );
    let table = server
        .send(
            Credentials::Certificate,
            Method::GET,
            CM,
            &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
            "",
        )
        .await
        .json();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|column| column["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Data", "Age"]);
    assert_eq!(table["rows"].as_array().unwrap().len(), 5);
    server.stop().await;
}

#[tokio::test]
async fn namespaces_terminate_and_refuse_new_content() {
    let server = TestServer::start().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}});
    assert_eq!(
        server.post("/api/v1/namespaces", &ns).await.status,
        StatusCode::CREATED
    );
    let deleted = server.delete("/api/v1/namespaces/doomed").await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.json()["status"]["phase"], "Terminating");
    let refused = server
        .post("/api/v1/namespaces/doomed/configmaps", &configmap("x", &[]))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.json()["message"],
        "configmaps \"x\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );
    let mut finalized: Value = server.get("/api/v1/namespaces/doomed").await.json();
    finalized["spec"]["finalizers"] = json!([]);
    let response = server
        .put("/api/v1/namespaces/doomed/finalize", &finalized)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(
        server.delete("/api/v1/namespaces/doomed").await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.get("/api/v1/namespaces/doomed").await.status,
        StatusCode::NOT_FOUND
    );
    let immortal = server.delete("/api/v1/namespaces/default").await;
    assert_eq!(immortal.status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test]
async fn watch_older_than_the_cache_window_replays_from_the_store() {
    let server = TestServer::start_with(|config| config.cache_options.max_events = 2).await;
    let first = server.post(CM, &configmap("w0", &[])).await.json();
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    for index in 1..6 {
        server.post(CM, &configmap(&format!("w{index}"), &[])).await;
    }
    let (status, _, body) = server
        .stream(&format!("{CM}?watch=true&resourceVersion={rv}"), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut frames = FrameReader::new(body);
    for index in 1..6 {
        let frame = frames.next(Duration::from_secs(5)).await.unwrap();
        assert_eq!(frame["type"], "ADDED", "{frame}");
        assert_eq!(frame["object"]["metadata"]["name"], format!("w{index}"));
    }
    server.post(CM, &configmap("live", &[])).await;
    let live = frames.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(live["object"]["metadata"]["name"], "live");
    server.stop().await;
}

#[tokio::test]
async fn events_are_served_in_both_versions_over_one_store() {
    const V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";
    const CORE: &str = "/api/v1/namespaces/default/events";
    let server = TestServer::start().await;
    let group = server.get("/apis/events.k8s.io/v1").await.json();
    // The storage version decides the hash: core/v1 Event, the same as /api/v1 events.
    assert_eq!(group["resources"][0]["storageVersionHash"], "r2yiGXH7wu8=");
    let groups = server.get("/apis").await.json();
    assert_eq!(groups["groups"][0]["name"], "events.k8s.io");

    let created = server
        .post(
            V1,
            &json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                    "metadata": {"name": "e1", "namespace": "default"},
                    "eventTime": "2026-11-26T09:00:00.000000Z",
                    "reportingController": "example.com/ctl", "reportingInstance": "inst-1",
                    "action": "Scheduling", "reason": "Scheduled",
                    "regarding": {"kind": "Pod", "name": "p1", "namespace": "default"},
                    "note": "hello", "type": "Normal"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let rv = created.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = server
        .stream(&format!("{V1}?watch=true&resourceVersion={rv}"), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut frames = FrameReader::new(body);

    // Read through core/v1: core's field names, in the order upstream writes them.
    let core = server.get(&format!("{CORE}/e1")).await.text();
    let fields = core.split("\"creationTimestamp\"").nth(1).unwrap();
    assert!(
        fields.contains(r#""involvedObject":{"kind":"Pod","namespace":"default","name":"p1"},"reason":"Scheduled","message":"hello","source":{},"firstTimestamp":null,"lastTimestamp":null,"type":"Normal","eventTime":"2026-11-26T09:00:00.000000Z","action":"Scheduling","reportingComponent":"example.com/ctl","reportingInstance":"inst-1"}"#),
        "{core}"
    );

    // A core write (PUT of a missing event creates it, as upstream) reaches events.k8s.io watchers.
    let put = server
        .put(
            &format!("{CORE}/e2"),
            &json!({"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": "e2", "namespace": "default"},
                    "involvedObject": {"kind": "Pod", "name": "p2", "namespace": "default"},
                    "reason": "Pulled", "message": "pulled", "count": 2}),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    let added = frames.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(added["object"]["regarding"]["name"], "p2");
    assert_eq!(added["object"]["note"], "pulled");
    assert_eq!(added["object"]["deprecatedCount"], 2);

    let selected = server
        .get(&format!("{V1}?fieldSelector=regarding.name%3Dp2"))
        .await
        .json();
    assert_eq!(selected["items"].as_array().unwrap().len(), 1);
    assert_eq!(selected["items"][0]["metadata"]["name"], "e2");
    let unsupported = server
        .get(&format!("{V1}?fieldSelector=involvedObject.name%3Dp2"))
        .await;
    assert_eq!(unsupported.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unsupported.json()["message"],
        "field label not supported: involvedObject.name"
    );

    // Events written through events.k8s.io must not set the deprecated fields, and may not change.
    let mut changed = server.get(&format!("{V1}/e1")).await.json();
    changed["note"] = json!("changed");
    let refused = server.put(&format!("{V1}/e1"), &changed).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.json()["message"],
        "Event \"e1\" is invalid: message: Invalid value: \"changed\": field is immutable"
    );
    server.stop().await;
}
