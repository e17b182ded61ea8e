//! Reads kubeconfig files as kubectl does and resolves one context into what a connection needs:
//! the server URL (checked against the loopback rule), the CA, a client certificate and key, or
//! a bearer token.
//!
//! Files come from `--kubeconfig`, else each path of `$KUBECONFIG` (colon-separated; the first
//! file to define a name wins, as kubectl merges them), else `~/.kube/config`. Relative file
//! references are resolved against the directory of the kubeconfig that names them.
//! `exec` and `auth-provider` plugins are not supported.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::target::ServerUrl;

/// One kubeconfig file as far as this tool reads it; unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(rename = "current-context", default)]
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Debug, Deserialize)]
struct NamedContext {
    name: String,
    context: ContextEntry,
}

#[derive(Debug, Clone, Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority")]
    certificate_authority: Option<String>,
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure_skip_tls_verify: bool,
    #[serde(rename = "tls-server-name")]
    tls_server_name: Option<String>,
    #[serde(skip)]
    base: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct User {
    #[serde(rename = "client-certificate")]
    client_certificate: Option<String>,
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-key")]
    client_key: Option<String>,
    #[serde(rename = "client-key-data")]
    client_key_data: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    exec: Option<serde::de::IgnoredAny>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<serde::de::IgnoredAny>,
    username: Option<String>,
    #[serde(skip)]
    base: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
struct ContextEntry {
    cluster: String,
    #[serde(default)]
    user: String,
}

/// What one context of a kubeconfig resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `context "<name>" of <files>`, for messages.
    pub source: String,
    /// The server.
    pub server: ServerUrl,
    /// PEM bundle of CA certificates to trust; none means the system has none to offer.
    pub ca_pem: Option<Vec<u8>>,
    /// `insecure-skip-tls-verify`.
    pub insecure: bool,
    /// `tls-server-name`, overriding the host for certificate verification.
    pub tls_server_name: Option<String>,
    /// Client certificate chain and key, PEM.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Bearer token.
    pub token: Option<String>,
}

/// The kubeconfig files to read: `explicit`, else `$KUBECONFIG`'s paths, else `~/.kube/config`.
pub fn default_paths(explicit: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    if let Some(path) = explicit {
        return Ok(vec![path.to_owned()]);
    }
    if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return Ok(paths);
        }
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(vec![Path::new(&home).join(".kube").join("config")]),
        None => Err("no kubeconfig: give --kubeconfig, or set KUBECONFIG or HOME".into()),
    }
}

/// Reads `paths` (an explicit single path must exist; in a `$KUBECONFIG` list missing files are
/// skipped as kubectl skips them) and resolves `context` (default: the current context).
pub fn load(
    paths: &[PathBuf],
    must_exist: bool,
    context: Option<&str>,
) -> anyhow::Result<Credentials> {
    let mut files = Vec::new();
    for path in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !must_exist => continue,
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot read kubeconfig {}", path.display()));
            }
        };
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        let file = parse(&text, &base).with_context(|| format!("kubeconfig {}", path.display()))?;
        files.push(file);
    }
    let names = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    if files.is_empty() {
        bail!("no kubeconfig found at {names}; give --kubeconfig or set KUBECONFIG");
    }
    resolve(&merge(files), context, &names)
}

/// Parses one file; relative paths in it are resolved against `base`.
fn parse(text: &str, base: &Path) -> anyhow::Result<File> {
    if text.trim().is_empty() {
        return Ok(File::default());
    }
    let mut file: File =
        serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("invalid YAML: {e}"))?;
    for cluster in &mut file.clusters {
        cluster.cluster.base = base.to_owned();
    }
    for user in &mut file.users {
        user.user.base = base.to_owned();
    }
    Ok(file)
}

/// kubectl's merge: the first definition of each name wins, and the first current-context set.
fn merge(files: Vec<File>) -> File {
    let mut merged = File::default();
    for file in files {
        if merged.current_context.as_deref().is_none_or(str::is_empty) {
            merged.current_context = file.current_context;
        }
        for c in file.clusters {
            if !merged.clusters.iter().any(|m| m.name == c.name) {
                merged.clusters.push(c);
            }
        }
        for u in file.users {
            if !merged.users.iter().any(|m| m.name == u.name) {
                merged.users.push(u);
            }
        }
        for c in file.contexts {
            if !merged.contexts.iter().any(|m| m.name == c.name) {
                merged.contexts.push(c);
            }
        }
    }
    merged
}

fn resolve(file: &File, context: Option<&str>, names: &str) -> anyhow::Result<Credentials> {
    let context_name = match context {
        Some(name) => name.to_owned(),
        None => match file.current_context.as_deref().filter(|c| !c.is_empty()) {
            Some(name) => name.to_owned(),
            None => bail!("kubeconfig {names} has no current-context; give --context"),
        },
    };
    let source = format!("context {context_name:?} of {names}");
    let Some(entry) = file.contexts.iter().find(|c| c.name == context_name) else {
        bail!("kubeconfig {names} has no context {context_name:?}");
    };
    let Some(cluster) = file
        .clusters
        .iter()
        .find(|c| c.name == entry.context.cluster)
    else {
        bail!(
            "{source} names cluster {:?}, which is not defined",
            entry.context.cluster
        );
    };
    let cluster = &cluster.cluster;
    let user = if entry.context.user.is_empty() {
        User::default()
    } else {
        match file.users.iter().find(|u| u.name == entry.context.user) {
            Some(user) => user.user.clone(),
            None => bail!(
                "{source} names user {:?}, which is not defined",
                entry.context.user
            ),
        }
    };
    let server = ServerUrl::parse(&cluster.server).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    let ca_pem = data_or_file(
        cluster.certificate_authority_data.as_deref(),
        cluster.certificate_authority.as_deref(),
        &cluster.base,
        "certificate-authority",
    )
    .with_context(|| source.clone())?;
    if user.exec.is_some() || user.auth_provider.is_some() {
        bail!(
            "{source}: exec and auth-provider credential plugins are not supported; use a client certificate or a token"
        );
    }
    if user.username.is_some() {
        bail!(
            "{source}: basic authentication (username/password) is not supported; use a client certificate or a token"
        );
    }
    let cert = data_or_file(
        user.client_certificate_data.as_deref(),
        user.client_certificate.as_deref(),
        &user.base,
        "client-certificate",
    )
    .with_context(|| source.clone())?;
    let key = data_or_file(
        user.client_key_data.as_deref(),
        user.client_key.as_deref(),
        &user.base,
        "client-key",
    )
    .with_context(|| source.clone())?;
    let client_identity = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => bail!("{source}: user has a client certificate but no client key"),
        (None, Some(_)) => bail!("{source}: user has a client key but no client certificate"),
    };
    let token = match (&user.token, &user.token_file) {
        (Some(token), _) if !token.trim().is_empty() => Some(token.trim().to_owned()),
        (_, Some(path)) => {
            let path = relative_to(&user.base, path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{source}: cannot read tokenFile {}", path.display()))?;
            let token = text.trim();
            if token.is_empty() {
                bail!("{source}: tokenFile {} is empty", path.display());
            }
            Some(token.to_owned())
        }
        _ => None,
    };
    if server.tls && ca_pem.is_none() && !cluster.insecure_skip_tls_verify {
        bail!(
            "{source}: cluster has neither certificate-authority(-data) nor insecure-skip-tls-verify"
        );
    }
    Ok(Credentials {
        source,
        server,
        ca_pem,
        insecure: cluster.insecure_skip_tls_verify,
        tls_server_name: cluster.tls_server_name.clone(),
        client_identity,
        token,
    })
}

/// `*-data` (base64) wins over the file form, as in client-go.
fn data_or_file(
    data: Option<&str>,
    file: Option<&str>,
    base: &Path,
    what: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(data) = data.filter(|d| !d.trim().is_empty()) {
        let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| anyhow::anyhow!("{what}-data is not valid base64: {e}"))?;
        return Ok(Some(bytes));
    }
    if let Some(file) = file.filter(|f| !f.is_empty()) {
        let path = relative_to(base, file);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read {what} {}", path.display()))?;
        return Ok(Some(bytes));
    }
    Ok(None)
}

fn relative_to(base: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";

    fn b64(text: &str) -> String {
        STANDARD.encode(text)
    }

    fn load_text(text: &str, context: Option<&str>) -> anyhow::Result<Credentials> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        load(&[path], true, context)
    }

    #[test]
    fn reads_data_forms() {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: ironplane\n  cluster:\n    server: \"https://127.0.0.1:6443\"\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: ironplane\n  context:\n    cluster: ironplane\n    user: admin\ncurrent-context: ironplane\npreferences: {{}}\n",
            b64(CA),
            b64("CERT"),
            b64("KEY")
        );
        let creds = load_text(&text, None).unwrap();
        assert_eq!(creds.server.authority(), "127.0.0.1:6443");
        assert_eq!(creds.ca_pem.as_deref(), Some(CA.as_bytes()));
        assert_eq!(
            creds.client_identity,
            Some((b"CERT".to_vec(), b"KEY".to_vec()))
        );
        assert_eq!(creds.token, None);
        assert!(creds.source.contains("\"ironplane\""));
    }

    #[test]
    fn reads_file_forms_relative_to_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pki")).unwrap();
        std::fs::write(dir.path().join("pki/ca.crt"), CA).unwrap();
        std::fs::write(dir.path().join("pki/admin.crt"), "CERT").unwrap();
        let key = dir.path().join("admin.key");
        std::fs::write(&key, "KEY").unwrap();
        let text = format!(
            "clusters:\n- name: c\n  cluster:\n    server: https://localhost:6444\n    certificate-authority: pki/ca.crt\nusers:\n- name: u\n  user:\n    client-certificate: pki/admin.crt\n    client-key: {}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n",
            key.display()
        );
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, text).unwrap();
        let creds = load(&[path], true, None).unwrap();
        assert_eq!(creds.ca_pem.as_deref(), Some(CA.as_bytes()));
        assert_eq!(
            creds.client_identity,
            Some((b"CERT".to_vec(), b"KEY".to_vec()))
        );
        assert_eq!(creds.server.authority(), "localhost:6444");
    }

    #[test]
    fn reads_tokens_and_token_files() {
        let text = format!(
            "clusters:\n- name: anchor\n  cluster:\n    server: https://127.0.0.1:6444\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    token: abc123\n- name: filed\n  user:\n    tokenFile: token\ncontexts:\n- name: anchor\n  context:\n    cluster: anchor\n    user: admin\n- name: other\n  context:\n    cluster: anchor\n    user: filed\ncurrent-context: anchor\n",
            b64(CA)
        );
        assert_eq!(
            load_text(&text, None).unwrap().token.as_deref(),
            Some("abc123")
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "  from-file\n").unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, &text).unwrap();
        let creds = load(&[path], true, Some("other")).unwrap();
        assert_eq!(creds.token.as_deref(), Some("from-file"));
        assert_eq!(creds.client_identity, None);
    }

    #[test]
    fn merges_kubeconfig_lists_first_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n").unwrap();
        std::fs::write(
            &b,
            "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:2\n    insecure-skip-tls-verify: true\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
        )
        .unwrap();
        let missing = dir.path().join("missing");
        let creds = load(&[missing, a, b], false, None).unwrap();
        assert_eq!(creds.server.port, 1);
        assert!(creds.insecure);
        assert_eq!((creds.client_identity, creds.token), (None, None));
    }

    #[test]
    fn refuses_non_loopback_servers() {
        let text = "clusters:\n- name: c\n  cluster:\n    server: https://192.168.1.10:6443\n    insecure-skip-tls-verify: true\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n";
        let error = format!("{:#}", load_text(text, None).unwrap_err());
        assert!(error.contains("only drives servers on loopback"), "{error}");
    }

    #[test]
    fn explains_what_is_wrong() {
        let cluster = format!(
            "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    certificate-authority-data: {}\n",
            b64(CA)
        );
        for (text, context, fragment) in [
            (format!("{cluster}contexts:\n- name: x\n  context: {{cluster: c}}\n"), None, "no current-context"),
            (format!("{cluster}current-context: y\n"), None, "no context \"y\""),
            (format!("{cluster}current-context: x\n"), Some("z"), "no context \"z\""),
            ("contexts:\n- name: x\n  context: {cluster: nope}\ncurrent-context: x\n".to_owned(), None, "not defined"),
            (format!("{cluster}users:\n- name: u\n  user:\n    exec: {{command: x}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"), None, "not supported"),
            (format!("{cluster}users:\n- name: u\n  user:\n    client-certificate-data: {}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n", b64("C")), None, "no client key"),
            (format!("{cluster}users:\n- name: u\n  user:\n    client-key-data: '!!'\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"), None, "not valid base64"),
            ("clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n".to_owned(), None, "neither certificate-authority"),
            ("clusters: [\n".to_owned(), None, "invalid YAML"),
        ] {
            let error = format!("{:#}", load_text(&text, context).unwrap_err());
            assert!(error.contains(fragment), "{text}\n=> {error}");
        }
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let error = load(&[PathBuf::from("/nonexistent/kubeconfig")], true, None).unwrap_err();
        assert!(format!("{error:#}").contains("cannot read kubeconfig"));
        let error = load(&[PathBuf::from("/nonexistent/kubeconfig")], false, None).unwrap_err();
        assert!(format!("{error:#}").contains("no kubeconfig found"));
    }
}
