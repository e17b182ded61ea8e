//! Writes the admin kubeconfig that lets `kubectl` talk to this server, and the shell line that
//! points `KUBECONFIG` at it.
//!
//! The file is YAML written by hand: every value is either a fixed name, base64 text, or the
//! server URL, which is emitted as a double-quoted scalar (a JSON string is a valid YAML
//! double-quoted scalar), so no YAML serializer is needed. It is replaced atomically with mode
//! 0600 because it carries the admin private key.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::pki::{Pki, write_atomic};

/// Name of the cluster and of the context in the kubeconfig.
pub const CLUSTER_NAME: &str = "ironplane";
/// Name of the user entry in the kubeconfig.
pub const USER_NAME: &str = "admin";

/// Writes (atomically, mode 0600, creating missing parent directories) a kubeconfig at `path`
/// with cluster `ironplane` (`server_url`, the CA), user `admin` (the admin client certificate
/// and key), and context `ironplane` selected as the current context.
pub fn write_kubeconfig(path: &Path, server_url: &str, pki: &Pki) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating directory {}", parent.display()))?;
    }
    let text = render(server_url, pki)?;
    write_atomic(path, text.as_bytes(), 0o600)
        .with_context(|| format!("writing kubeconfig {}", path.display()))
}

/// The line to print for the user: `export KUBECONFIG=<absolute path>`, the path single-quoted
/// for the shell when it holds anything but `[A-Za-z0-9/._+:@%,=-]`.
pub fn export_line(path: &Path) -> anyhow::Result<String> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("making {} absolute", path.display()))?;
    let Some(text) = absolute.to_str() else {
        bail!("kubeconfig path {} is not UTF-8", absolute.display());
    };
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._+:@%,=-".contains(&b));
    Ok(if plain {
        format!("export KUBECONFIG={text}")
    } else {
        format!("export KUBECONFIG='{}'", text.replace('\'', r"'\''"))
    })
}

fn render(server_url: &str, pki: &Pki) -> anyhow::Result<String> {
    let server = serde_json::to_string(server_url).context("quoting the server URL")?;
    let b64 = |pem: &str| STANDARD.encode(pem.as_bytes());
    let mut out = String::new();
    // `write!` to a String cannot fail; the `Result` is still propagated rather than unwrapped.
    write!(
        out,
        "\
apiVersion: v1
kind: Config
clusters:
- name: {CLUSTER_NAME}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {USER_NAME}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {CLUSTER_NAME}
  context:
    cluster: {CLUSTER_NAME}
    user: {USER_NAME}
current-context: {CLUSTER_NAME}
preferences: {{}}
",
        ca = b64(&pki.ca_cert_pem),
        cert = b64(&pki.admin_cert_pem),
        key = b64(&pki.admin_key_pem),
    )
    .context("formatting the kubeconfig")?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests may panic; see STYLE.md on lints.
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::pki::PkiPaths;

    fn fake_pki() -> Pki {
        Pki {
            paths: PkiPaths::new(Path::new("/nonexistent")),
            ca_cert_pem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".into(),
            serving_cert_pem: "serving".into(),
            serving_key_pem: "serving key".into(),
            admin_cert_pem: "-----BEGIN CERTIFICATE-----\nADMIN\n-----END CERTIFICATE-----\n"
                .into(),
            admin_key_pem: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n".into(),
        }
    }

    /// The value after `key: ` on the one line that has it.
    fn value<'a>(text: &'a str, key: &str) -> &'a str {
        let prefix = format!("{key}: ");
        let hits: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix(prefix.as_str()))
            .collect();
        assert_eq!(hits.len(), 1, "{key} in\n{text}");
        hits[0]
    }

    fn decode(b64: &str) -> String {
        String::from_utf8(STANDARD.decode(b64).expect("base64")).expect("utf8")
    }

    #[test]
    fn kubeconfig_has_exact_shape_and_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("admin.kubeconfig");
        let pki = fake_pki();
        write_kubeconfig(&path, "https://127.0.0.1:6443", &pki).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");

        assert_eq!(value(&text, "server"), r#""https://127.0.0.1:6443""#);
        assert_eq!(
            decode(value(&text, "certificate-authority-data")),
            pki.ca_cert_pem
        );
        assert_eq!(
            decode(value(&text, "client-certificate-data")),
            pki.admin_cert_pem
        );
        assert_eq!(decode(value(&text, "client-key-data")), pki.admin_key_pem);
        assert_eq!(value(&text, "current-context"), "ironplane");
        assert_eq!(value(&text, "cluster"), "ironplane");
        assert_eq!(value(&text, "user"), "admin");
        assert!(!text.contains("namespace"));
        let expected = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: ironplane\n  cluster:\n    \
             server: \"https://127.0.0.1:6443\"\n    certificate-authority-data: {}\nusers:\n\
             - name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n\
             contexts:\n- name: ironplane\n  context:\n    cluster: ironplane\n    user: admin\n\
             current-context: ironplane\npreferences: {{}}\n",
            STANDARD.encode(&pki.ca_cert_pem),
            STANDARD.encode(&pki.admin_cert_pem),
            STANDARD.encode(&pki.admin_key_pem),
        );
        assert_eq!(text, expected);

        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn rewrite_replaces_and_quotes_odd_urls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig");
        let pki = fake_pki();
        write_kubeconfig(&path, "https://a:1", &pki).expect("write");
        write_kubeconfig(&path, "https://h:1/p\"q\\r", &pki).expect("rewrite");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(value(&text, "server"), r#""https://h:1/p\"q\\r""#);
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn export_line_table() {
        fn check(path: &str, expected: &str) {
            assert_eq!(
                export_line(Path::new(path)).expect("line"),
                expected,
                "{path}"
            );
        }
        check(
            "/var/lib/ironplane/admin.kubeconfig",
            "export KUBECONFIG=/var/lib/ironplane/admin.kubeconfig",
        );
        check("/tmp/my dir/kc", "export KUBECONFIG='/tmp/my dir/kc'");
        check("/tmp/it's", r"export KUBECONFIG='/tmp/it'\''s'");
        check("/tmp/$HOME", "export KUBECONFIG='/tmp/$HOME'");
        let relative = export_line(Path::new("kc")).expect("line");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            relative,
            format!("export KUBECONFIG={}", cwd.join("kc").display())
        );
    }
}
