//! Build script: notes whether an `etcd` binary is installed, so that the contract suite's test
//! file can report "skipped: etcd not installed" instead of failing on a developer machine without
//! etcd. In CI (`CI=true`) the suite is always compiled in, and a missing etcd fails it.

use std::path::PathBuf;

fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ETCD_BIN") {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(etcd_missing)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=ETCD_BIN");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-changed=build.rs");
    match etcd_binary() {
        Some(path) => println!("cargo::rerun-if-changed={}", path.display()),
        None => {
            // Look again on every build, so that installing etcd takes effect.
            println!("cargo::rerun-if-changed=/usr/bin/etcd");
            if std::env::var("CI").as_deref() != Ok("true") {
                println!("cargo::rustc-cfg=etcd_missing");
            }
        }
    }
}
