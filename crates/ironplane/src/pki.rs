//! PKI bootstrap: on first start, mints the cluster CA, the API server's serving certificate and
//! the admin client certificate under `DATA_DIR/pki/`; on later starts, reuses them.
//!
//! On-disk layout (all PEM; keys are PKCS#8 ECDSA P-256):
//!
//! | file | what | mode |
//! |---|---|---|
//! | `pki/` | the directory | `0700` |
//! | `ca.crt`, `ca.key` | CA `CN=ironplane-ca`, 10 years, `pathlen:0` | `0644`, `0600` |
//! | `apiserver.crt`, `apiserver.key` | serving cert `CN=kube-apiserver`, server auth, 1 year | `0644`, `0600` |
//! | `admin.crt`, `admin.key` | client cert `CN=admin, O=system:masters`, client auth, 1 year | `0644`, `0600` |
//!
//! Policy: the CA is precious and is never replaced silently. If only one of `ca.crt`/`ca.key`
//! exists, if either does not load, if the two do not match, or if the CA has expired,
//! [`ensure_pki`] fails and tells the operator what to do. Leaves are derivable from the CA, so any
//! problem with a leaf — missing, unreadable, not issued by the current CA, key mismatch, wrong
//! subject or usage, a requested SAN missing, expiring within 30 days — re-issues that leaf
//! (with a fresh key) and logs why. Files are replaced atomically (temp file, fsync, rename).

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// Subject common name of the cluster CA.
pub const CA_COMMON_NAME: &str = "ironplane-ca";
/// Subject common name of the API server's serving certificate.
pub const SERVING_COMMON_NAME: &str = "kube-apiserver";
/// User name (subject CN) of the admin client certificate.
pub const ADMIN_USER: &str = "admin";
/// Group (subject O) of the admin client certificate; upstream's RBAC lets it do anything.
pub const ADMIN_GROUP: &str = "system:masters";
/// DNS names the serving certificate always carries.
pub const DEFAULT_DNS_SANS: [&str; 5] = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];
/// IP addresses the serving certificate always carries.
pub const DEFAULT_IP_SANS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

const CA_VALIDITY: Duration = Duration::days(3650);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// A leaf expiring sooner than this is re-issued at start.
const RENEW_BEFORE: Duration = Duration::days(30);
/// `notBefore` is set this far in the past to tolerate clock skew between hosts.
const BACKDATE: Duration = Duration::minutes(5);
const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o700;

/// Where the PKI files live: `DATA_DIR/pki/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiPaths {
    /// `DATA_DIR/pki`.
    pub dir: PathBuf,
    /// `pki/ca.crt`.
    pub ca_cert: PathBuf,
    /// `pki/ca.key`.
    pub ca_key: PathBuf,
    /// `pki/apiserver.crt`.
    pub serving_cert: PathBuf,
    /// `pki/apiserver.key`.
    pub serving_key: PathBuf,
    /// `pki/admin.crt`.
    pub admin_cert: PathBuf,
    /// `pki/admin.key`.
    pub admin_key: PathBuf,
}

impl PkiPaths {
    /// The paths under `data_dir`; touches nothing on disk.
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("pki");
        Self {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            dir,
        }
    }
}

/// The loaded PKI: PEM text ready for rustls and the kubeconfig, and where it lives.
///
/// `Debug` prints the paths and certificates' lengths, never the private keys.
#[derive(Clone)]
pub struct Pki {
    /// Where the files are.
    pub paths: PkiPaths,
    /// The CA certificate (trust anchor for clients and for client certificates).
    pub ca_cert_pem: String,
    /// The API server's serving certificate (leaf only; clients trust the CA).
    pub serving_cert_pem: String,
    /// The serving certificate's private key (PKCS#8).
    pub serving_key_pem: String,
    /// The admin client certificate (`CN=admin, O=system:masters`).
    pub admin_cert_pem: String,
    /// The admin client certificate's private key (PKCS#8).
    pub admin_key_pem: String,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.paths.dir)
            .field("ca_cert", &self.paths.ca_cert)
            .field("ca_key", &self.paths.ca_key)
            .field("serving_cert", &self.paths.serving_cert)
            .field("serving_key", &self.paths.serving_key)
            .field("admin_cert", &self.paths.admin_cert)
            .field("admin_key", &self.paths.admin_key)
            .field("ca_cert_pem_len", &self.ca_cert_pem.len())
            .field("serving_cert_pem_len", &self.serving_cert_pem.len())
            .field("admin_cert_pem_len", &self.admin_cert_pem.len())
            .finish_non_exhaustive()
    }
}

/// Makes sure `data_dir/pki/` holds a usable CA, serving certificate and admin certificate, and
/// returns them.
///
/// `extra_sans` are added to the serving certificate's default SANs: entries that parse as IP
/// addresses become IP SANs, the others must be DNS names (a trailing dot is dropped, case is
/// folded; a leading `*.` wildcard is allowed). See the module docs for what is reused, what is
/// re-issued and what is an error.
pub fn ensure_pki(data_dir: &Path, extra_sans: &[String]) -> anyhow::Result<Pki> {
    let sans = Sans::with_extra(extra_sans)?;
    let paths = PkiPaths::new(data_dir);
    ensure_private_dir(&paths.dir)?;
    let now = OffsetDateTime::now_utc();

    let ca = ensure_ca(&paths, now)?;
    let (serving_cert_pem, serving_key_pem) = ensure_leaf(
        &ca,
        &LeafSpec {
            what: "serving certificate",
            cert_path: &paths.serving_cert,
            key_path: &paths.serving_key,
            common_name: SERVING_COMMON_NAME,
            organizations: &[],
            usage: Usage::Server,
            sans: &sans,
        },
        now,
    )?;
    let (admin_cert_pem, admin_key_pem) = ensure_leaf(
        &ca,
        &LeafSpec {
            what: "admin client certificate",
            cert_path: &paths.admin_cert,
            key_path: &paths.admin_key,
            common_name: ADMIN_USER,
            organizations: &[ADMIN_GROUP],
            usage: Usage::Client,
            sans: &Sans::default(),
        },
        now,
    )?;

    Ok(Pki {
        ca_cert_pem: ca.cert_pem,
        serving_cert_pem,
        serving_key_pem,
        admin_cert_pem,
        admin_key_pem,
        paths,
    })
}

/// The serving certificate's subject alternative names: DNS names lower-cased, both lists
/// de-duplicated, defaults first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Sans {
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

impl Sans {
    fn with_extra(extra: &[String]) -> anyhow::Result<Self> {
        let mut sans = Sans {
            dns: DEFAULT_DNS_SANS.iter().map(|s| (*s).to_owned()).collect(),
            ips: DEFAULT_IP_SANS.to_vec(),
        };
        for raw in extra {
            match parse_san(raw)? {
                SanValue::Ip(ip) => {
                    if !sans.ips.contains(&ip) {
                        sans.ips.push(ip);
                    }
                }
                SanValue::Dns(name) => {
                    if !sans.dns.contains(&name) {
                        sans.dns.push(name);
                    }
                }
            }
        }
        Ok(sans)
    }

    fn to_rcgen(&self) -> anyhow::Result<Vec<SanType>> {
        let mut out = Vec::with_capacity(self.dns.len() + self.ips.len());
        for name in &self.dns {
            let ia5 = name
                .clone()
                .try_into()
                .with_context(|| format!("DNS SAN {name:?}"))?;
            out.push(SanType::DnsName(ia5));
        }
        out.extend(self.ips.iter().copied().map(SanType::IpAddress));
        Ok(out)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SanValue {
    Ip(IpAddr),
    Dns(String),
}

fn parse_san(raw: &str) -> anyhow::Result<SanValue> {
    let s = raw.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SanValue::Ip(ip));
    }
    let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .enumerate()
            .all(|(i, label)| valid_label(label) || (i == 0 && label == "*" && name.len() > 2));
    if !valid {
        bail!("invalid extra SAN {raw:?}: neither an IP address nor a DNS name");
    }
    Ok(SanValue::Dns(name))
}

/// The CA, loaded from disk and ready to sign.
struct Ca {
    cert_pem: String,
    cert_der: Vec<u8>,
    not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
}

fn ensure_ca(paths: &PkiPaths, now: OffsetDateTime) -> anyhow::Result<Ca> {
    let cert_exists = exists(&paths.ca_cert)?;
    let key_exists = exists(&paths.ca_key)?;
    match (cert_exists, key_exists) {
        (false, false) => mint_ca(paths, now)?,
        (true, true) => {}
        (true, false) | (false, true) => {
            let (present, missing) = if cert_exists {
                (&paths.ca_cert, &paths.ca_key)
            } else {
                (&paths.ca_key, &paths.ca_cert)
            };
            bail!(
                "{} exists but {} is missing; refusing to replace the cluster CA. Restore the \
                 missing file, or remove {} to mint a new CA (every existing kubeconfig and \
                 client certificate will stop working)",
                present.display(),
                missing.display(),
                paths.dir.display()
            );
        }
    }
    load_ca(paths, now)
}

fn mint_ca(paths: &PkiPaths, now: OffsetDateTime) -> anyhow::Result<()> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating the CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(CA_COMMON_NAME, &[]);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    let cert = params
        .self_signed(&key)
        .context("self-signing the CA certificate")?;
    // Key first: a crash in between leaves a key without a certificate, which ensure_ca reports.
    write_atomic(&paths.ca_key, key.serialize_pem().as_bytes(), KEY_MODE)?;
    write_atomic(&paths.ca_cert, cert.pem().as_bytes(), CERT_MODE)?;
    tracing::info!(cert = %paths.ca_cert.display(), "minted a new cluster CA");
    Ok(())
}

fn load_ca(paths: &PkiPaths, now: OffsetDateTime) -> anyhow::Result<Ca> {
    let refuse = |what: &str| {
        format!(
            "{what}; refusing to replace the cluster CA. Fix the files, or remove {} to mint a \
             new CA (every existing kubeconfig and client certificate will stop working)",
            paths.dir.display()
        )
    };
    let cert_pem = fs::read_to_string(&paths.ca_cert)
        .with_context(|| format!("reading CA certificate {}", paths.ca_cert.display()))?;
    let key_pem = read_key(&paths.ca_key)?;
    let cert_der = pem_to_der(&cert_pem).with_context(|| {
        refuse(&format!(
            "parsing CA certificate {}",
            paths.ca_cert.display()
        ))
    })?;
    let key = KeyPair::from_pem(&key_pem)
        .with_context(|| refuse(&format!("parsing CA key {}", paths.ca_key.display())))?;
    let cert = parse_der(&cert_der).with_context(|| {
        refuse(&format!(
            "parsing CA certificate {}",
            paths.ca_cert.display()
        ))
    })?;

    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        bail!(refuse(&format!(
            "{} is not a CA certificate (no basicConstraints CA:TRUE)",
            paths.ca_cert.display()
        )));
    }
    if !key_matches(&key, &cert) {
        bail!(refuse(&format!(
            "CA key {} does not match CA certificate {}",
            paths.ca_key.display(),
            paths.ca_cert.display()
        )));
    }
    let not_after = cert.validity().not_after.to_datetime();
    if not_after <= now {
        bail!(refuse(&format!(
            "CA certificate {} expired on {not_after}",
            paths.ca_cert.display()
        )));
    }
    if not_after - now < RENEW_BEFORE {
        tracing::warn!(
            cert = %paths.ca_cert.display(),
            %not_after,
            "the cluster CA expires soon; leaves cannot outlive it, rotate the CA"
        );
    }

    let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), key)
        .with_context(|| format!("using {} as an issuer", paths.ca_cert.display()))?;
    Ok(Ca {
        cert_pem,
        cert_der,
        not_after,
        issuer,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Usage {
    Server,
    Client,
}

/// What a leaf certificate must look like.
struct LeafSpec<'a> {
    what: &'static str,
    cert_path: &'a Path,
    key_path: &'a Path,
    common_name: &'static str,
    organizations: &'static [&'static str],
    usage: Usage,
    sans: &'a Sans,
}

/// Returns the leaf's (certificate PEM, key PEM), re-issuing it when it is not fit for use.
fn ensure_leaf(
    ca: &Ca,
    spec: &LeafSpec<'_>,
    now: OffsetDateTime,
) -> anyhow::Result<(String, String)> {
    match check_leaf(ca, spec, now)? {
        LeafCheck::Reuse { cert_pem, key_pem } => Ok((cert_pem, key_pem)),
        LeafCheck::Absent => {
            let issued = issue_leaf(ca, spec, now)?;
            tracing::info!(cert = %spec.cert_path.display(), "issued the {}", spec.what);
            Ok(issued)
        }
        LeafCheck::Reissue(reason) => {
            let issued = issue_leaf(ca, spec, now)?;
            tracing::warn!(
                cert = %spec.cert_path.display(),
                %reason,
                "re-issued the {}",
                spec.what
            );
            Ok(issued)
        }
    }
}

enum LeafCheck {
    Reuse { cert_pem: String, key_pem: String },
    Absent,
    Reissue(String),
}

/// Reads and checks an existing leaf. I/O errors other than "not found" are errors (the operator
/// must look); anything else wrong with the leaf asks for a re-issue.
fn check_leaf(ca: &Ca, spec: &LeafSpec<'_>, now: OffsetDateTime) -> anyhow::Result<LeafCheck> {
    let (Some(cert_bytes), Some(key_bytes)) = (
        read_optional(spec.cert_path)?,
        read_optional(spec.key_path)?,
    ) else {
        return Ok(LeafCheck::Absent);
    };
    Ok(match leaf_problem(ca, spec, now, &cert_bytes, &key_bytes) {
        Ok(()) => match (String::from_utf8(cert_bytes), String::from_utf8(key_bytes)) {
            (Ok(cert_pem), Ok(key_pem)) => LeafCheck::Reuse { cert_pem, key_pem },
            _ => LeafCheck::Reissue("not UTF-8".to_owned()),
        },
        Err(reason) => LeafCheck::Reissue(reason),
    })
}

/// `Err(reason)` when the leaf must be re-issued.
fn leaf_problem(
    ca: &Ca,
    spec: &LeafSpec<'_>,
    now: OffsetDateTime,
    cert_bytes: &[u8],
    key_bytes: &[u8],
) -> Result<(), String> {
    let cert_pem = std::str::from_utf8(cert_bytes).map_err(|_| "certificate is not UTF-8")?;
    let key_pem = std::str::from_utf8(key_bytes).map_err(|_| "key is not UTF-8")?;
    let cert_der = pem_to_der(cert_pem).map_err(|e| format!("certificate: {e:#}"))?;
    let cert = parse_der(&cert_der).map_err(|e| format!("certificate: {e:#}"))?;
    let key = KeyPair::from_pem(key_pem).map_err(|e| format!("key: {e}"))?;
    if !key_matches(&key, &cert) {
        return Err("key does not match certificate".to_owned());
    }

    let ca_cert = parse_der(&ca.cert_der).map_err(|e| format!("CA certificate: {e:#}"))?;
    if cert.issuer().as_raw() != ca_cert.subject().as_raw()
        || cert.verify_signature(Some(ca_cert.public_key())).is_err()
    {
        return Err("not issued by the current CA".to_owned());
    }

    let validity = cert.validity();
    let not_after = validity.not_after.to_datetime();
    let not_before = validity.not_before.to_datetime();
    if not_after - now < RENEW_BEFORE {
        return Err(format!("expires on {not_after}"));
    }
    if not_before > now {
        return Err(format!("not valid before {not_before}"));
    }

    let (cn, orgs) = subject_identity(&cert);
    if cn.as_deref() != Some(spec.common_name)
        || orgs
            .iter()
            .map(String::as_str)
            .ne(spec.organizations.iter().copied())
    {
        return Err(format!("unexpected subject {}", cert.subject()));
    }

    let eku = cert.extended_key_usage().ok().flatten().map(|e| e.value);
    let has_usage = eku.is_some_and(|e| match spec.usage {
        Usage::Server => e.server_auth,
        Usage::Client => e.client_auth,
    });
    if !has_usage {
        return Err(format!(
            "lacks the {:?} auth extended key usage",
            spec.usage
        ));
    }

    let (dns, ips) = cert_sans(&cert);
    if let Some(missing) = spec.sans.dns.iter().find(|name| !dns.contains(name)) {
        return Err(format!("lacks SAN DNS:{missing}"));
    }
    if let Some(missing) = spec.sans.ips.iter().find(|ip| !ips.contains(ip)) {
        return Err(format!("lacks SAN IP:{missing}"));
    }
    Ok(())
}

fn issue_leaf(
    ca: &Ca,
    spec: &LeafSpec<'_>,
    now: OffsetDateTime,
) -> anyhow::Result<(String, String)> {
    // A fresh key each time: rcgen derives the serial number from the public key, so serials stay
    // unique under the CA.
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .with_context(|| format!("generating the key for the {}", spec.what))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(spec.common_name, spec.organizations);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match spec.usage {
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.subject_alt_names = spec.sans.to_rcgen()?;
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = (now + LEAF_VALIDITY).min(ca.not_after);
    let cert = params
        .signed_by(&key, &ca.issuer)
        .with_context(|| format!("signing the {}", spec.what))?;

    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    // Key first: a crash in between leaves a mismatched pair, which the next start re-issues.
    write_atomic(spec.key_path, key_pem.as_bytes(), KEY_MODE)?;
    write_atomic(spec.cert_path, cert_pem.as_bytes(), CERT_MODE)?;
    Ok((cert_pem, key_pem))
}

fn distinguished_name(common_name: &str, organizations: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for org in organizations {
        dn.push(DnType::OrganizationName, *org);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Subject CN (the last one, as Go's `pkix.Name` does) and O values in order.
fn subject_identity(cert: &X509Certificate<'_>) -> (Option<String>, Vec<String>) {
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .last()
        .map(str::to_owned);
    let orgs = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_owned)
        .collect();
    (cn, orgs)
}

/// The certificate's DNS SANs (lower-cased) and IP SANs.
fn cert_sans(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(n) => dns.push(n.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

fn key_matches(key: &KeyPair, cert: &X509Certificate<'_>) -> bool {
    key.public_key_raw() == cert.public_key().subject_public_key.data.as_ref()
}

/// The DER of the first PEM block, which must be a `CERTIFICATE`.
fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| anyhow!("not PEM: {e}"))?;
    if block.label != "CERTIFICATE" {
        bail!("PEM block is {:?}, not CERTIFICATE", block.label);
    }
    Ok(block.contents)
}

fn parse_der(der: &[u8]) -> anyhow::Result<X509Certificate<'_>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow!("not an X.509 certificate: {e}"))?;
    Ok(cert)
}

fn exists(path: &Path) -> anyhow::Result<bool> {
    path.try_exists()
        .with_context(|| format!("checking whether {} exists", path.display()))
}

fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads a private key, warning when group or others may read it.
fn read_key(path: &Path) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| format!("opening key {}", path.display()))?;
    let mode = file
        .metadata()
        .with_context(|| format!("reading metadata of {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(key = %path.display(), mode = format!("{:o}", mode & 0o777), "private key is readable by group or others");
    }
    std::io::read_to_string(file).with_context(|| format!("reading key {}", path.display()))
}

/// Creates `dir` (and missing parents) with mode 0700, and sets 0700 on it if it existed.
fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
        .with_context(|| format!("setting mode 0700 on {}", dir.display()))
}

/// Replaces `path` atomically with `contents`: writes `.NAME.PID.tmp` beside it with `mode`
/// (exclusive create, so a planted symlink is not followed), fsyncs, renames, fsyncs the directory.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);

    let write = || -> anyhow::Result<()> {
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing stale {}", tmp.display())),
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests may panic; see STYLE.md on lints.
mod tests {
    use super::*;

    fn pki_in(dir: &tempfile::TempDir, extra: &[&str]) -> Pki {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        ensure_pki(dir.path(), &extra).expect("ensure_pki")
    }

    fn der_of(pem: &str) -> Vec<u8> {
        pem_to_der(pem).expect("PEM")
    }

    fn file_mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn all_files(paths: &PkiPaths) -> Vec<Vec<u8>> {
        [
            &paths.ca_cert,
            &paths.ca_key,
            &paths.serving_cert,
            &paths.serving_key,
            &paths.admin_cert,
            &paths.admin_key,
        ]
        .iter()
        .map(|p| fs::read(p).expect("read"))
        .collect()
    }

    #[test]
    fn minted_once_then_reused_byte_for_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = pki_in(&dir, &["10.1.2.3"]);
        let on_disk = all_files(&first.paths);
        let second = pki_in(&dir, &["10.1.2.3"]);
        assert_eq!(on_disk, all_files(&second.paths));
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.serving_key_pem, second.serving_key_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
        assert_eq!(first.admin_key_pem, second.admin_key_pem);
        assert_eq!(on_disk[0], first.ca_cert_pem.as_bytes());
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(&first.paths.dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 6, "{names:?}");
    }

    #[test]
    fn modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = pki_in(&dir, &[]);
        assert_eq!(file_mode(&pki.paths.dir), 0o700);
        for key in [
            &pki.paths.ca_key,
            &pki.paths.serving_key,
            &pki.paths.admin_key,
        ] {
            assert_eq!(file_mode(key), 0o600, "{}", key.display());
        }
    }

    #[test]
    fn ca_is_a_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = pki_in(&dir, &[]);
        let der = der_of(&pki.ca_cert_pem);
        let ca = parse_der(&der).expect("parse");
        assert_eq!(subject_identity(&ca).0.as_deref(), Some(CA_COMMON_NAME));
        assert!(ca.basic_constraints().expect("bc").expect("bc").value.ca);
        let ku = ca.key_usage().expect("ku").expect("ku").value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && ku.digital_signature());
        let v = ca.validity();
        let days = (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_days();
        assert!((3649..=3651).contains(&days), "{days}");
        ca.verify_signature(None).expect("self-signed");
    }

    #[test]
    fn serving_cert_sans_and_usage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = pki_in(
            &dir,
            &["10.0.0.5", "API.Example.com.", "fd00::7", "10.0.0.5"],
        );
        let der = der_of(&pki.serving_cert_pem);
        let cert = parse_der(&der).expect("parse");
        assert_eq!(
            subject_identity(&cert).0.as_deref(),
            Some(SERVING_COMMON_NAME)
        );
        let (dns, ips) = cert_sans(&cert);
        let mut want_dns: Vec<String> = DEFAULT_DNS_SANS.iter().map(|s| (*s).to_owned()).collect();
        want_dns.push("api.example.com".to_owned());
        assert_eq!(dns, want_dns);
        let want_ips: Vec<IpAddr> = ["127.0.0.1", "::1", "10.0.0.5", "fd00::7"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        assert_eq!(ips, want_ips);
        let eku = cert.extended_key_usage().expect("eku").expect("eku").value;
        assert!(eku.server_auth && !eku.client_auth);
        let ca_der = der_of(&pki.ca_cert_pem);
        let ca = parse_der(&ca_der).expect("parse ca");
        cert.verify_signature(Some(ca.public_key()))
            .expect("signed by CA");
    }

    #[test]
    fn admin_cert_identity_and_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = pki_in(&dir, &[]);
        let der = der_of(&pki.admin_cert_pem);
        let cert = parse_der(&der).expect("parse");
        let (cn, orgs) = subject_identity(&cert);
        assert_eq!(cn.as_deref(), Some(ADMIN_USER));
        assert_eq!(orgs, vec![ADMIN_GROUP.to_owned()]);
        let eku = cert.extended_key_usage().expect("eku").expect("eku").value;
        assert!(eku.client_auth && !eku.server_auth);
        assert!(!cert.basic_constraints().expect("bc").expect("bc").value.ca);
        let ca_der = der_of(&pki.ca_cert_pem);
        let ca = parse_der(&ca_der).expect("parse ca");
        assert_eq!(cert.issuer().as_raw(), ca.subject().as_raw());
        cert.verify_signature(Some(ca.public_key()))
            .expect("signed by CA");
        let days =
            (cert.validity().not_after.to_datetime() - OffsetDateTime::now_utc()).whole_days();
        assert!((363..=365).contains(&days), "{days}");
        let key = KeyPair::from_pem(&pki.admin_key_pem).expect("key");
        assert!(key_matches(&key, &cert));
    }

    #[test]
    fn new_extra_san_reissues_only_the_serving_cert() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = pki_in(&dir, &[]);
        let second = pki_in(&dir, &["192.168.1.10"]);
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
        assert_ne!(first.serving_cert_pem, second.serving_cert_pem);
        assert_ne!(first.serving_key_pem, second.serving_key_pem);
        let der = der_of(&second.serving_cert_pem);
        let cert = parse_der(&der).expect("parse");
        assert!(
            cert_sans(&cert)
                .1
                .contains(&"192.168.1.10".parse().expect("ip"))
        );
        // Dropping the extra SAN again keeps the (superset) certificate.
        let third = pki_in(&dir, &[]);
        assert_eq!(second.serving_cert_pem, third.serving_cert_pem);
    }

    /// Overwrites the admin leaf with one signed by the on-disk CA, valid for `days`.
    fn plant_admin(paths: &PkiPaths, days: i64, org: &str) {
        let ca_key =
            KeyPair::from_pem(&fs::read_to_string(&paths.ca_key).expect("read")).expect("ca key");
        let ca_pem = fs::read_to_string(&paths.ca_cert).expect("read");
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).expect("issuer");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(ADMIN_USER, &[org]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(days);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        fs::write(&paths.admin_cert, cert.pem()).expect("write");
        fs::write(&paths.admin_key, key.serialize_pem()).expect("write");
    }

    #[test]
    fn leaf_expiring_soon_is_reissued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = pki_in(&dir, &[]);
        plant_admin(&first.paths, 10, ADMIN_GROUP);
        let planted = fs::read_to_string(&first.paths.admin_cert).expect("read");
        let second = pki_in(&dir, &[]);
        assert_ne!(planted, second.admin_cert_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        let der = der_of(&second.admin_cert_pem);
        let cert = parse_der(&der).expect("parse");
        let days =
            (cert.validity().not_after.to_datetime() - OffsetDateTime::now_utc()).whole_days();
        assert!(days > 300, "{days}");
    }

    #[test]
    fn healthy_planted_leaf_is_kept_and_wrong_subject_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = pki_in(&dir, &[]);
        plant_admin(&first.paths, 100, ADMIN_GROUP);
        let planted = fs::read_to_string(&first.paths.admin_cert).expect("read");
        assert_eq!(pki_in(&dir, &[]).admin_cert_pem, planted);
        plant_admin(&first.paths, 100, "system:nodes");
        let planted = fs::read_to_string(&first.paths.admin_cert).expect("read");
        assert_ne!(pki_in(&dir, &[]).admin_cert_pem, planted);
    }

    #[test]
    fn broken_or_foreign_leaves_are_reissued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = pki_in(&dir, &[]);
        // Mismatched key.
        fs::write(&first.paths.admin_key, &first.serving_key_pem).expect("write");
        let second = pki_in(&dir, &[]);
        assert_ne!(first.admin_cert_pem, second.admin_cert_pem);
        // Garbage certificate.
        fs::write(&first.paths.serving_cert, "garbage").expect("write");
        let third = pki_in(&dir, &[]);
        assert!(
            third
                .serving_cert_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        // A leaf from another CA.
        let other = tempfile::tempdir().expect("tempdir");
        let foreign = pki_in(&other, &[]);
        fs::write(&first.paths.admin_cert, &foreign.admin_cert_pem).expect("write");
        fs::write(&first.paths.admin_key, &foreign.admin_key_pem).expect("write");
        let fourth = pki_in(&dir, &[]);
        assert_ne!(fourth.admin_cert_pem, foreign.admin_cert_pem);
        assert_eq!(fourth.ca_cert_pem, first.ca_cert_pem);
        // A missing key.
        fs::remove_file(&first.paths.serving_key).expect("rm");
        let fifth = pki_in(&dir, &[]);
        assert_ne!(fifth.serving_cert_pem, fourth.serving_cert_pem);
    }

    #[test]
    fn ca_is_never_replaced_silently() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = pki_in(&dir, &[]);
        let no_extra: &[String] = &[];

        let ca_key = fs::read(&first.paths.ca_key).expect("read");
        fs::remove_file(&first.paths.ca_key).expect("rm");
        let err = ensure_pki(dir.path(), no_extra).expect_err("half CA");
        assert!(format!("{err:#}").contains("ca.key is missing"), "{err:#}");
        assert!(!first.paths.ca_key.exists());

        fs::write(&first.paths.ca_key, &first.admin_key_pem).expect("write");
        let err = ensure_pki(dir.path(), no_extra).expect_err("mismatched CA key");
        assert!(format!("{err:#}").contains("does not match"), "{err:#}");

        fs::write(&first.paths.ca_key, &ca_key).expect("write");
        fs::write(&first.paths.ca_cert, "not a cert").expect("write");
        let err = ensure_pki(dir.path(), no_extra).expect_err("corrupt CA");
        let msg = format!("{err:#}");
        assert!(msg.contains("ca.crt") && msg.contains("refusing"), "{msg}");
        assert_eq!(fs::read(&first.paths.ca_cert).expect("read"), b"not a cert");

        fs::write(&first.paths.ca_cert, &first.admin_cert_pem).expect("write");
        let err = ensure_pki(dir.path(), no_extra).expect_err("leaf as CA");
        assert!(format!("{err:#}").contains("not a CA"), "{err:#}");
    }

    #[test]
    fn expired_ca_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = PkiPaths::new(dir.path());
        ensure_private_dir(&paths.dir).expect("dir");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(CA_COMMON_NAME, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(20);
        params.not_after = now - Duration::days(1);
        let cert = params.self_signed(&key).expect("sign");
        fs::write(&paths.ca_cert, cert.pem()).expect("write");
        fs::write(&paths.ca_key, key.serialize_pem()).expect("write");
        let err = ensure_pki(dir.path(), &[]).expect_err("expired");
        assert!(format!("{err:#}").contains("expired on"), "{err:#}");
    }

    #[test]
    fn parse_san_table() {
        fn check(input: &str, expected: Option<SanValue>) {
            assert_eq!(parse_san(input).ok(), expected, "{input:?}");
        }
        let ip = |s: &str| Some(SanValue::Ip(s.parse().expect("ip")));
        let dns = |s: &str| Some(SanValue::Dns(s.to_owned()));
        check("10.0.0.1", ip("10.0.0.1"));
        check(" fe80::1 ", ip("fe80::1"));
        check("Example.COM.", dns("example.com"));
        check("*.apps.example.com", dns("*.apps.example.com"));
        check("node-1", dns("node-1"));
        check("", None);
        check(".", None);
        check("*", None);
        check("a.*.com", None);
        check("-bad.com", None);
        check("bad name", None);
        check("https://example.com", None);
        check("[::1]", None);
        check("ünï.com", None);
    }

    #[test]
    fn invalid_extra_san_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ensure_pki(dir.path(), &["bad name".to_owned()]).expect_err("invalid");
        assert!(format!("{err:#}").contains("\"bad name\""), "{err:#}");
    }

    #[test]
    fn write_atomic_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        write_atomic(&path, b"one", 0o600).expect("write");
        write_atomic(&path, b"two", 0o600).expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(file_mode(&path), 0o600);
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn debug_does_not_print_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = pki_in(&dir, &[]);
        let shown = format!("{pki:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("apiserver.key"), "{shown}");
    }
}
