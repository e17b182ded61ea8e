//! Criterion micro-benchmarks of the API machinery's hot paths: decoding a request body against
//! its schema, encoding an object as Go-compatible JSON, and matching label and field selectors.
//!
//! `cargo bench -p ironplane-apimachinery --bench hot_paths`

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ironplane_apimachinery::object::{labels_of, splice_resource_version};
use ironplane_apimachinery::schema::{self, FieldSchema as F, Schema, StructSchema, meta};
use ironplane_apimachinery::{Object, fields, labels};

static CONFIG_MAP: StructSchema = StructSchema {
    go_name: "v1.ConfigMap",
    package: "io.k8s.api.core.v1",
    fields: &[
        meta::OBJECT_FIELDS[0],
        meta::OBJECT_FIELDS[1],
        meta::OBJECT_FIELDS[2],
        F::new("immutable", Schema::Bool).pointer().tag(4),
        F::new("data", Schema::Map(&Schema::String)).tag(2),
        F::new("binaryData", Schema::Map(&Schema::Bytes)).tag(3),
    ],
};

/// A 1 KiB ConfigMap as a client sends it.
fn body() -> Vec<u8> {
    let object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "settings",
            "namespace": "default",
            "labels": {"app": "web", "tier": "frontend", "release": "stable"},
            "annotations": {"owner": "team-a"}
        },
        "data": {"config.yaml": "x".repeat(1024)}
    });
    serde_json::to_vec(&object).unwrap()
}

fn decode(c: &mut Criterion) {
    let body = body();
    c.bench_function("decode 1 KiB ConfigMap (parse + schema + metadata)", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_slice(black_box(&body)).unwrap();
            let decoded = schema::decode(value, &CONFIG_MAP).unwrap();
            Object::from_map(decoded.object).unwrap()
        })
    });
}

fn encode(c: &mut Criterion) {
    let value: serde_json::Value = serde_json::from_slice(&body()).unwrap();
    let object = Object::from_map(schema::decode(value, &CONFIG_MAP).unwrap().object).unwrap();
    c.bench_function("encode 1 KiB ConfigMap (Go-compatible JSON)", |b| {
        b.iter(|| black_box(&object).to_json())
    });
    let stored = object.to_json();
    c.bench_function("decode stored 1 KiB ConfigMap (watch cache path)", |b| {
        b.iter(|| Object::from_json(black_box(&stored)).unwrap())
    });
    // What the watch cache and a write's response do with the stored bytes instead of decoding.
    let mut created = object.clone();
    created.metadata.uid = "0b5a1c7e-1111-4222-8333-944455556666".into();
    created.metadata.creation_timestamp = Some("2026-11-26T00:00:00Z".into());
    let stored = created.to_json();
    c.bench_function(
        "splice resourceVersion + read labels of a stored 1 KiB ConfigMap",
        |b| {
            b.iter(|| {
                let json = splice_resource_version(black_box(&stored), 123_456).unwrap();
                (labels_of(&json).unwrap(), json)
            })
        },
    );
}

fn selectors(c: &mut Criterion) {
    let labels: BTreeMap<String, String> =
        [("app", "web"), ("tier", "frontend"), ("release", "stable")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    let selector = labels::Selector::parse("app=web,tier in (frontend,backend),!canary").unwrap();
    c.bench_function("label selector: 3 requirements against 3 labels", |b| {
        b.iter(|| black_box(&selector).matches(black_box(&labels)))
    });
    c.bench_function("label selector: parse 3 requirements", |b| {
        b.iter(|| {
            labels::Selector::parse(black_box("app=web,tier in (frontend,backend),!canary"))
                .unwrap()
        })
    });
    let fields_selector = fields::Selector::parse("metadata.name=settings,type!=Opaque").unwrap();
    c.bench_function("field selector: 2 terms", |b| {
        b.iter(|| {
            black_box(&fields_selector).matches_fn(|name| match name {
                "metadata.name" => Some("settings".to_owned()),
                "type" => Some("kubernetes.io/tls".to_owned()),
                _ => None,
            })
        })
    });
}

criterion_group!(benches, decode, encode, selectors);
criterion_main!(benches);
