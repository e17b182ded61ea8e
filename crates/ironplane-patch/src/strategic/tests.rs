//! Table-driven tests of strategic merge patch. The expectations of the `upstream_cases`
//! table are what kube-apiserver's code (apimachinery 1.28 `strategicpatch` with the PATCH
//! handler's error mapping) produces for the same object, patch and Go type.

use super::*;
use ironplane_apimachinery::schema::{FieldSchema as F, meta};
use serde_json::json;

use PatchError::{BadRequest, Internal, Unprocessable};

const CORE: &str = "io.k8s.api.core.v1";

static CONFIG_MAP: StructSchema = StructSchema {
    go_name: "v1.ConfigMap",
    package: CORE,
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("immutable", Schema::Bool).pointer(),
        F::new("data", Schema::Map(&Schema::String)),
        F::new("binaryData", Schema::Map(&Schema::Bytes)),
    ],
};

static OBJECT_REFERENCE: StructSchema = StructSchema {
    go_name: "v1.ObjectReference",
    package: CORE,
    fields: &[
        F::new("kind", Schema::String),
        F::new("namespace", Schema::String),
        F::new("name", Schema::String),
        F::new("uid", Schema::String),
    ],
};

static LOCAL_OBJECT_REFERENCE: StructSchema = StructSchema {
    go_name: "v1.LocalObjectReference",
    package: CORE,
    fields: &[F::new("name", Schema::String)],
};

static SERVICE_ACCOUNT: StructSchema = StructSchema {
    go_name: "v1.ServiceAccount",
    package: CORE,
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new(
            "secrets",
            Schema::List(
                &Schema::Struct(&OBJECT_REFERENCE),
                ListPatch::MergeByKey("name"),
            ),
        ),
        F::new(
            "imagePullSecrets",
            Schema::List(&Schema::Struct(&LOCAL_OBJECT_REFERENCE), ListPatch::Replace),
        ),
        F::new("automountServiceAccountToken", Schema::Bool).pointer(),
    ],
};

static ENV_VAR: StructSchema = StructSchema {
    go_name: "v1.EnvVar",
    package: CORE,
    fields: &[
        F::new("name", Schema::String),
        F::new("value", Schema::String),
    ],
};

static CONTAINER_PORT: StructSchema = StructSchema {
    go_name: "v1.ContainerPort",
    package: CORE,
    fields: &[
        F::new("name", Schema::String),
        F::new("containerPort", Schema::Int32),
        F::new("protocol", Schema::String),
    ],
};

static CONTAINER: StructSchema = StructSchema {
    go_name: "v1.Container",
    package: CORE,
    fields: &[
        F::new("name", Schema::String),
        F::new("image", Schema::String),
        F::new("args", Schema::List(&Schema::String, ListPatch::Replace)),
        F::new(
            "ports",
            Schema::List(
                &Schema::Struct(&CONTAINER_PORT),
                ListPatch::MergeByKey("containerPort"),
            ),
        ),
        F::new(
            "env",
            Schema::List(&Schema::Struct(&ENV_VAR), ListPatch::MergeByKey("name")),
        ),
    ],
};

static CONFIG_MAP_SOURCE: StructSchema = StructSchema {
    go_name: "v1.ConfigMapVolumeSource",
    package: CORE,
    fields: &[F::new("name", Schema::String)],
};

static EMPTY_DIR: StructSchema = StructSchema {
    go_name: "v1.EmptyDirVolumeSource",
    package: CORE,
    fields: &[F::new("medium", Schema::String)],
};

static VOLUME: StructSchema = StructSchema {
    go_name: "v1.Volume",
    package: CORE,
    fields: &[
        F::new("name", Schema::String),
        F::new("emptyDir", Schema::Struct(&EMPTY_DIR)),
        F::new("configMap", Schema::Struct(&CONFIG_MAP_SOURCE)),
    ],
};

static TOLERATION: StructSchema = StructSchema {
    go_name: "v1.Toleration",
    package: CORE,
    fields: &[
        F::new("key", Schema::String),
        F::new("operator", Schema::String),
        F::new("value", Schema::String),
    ],
};

static POD_SPEC: StructSchema = StructSchema {
    go_name: "v1.PodSpec",
    package: CORE,
    fields: &[
        F::new(
            "volumes",
            Schema::List(&Schema::Struct(&VOLUME), ListPatch::MergeByKey("name")),
        ),
        F::new(
            "containers",
            Schema::List(&Schema::Struct(&CONTAINER), ListPatch::MergeByKey("name")),
        ),
        F::new("nodeSelector", Schema::Map(&Schema::String)),
        F::new(
            "tolerations",
            Schema::List(&Schema::Struct(&TOLERATION), ListPatch::Replace),
        ),
    ],
};

static POD: StructSchema = StructSchema {
    go_name: "v1.Pod",
    package: CORE,
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("spec", Schema::Struct(&POD_SPEC)),
    ],
};

/// A kind with the shapes built-in kinds do not have: maps of structs, maps of lists, and
/// free-form JSON.
static WIDGET: StructSchema = StructSchema {
    go_name: "v1.Widget",
    package: "io.example.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("byName", Schema::Map(&Schema::Struct(&CONTAINER))),
        F::new(
            "groups",
            Schema::Map(&Schema::List(&Schema::String, ListPatch::MergeScalars)),
        ),
        F::new("raw", Schema::Any),
    ],
};

struct Case {
    name: &'static str,
    schema: &'static StructSchema,
    doc: &'static str,
    patch: &'static str,
    expected: Result<&'static str, PatchError>,
}

fn run(cases: Vec<Case>) {
    for case in cases {
        let doc: Value = serde_json::from_str(case.doc).unwrap();
        let result = apply_strategic_merge_patch(&doc, case.patch.as_bytes(), case.schema);
        let expected = case
            .expected
            .map(|text| serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(result, expected, "case {}", case.name);
    }
}

#[test]
fn upstream_cases() {
    run(vec![
        Case {
            name: "apply-configmap",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":"default","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"a\":\"1\",\"b\":\"2\"}}\n"}},"data":{"a":"1","b":"2","x":"live"}}"#,
            patch: r#"{"data":{"b":null,"c":"3"},"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"a\":\"1\",\"c\":\"3\"}}\n"}}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","data":{"a":"1","c":"3","x":"live"},"kind":"ConfigMap","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"a\":\"1\",\"c\":\"3\"}}\n"},"name":"cm","namespace":"default"}}"#,
            ),
        },
        Case {
            name: "apply-serviceaccount-secrets",
            schema: &SERVICE_ACCOUNT,
            doc: r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa","namespace":"default"},"secrets":[{"name":"s1"},{"name":"token-x"},{"name":"s2"}],"imagePullSecrets":[{"name":"p1"}]}"#,
            patch: r#"{"$setElementOrder/secrets":[{"name":"s2"},{"name":"s3"}],"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}\n"}},"secrets":[{"name":"s3"},{"$patch":"delete","name":"s1"}]}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","imagePullSecrets":[{"name":"p1"}],"kind":"ServiceAccount","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}\n"},"name":"sa","namespace":"default"},"secrets":[{"name":"token-x"},{"name":"s2"},{"name":"s3"}]}"#,
            ),
        },
        Case {
            name: "serviceaccount-secrets-merge",
            schema: &SERVICE_ACCOUNT,
            doc: r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa","namespace":"default"},"secrets":[{"name":"s1"},{"name":"token-x"},{"name":"s2"}],"imagePullSecrets":[{"name":"p1"}]}"#,
            patch: r#"{"secrets":[{"name":"s4"},{"name":"s1","namespace":"ns"}]}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","imagePullSecrets":[{"name":"p1"}],"kind":"ServiceAccount","metadata":{"name":"sa","namespace":"default"},"secrets":[{"name":"s4"},{"name":"s1","namespace":"ns"},{"name":"token-x"},{"name":"s2"}]}"#,
            ),
        },
        Case {
            name: "serviceaccount-replace-list-keeps-directives",
            schema: &SERVICE_ACCOUNT,
            doc: r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa","namespace":"default"},"secrets":[{"name":"s1"},{"name":"token-x"},{"name":"s2"}],"imagePullSecrets":[{"name":"p1"}]}"#,
            patch: r#"{"imagePullSecrets":[{"name":"p2"},{"$patch":"delete","name":"p1"}]}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","imagePullSecrets":[{"name":"p2"},{"$patch":"delete","name":"p1"}],"kind":"ServiceAccount","metadata":{"name":"sa","namespace":"default"},"secrets":[{"name":"s1"},{"name":"token-x"},{"name":"s2"}]}"#,
            ),
        },
        Case {
            name: "serviceaccount-replace-list-new-drops-directives",
            schema: &SERVICE_ACCOUNT,
            doc: r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa"}}"#,
            patch: r#"{"imagePullSecrets":[{"name":"p2"},{"$patch":"delete","name":"p1"}]}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","imagePullSecrets":[{"name":"p2"}],"kind":"ServiceAccount","metadata":{"name":"sa"}}"#,
            ),
        },
        Case {
            name: "apply-finalizers",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$setElementOrder/finalizers":["c","d","a"],"finalizers":["d"],"$deleteFromPrimitiveList/finalizers":["b"]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["c","d","a"],"labels":{"app":"x","tier":"web"},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}]}}"#,
            ),
        },
        Case {
            name: "finalizers-merge-as-set",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"finalizers":["d","b"]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["d","a","b","c"],"labels":{"app":"x","tier":"web"},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}]}}"#,
            ),
        },
        Case {
            name: "finalizers-delete-list",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a","c","z"]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["b"],"labels":{"app":"x","tier":"web"},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}]}}"#,
            ),
        },
        Case {
            name: "owner-references-by-uid",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"ownerReferences":[{"uid":"u2","controller":true},{"apiVersion":"v1","kind":"Y","name":"o3","uid":"u3"}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["a","b","c"],"labels":{"app":"x","tier":"web"},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","controller":true,"kind":"X","name":"o2","uid":"u2"},{"apiVersion":"v1","kind":"Y","name":"o3","uid":"u3"}]}}"#,
            ),
        },
        Case {
            name: "owner-references-ordered",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$setElementOrder/ownerReferences":[{"uid":"u3"},{"uid":"u1"}],"ownerReferences":[{"apiVersion":"v1","kind":"Y","name":"o3","uid":"u3"},{"$patch":"delete","uid":"u2"}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["a","b","c"],"labels":{"app":"x","tier":"web"},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"Y","name":"o3","uid":"u3"},{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"}]}}"#,
            ),
        },
        Case {
            name: "labels",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"labels":{"app":null,"env":"prod"}}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["a","b","c"],"labels":{"env":"prod","tier":"web"},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}]}}"#,
            ),
        },
        Case {
            name: "labels-replace",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"labels":{"$patch":"replace","only":"1"}}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["a","b","c"],"labels":{"only":"1"},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}]}}"#,
            ),
        },
        Case {
            name: "labels-delete",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"labels":{"$patch":"delete"}}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["a","b","c"],"labels":{},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}]}}"#,
            ),
        },
        Case {
            name: "map-merge-directive-is-an-error",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"labels":{"$patch":"merge"}}}"#,
            expected: Err(Internal(
                "unknown patch type: merge in map: map[$patch:merge]".into(),
            )),
        },
        Case {
            name: "top-level-delete",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"$patch":"delete"}"#,
            expected: Ok(r#"{}"#),
        },
        Case {
            name: "null-body",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"null"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["a","b","c"],"labels":{"app":"x","tier":"web"},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}]}}"#,
            ),
        },
        Case {
            name: "array-body",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"[]"#,
            expected: Err(BadRequest(
                "json: cannot unmarshal array into Go value of type map[string]interface {}".into(),
            )),
        },
        Case {
            name: "syntax-error",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":}"#,
            expected: Err(BadRequest(
                "invalid character '}' looking for beginning of value".into(),
            )),
        },
        Case {
            name: "retain-keys-bad-format",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$retainKeys":"name"}}"#,
            expected: Err(BadRequest("invalid patch format of retainKeys".into())),
        },
        Case {
            name: "retain-keys-missing-key",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$retainKeys":["name"],"labels":{"a":"b"}}}"#,
            expected: Err(BadRequest("invalid patch format of retainKeys".into())),
        },
        Case {
            name: "retain-keys",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$retainKeys":["name","labels"],"labels":{"a":"b"}}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"labels":{"a":"b","app":"x","tier":"web"},"name":"cm"}}"#,
            ),
        },
        Case {
            name: "delete-list-bad-key",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$deleteFromPrimitiveListfinalizers":["a"]}}"#,
            expected: Err(BadRequest("invalid patch format of primitive list".into())),
        },
        Case {
            name: "set-order-bad-key",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$setElementOrderX/finalizers":["a"]}}"#,
            expected: Err(BadRequest(
                "invalid patch format of setElementOrder list".into(),
            )),
        },
        Case {
            name: "set-order-not-a-list",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$setElementOrder/finalizers":"a"}}"#,
            expected: Err(Internal(
                "expected a []interface {}, but received a string".into(),
            )),
        },
        Case {
            name: "set-order-mismatch",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"$setElementOrder/finalizers":["b","a"],"finalizers":["a","b"]}}"#,
            expected: Err(Internal(
                "The order in patch list:\n[a b]\n doesn't match $setElementOrder list:\n[b a]\n"
                    .into(),
            )),
        },
        Case {
            name: "set-order-empty-new-list",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"}}"#,
            patch: r#"{"metadata":{"$setElementOrder/finalizers":[],"finalizers":["a","b","c"]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["c","b","a"],"name":"cm"}}"#,
            ),
        },
        Case {
            name: "scalars-without-merge-key",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"finalizers":[{"a":1}]}}"#,
            expected: Err(Internal(
                "list element types are not identical: [[a b c] [map[a:1]]]".into(),
            )),
        },
        Case {
            name: "list-of-lists",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"finalizers":[["a"]]}}"#,
            expected: Err(Internal(
                "list element types are not identical: [[a b c] [[a]]]".into(),
            )),
        },
        Case {
            name: "mixed-element-types",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"finalizers":[1]}}"#,
            expected: Err(Internal(
                "list element types are not identical: [[a b c] [1]]".into(),
            )),
        },
        Case {
            name: "list-merge-directive",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"ownerReferences":[{"$patch":"merge"}]}}"#,
            expected: Err(Internal(
                "merging lists cannot yet be specified in the patch".into(),
            )),
        },
        Case {
            name: "list-unknown-directive",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"ownerReferences":[{"$patch":"bogus","uid":"u1"}]}}"#,
            expected: Err(Internal(
                "unknown patch type: bogus in map: map[$patch:bogus uid:u1]".into(),
            )),
        },
        Case {
            name: "list-delete-without-key",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"ownerReferences":[{"$patch":"delete","name":"o1"}]}}"#,
            expected: Err(Internal(
                "map: map[$patch:delete name:o1] does not contain declared merge key: uid".into(),
            )),
        },
        Case {
            name: "missing-merge-key",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"ownerReferences":[{"name":"o9"}]}}"#,
            expected: Err(Internal(
                "map: map[name:o9] does not contain declared merge key: uid".into(),
            )),
        },
        Case {
            name: "list-replace-directive",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","finalizers":["a","b","c"],"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"o1","uid":"u1"},{"apiVersion":"v1","kind":"X","name":"o2","uid":"u2"}],"labels":{"app":"x","tier":"web"}}}"#,
            patch: r#"{"metadata":{"ownerReferences":[{"$patch":"replace"},{"apiVersion":"v1","kind":"Z","name":"o9","uid":"u9"}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"finalizers":["a","b","c"],"labels":{"app":"x","tier":"web"},"name":"cm","ownerReferences":[{"apiVersion":"v1","kind":"Z","name":"o9","uid":"u9"}]}}"#,
            ),
        },
        Case {
            name: "new-value-cleaned",
            schema: &CONFIG_MAP,
            doc: r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"}}"#,
            patch: r#"{"data":{"a":"1","b":null},"metadata":{"labels":{"x":null,"y":"1"},"ownerReferences":[{"uid":"u1","name":null},{"$patch":"delete","uid":"u2"}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","data":{"a":"1"},"kind":"ConfigMap","metadata":{"labels":{"y":"1"},"name":"cm","ownerReferences":[{"uid":"u1"}]}}"#,
            ),
        },
        Case {
            name: "apply-container-image-and-env",
            schema: &POD,
            doc: r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}]},{"name":"sidecar","image":"proxy"}],"volumes":[{"name":"data","emptyDir":{}}],"nodeSelector":{"zone":"a","disk":"ssd"},"tolerations":[{"key":"t1","operator":"Exists"}]}}"#,
            patch: r#"{"spec":{"$setElementOrder/containers":[{"name":"app"}],"containers":[{"$setElementOrder/env":[{"name":"A"},{"name":"C"}],"env":[{"name":"C","value":"3"},{"$patch":"delete","name":"B"}],"image":"app:2","name":"app"}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"C","value":"3"}],"image":"app:2","name":"app","ports":[{"containerPort":80}]},{"image":"proxy","name":"sidecar"}],"nodeSelector":{"disk":"ssd","zone":"a"},"tolerations":[{"key":"t1","operator":"Exists"}],"volumes":[{"emptyDir":{},"name":"data"}]}}"#,
            ),
        },
        Case {
            name: "apply-replaces-container-keeps-sidecar",
            schema: &POD,
            doc: r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}]},{"name":"sidecar","image":"proxy"}],"volumes":[{"name":"data","emptyDir":{}}],"nodeSelector":{"zone":"a","disk":"ssd"},"tolerations":[{"key":"t1","operator":"Exists"}]}}"#,
            patch: r#"{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"name":"web","image":"web:1"},{"$patch":"delete","name":"app"}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"image":"proxy","name":"sidecar"},{"image":"web:1","name":"web"}],"nodeSelector":{"disk":"ssd","zone":"a"},"tolerations":[{"key":"t1","operator":"Exists"}],"volumes":[{"emptyDir":{},"name":"data"}]}}"#,
            ),
        },
        Case {
            name: "container-ports-by-container-port",
            schema: &POD,
            doc: r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}]},{"name":"sidecar","image":"proxy"}],"volumes":[{"name":"data","emptyDir":{}}],"nodeSelector":{"zone":"a","disk":"ssd"},"tolerations":[{"key":"t1","operator":"Exists"}]}}"#,
            patch: r#"{"spec":{"containers":[{"name":"app","ports":[{"containerPort":443,"name":"https"},{"containerPort":80,"name":"http"}]}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"app:1","name":"app","ports":[{"containerPort":443,"name":"https"},{"containerPort":80,"name":"http"}]},{"image":"proxy","name":"sidecar"}],"nodeSelector":{"disk":"ssd","zone":"a"},"tolerations":[{"key":"t1","operator":"Exists"}],"volumes":[{"emptyDir":{},"name":"data"}]}}"#,
            ),
        },
        Case {
            name: "volume-retain-keys",
            schema: &POD,
            doc: r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}]},{"name":"sidecar","image":"proxy"}],"volumes":[{"name":"data","emptyDir":{}}],"nodeSelector":{"zone":"a","disk":"ssd"},"tolerations":[{"key":"t1","operator":"Exists"}]}}"#,
            patch: r#"{"spec":{"$setElementOrder/volumes":[{"name":"data"}],"volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cm"},"name":"data"}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"app:1","name":"app","ports":[{"containerPort":80}]},{"image":"proxy","name":"sidecar"}],"nodeSelector":{"disk":"ssd","zone":"a"},"tolerations":[{"key":"t1","operator":"Exists"}],"volumes":[{"configMap":{"name":"cm"},"name":"data"}]}}"#,
            ),
        },
        Case {
            name: "node-selector-replace",
            schema: &POD,
            doc: r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}]},{"name":"sidecar","image":"proxy"}],"volumes":[{"name":"data","emptyDir":{}}],"nodeSelector":{"zone":"a","disk":"ssd"},"tolerations":[{"key":"t1","operator":"Exists"}]}}"#,
            patch: r#"{"spec":{"nodeSelector":{"$patch":"replace","zone":"b"}}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"app:1","name":"app","ports":[{"containerPort":80}]},{"image":"proxy","name":"sidecar"}],"nodeSelector":{"zone":"b"},"tolerations":[{"key":"t1","operator":"Exists"}],"volumes":[{"emptyDir":{},"name":"data"}]}}"#,
            ),
        },
        Case {
            name: "tolerations-replaced",
            schema: &POD,
            doc: r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}]},{"name":"sidecar","image":"proxy"}],"volumes":[{"name":"data","emptyDir":{}}],"nodeSelector":{"zone":"a","disk":"ssd"},"tolerations":[{"key":"t1","operator":"Exists"}]}}"#,
            patch: r#"{"spec":{"tolerations":[{"key":"t2","operator":"Equal","value":"v"}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"app:1","name":"app","ports":[{"containerPort":80}]},{"image":"proxy","name":"sidecar"}],"nodeSelector":{"disk":"ssd","zone":"a"},"tolerations":[{"key":"t2","operator":"Equal","value":"v"}],"volumes":[{"emptyDir":{},"name":"data"}]}}"#,
            ),
        },
        Case {
            name: "containers-list-replace",
            schema: &POD,
            doc: r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}]},{"name":"sidecar","image":"proxy"}],"volumes":[{"name":"data","emptyDir":{}}],"nodeSelector":{"zone":"a","disk":"ssd"},"tolerations":[{"key":"t1","operator":"Exists"}]}}"#,
            patch: r#"{"spec":{"containers":[{"$patch":"replace"},{"name":"only","image":"x"}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"image":"x","name":"only"}],"nodeSelector":{"disk":"ssd","zone":"a"},"tolerations":[{"key":"t1","operator":"Exists"}],"volumes":[{"emptyDir":{},"name":"data"}]}}"#,
            ),
        },
        Case {
            name: "args-replace-strategy",
            schema: &POD,
            doc: r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","args":["a","b"]}]}}"#,
            patch: r#"{"spec":{"containers":[{"name":"app","args":["c"]}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"args":["c"],"name":"app"}]}}"#,
            ),
        },
        Case {
            name: "type-change-replaces",
            schema: &POD,
            doc: r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}]},{"name":"sidecar","image":"proxy"}],"volumes":[{"name":"data","emptyDir":{}}],"nodeSelector":{"zone":"a","disk":"ssd"},"tolerations":[{"key":"t1","operator":"Exists"}]}}"#,
            patch: r#"{"spec":{"nodeSelector":"x","containers":[{"name":"app","ports":null,"image":{"a":null,"b":1}}]}}"#,
            expected: Ok(
                r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":{"b":1},"name":"app"},{"image":"proxy","name":"sidecar"}],"nodeSelector":"x","tolerations":[{"key":"t1","operator":"Exists"}],"volumes":[{"emptyDir":{},"name":"data"}]}}"#,
            ),
        },
        Case {
            name: "list-of-lists-422",
            schema: &CONFIG_MAP,
            doc: r#"{"metadata":{"name":"cm","finalizers":[]}}"#,
            patch: r#"{"metadata":{"finalizers":[["a"]]}}"#,
            expected: Err(Unprocessable("lists of lists are not supported".into())),
        },
    ]);
}

#[test]
fn merges_maps_of_structs_and_lists_by_the_value_schema() {
    run(vec![
        Case {
            // New elements go first, as upstream puts them (see serviceaccount-secrets-merge).
            name: "map of structs: lists inside merge by key",
            schema: &WIDGET,
            doc: r#"{"byName":{"a":{"name":"a","env":[{"name":"X","value":"1"}]}}}"#,
            patch: r#"{"byName":{"a":{"env":[{"name":"Y","value":"2"}]},"b":{"name":"b"}}}"#,
            expected: Ok(
                r#"{"byName":{"a":{"name":"a","env":[{"name":"Y","value":"2"},{"name":"X","value":"1"}]},"b":{"name":"b"}}}"#,
            ),
        },
        Case {
            name: "map of lists: scalars merge as sets, with deletions",
            schema: &WIDGET,
            doc: r#"{"groups":{"g":["a","b"],"h":["x"]}}"#,
            patch: r#"{"groups":{"g":["c","a"],"$deleteFromPrimitiveList/h":["x"],"h":null}}"#,
            expected: Ok(r#"{"groups":{"g":["c","a","b"]}}"#),
        },
        Case {
            name: "free-form JSON merges like a merge patch and keeps directives working",
            schema: &WIDGET,
            doc: r#"{"raw":{"a":{"b":1,"c":[1,2]},"d":true,"f":{"x":1}}}"#,
            patch: r#"{"raw":{"a":{"b":null,"c":[3],"e":{"$patch":"delete"}},"f":{"$patch":"replace","g":1}}}"#,
            expected: Ok(r#"{"raw":{"a":{"c":[3]},"d":true,"f":{"g":1}}}"#),
        },
        Case {
            name: "fields the schema does not know merge as plain JSON",
            schema: &WIDGET,
            doc: r#"{"extra":{"a":1,"l":[{"name":"x"}]}}"#,
            patch: r#"{"extra":{"b":2,"l":[{"name":"y"}]},"new":{"n":null,"k":1}}"#,
            expected: Ok(r#"{"extra":{"a":1,"b":2,"l":[{"name":"y"}]},"new":{"k":1}}"#),
        },
    ]);
}

#[test]
fn kubectl_apply_to_a_pod_with_an_injected_sidecar() {
    // last-applied had [app]; the new config has [web]; a webhook added `sidecar`. Upstream
    // keeps the sidecar first, because the merge appended `web` into the slot `app` left.
    run(vec![Case {
        name: "sidecar",
        schema: &POD,
        doc: r#"{"spec":{"containers":[{"name":"app"},{"name":"sidecar"}]}}"#,
        patch: r#"{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"name":"web","image":"web:1"},{"$patch":"delete","name":"app"}]}}"#,
        expected: Ok(
            r#"{"spec":{"containers":[{"name":"sidecar"},{"name":"web","image":"web:1"}]}}"#,
        ),
    }]);
}

#[test]
fn deletes_from_primitive_lists_after_adding() {
    run(vec![Case {
        name: "add and delete the same finalizer",
        schema: &CONFIG_MAP,
        doc: r#"{"metadata":{"finalizers":["a","b"]}}"#,
        patch: r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a","c"],"finalizers":["c"]}}"#,
        expected: Ok(r#"{"metadata":{"finalizers":["b"]}}"#),
    }]);
}

#[test]
fn rejects_patches_nested_too_deeply() {
    let depth = MAX_DEPTH + 1;
    let patch = format!("{}{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let err = apply_strategic_merge_patch(&json!({}), patch.as_bytes(), &CONFIG_MAP).unwrap_err();
    assert_eq!(
        err,
        BadRequest("invalid character '{' exceeded max depth".into())
    );

    let depth = MAX_DEPTH - 1;
    let patch = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    assert!(apply_strategic_merge_patch(&json!({}), patch.as_bytes(), &CONFIG_MAP).is_ok());
}

#[test]
fn go_stable_sort_matches_go_on_a_broken_comparison() {
    // With "less" always true, Go's insertion sort reverses each block of 20 and SymMerge
    // then interleaves the blocks in its own way; these are Go's outputs.
    let mut small: Vec<u32> = (0..5).collect();
    go_sort_stable(&mut small, &|_: &u32, _: &u32| true);
    assert_eq!(small, [4, 3, 2, 1, 0]);

    let mut ordered: Vec<u32> = (0..50).rev().collect();
    go_sort_stable(&mut ordered, &|a: &u32, b: &u32| a < b);
    assert_eq!(ordered, (0..50).collect::<Vec<_>>());
}
