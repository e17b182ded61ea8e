//! TLS serving configuration (rustls with the `ring` provider) and the X.509 client-certificate
//! identity, as upstream's `x509` authenticator reads it.
//!
//! Client certificates are optional, as with upstream's `--client-ca-file`: a client that presents
//! one must chain to the client CA (otherwise the handshake fails), and a client that presents
//! none is accepted anonymously and authenticated, or not, by later filters.

use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{InconsistentKeys, RootCertStore, ServerConfig};
use x509_parser::prelude::{FromDer, X509Certificate};

/// ALPN protocols offered, in order of preference.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a TLS server configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The serving certificate PEM could not be decoded.
    #[error("serving certificate PEM is malformed")]
    CertificatePem(#[source] pem::Error),
    /// The serving certificate PEM holds no `CERTIFICATE` block.
    #[error("serving certificate PEM holds no CERTIFICATE block")]
    NoCertificate,
    /// The serving key PEM could not be decoded.
    #[error("serving key PEM is malformed")]
    PrivateKeyPem(#[source] pem::Error),
    /// The serving key PEM holds no private key block (PKCS#8, SEC1 or PKCS#1).
    #[error("serving key PEM holds no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block")]
    NoPrivateKey,
    /// The serving key is not the private half of the serving certificate's public key.
    #[error("serving key does not match the serving certificate's public key")]
    KeyMismatch,
    /// rustls rejected the serving certificate or key (for example an unsupported key type).
    #[error("serving certificate or key rejected")]
    ServingKey(#[source] rustls::Error),
    /// The client CA PEM could not be decoded.
    #[error("client CA PEM is malformed")]
    ClientCaPem(#[source] pem::Error),
    /// The client CA PEM holds no `CERTIFICATE` block.
    #[error("client CA PEM holds no CERTIFICATE block")]
    NoClientCa,
    /// A client CA certificate cannot serve as a trust anchor.
    #[error("client CA certificate is not a usable trust anchor")]
    ClientCa(#[source] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("building the client certificate verifier")]
    ClientVerifier(#[source] VerifierBuilderError),
    /// The ring provider does not support the default protocol versions (TLS 1.2 and 1.3).
    #[error("selecting TLS protocol versions")]
    ProtocolVersions(#[source] rustls::Error),
}

/// Builds the server configuration: `cert_pem` is the serving chain (leaf first), `key_pem` its
/// private key, and `client_ca_pem`, when given, the CA bundle that client certificates must chain
/// to (client certificates stay optional). TLS 1.2 and 1.3, the `ring` provider, ALPN `h2` then
/// `http/1.1`.
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: Option<&str>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::CertificatePem)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        other => TlsError::PrivateKeyPem(other),
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::ProtocolVersions)?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca_pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
                roots
                    .add(cert.map_err(TlsError::ClientCaPem)?)
                    .map_err(TlsError::ClientCa)?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoClientCa);
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(TlsError::ClientVerifier)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => TlsError::KeyMismatch,
        other => TlsError::ServingKey(other),
    })?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The identity upstream's x509 authenticator derives from a verified client certificate: the
/// user is the subject's common name (the last CN when there are several, as Go's `pkix.Name`
/// reads it), the groups are the subject's organization (O) values in order.
///
/// `cert_der` must be the leaf of a chain the TLS layer already verified (the first of rustls'
/// `peer_certificates()`); this function checks nothing but the encoding. `None` when the DER does
/// not parse or the subject has no non-empty common name (upstream then does not authenticate).
pub fn client_identity(cert_der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .last()
        .filter(|cn| !cn.is_empty())?
        .to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_owned)
        .collect();
    Some((user, groups))
}

#[cfg(test)]
#[allow(clippy::expect_used)] // Tests may panic; see STYLE.md on lints.
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use rustls::ClientConfig;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;

    struct Ca {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn new_ca(name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// (cert PEM, key PEM) of a leaf signed by `ca`.
    fn leaf(ca: &Ca, cns: &[&str], orgs: &[&str], server: bool) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        for org in orgs {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *org);
        }
        for cn in cns {
            params.distinguished_name.push(DnType::CommonName, *cn);
        }
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &ca.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
    }

    #[test]
    fn builds_with_and_without_client_ca() {
        let ca = new_ca("test-ca");
        let (cert, key) = leaf(&ca, &["kube-apiserver"], &[], true);
        for client_ca in [None, Some(ca.pem.as_str())] {
            let config = server_config(&cert, &key, client_ca).expect("config");
            assert_eq!(
                config.alpn_protocols,
                vec![b"h2".to_vec(), b"http/1.1".to_vec()]
            );
        }
    }

    #[test]
    fn bad_inputs_give_clear_errors() {
        let ca = new_ca("test-ca");
        let (cert, key) = leaf(&ca, &["kube-apiserver"], &[], true);
        let (_, other_key) = leaf(&ca, &["other"], &[], true);
        let garbage_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let unterminated = "-----BEGIN PRIVATE KEY-----\nAAAA\n";
        let check = |cert: &str, key: &str, client_ca: Option<&str>, want: &str| {
            let err = server_config(cert, key, client_ca).expect_err(want);
            assert_eq!(err.to_string(), want, "{err:?}");
        };
        check(
            &cert,
            &other_key,
            None,
            "serving key does not match the serving certificate's public key",
        );
        check(
            &cert,
            garbage_key,
            None,
            "serving certificate or key rejected",
        );
        check(&cert, unterminated, None, "serving key PEM is malformed");
        check(
            &cert,
            &cert,
            None,
            "serving key PEM holds no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block",
        );
        check(
            "",
            &key,
            None,
            "serving certificate PEM holds no CERTIFICATE block",
        );
        check(
            &key,
            &key,
            None,
            "serving certificate PEM holds no CERTIFICATE block",
        );
        check(
            &cert,
            &key,
            Some("nothing here"),
            "client CA PEM holds no CERTIFICATE block",
        );
        check(
            &cert,
            &key,
            Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            "client CA certificate is not a usable trust anchor",
        );
    }

    #[test]
    fn client_identity_table() {
        let ca = new_ca("test-ca");
        let check = |cns: &[&str], orgs: &[&str], want: Option<(&str, &[&str])>| {
            let (cert, _) = leaf(&ca, cns, orgs, false);
            let got = client_identity(&der(&cert));
            let want =
                want.map(|(u, g)| (u.to_owned(), g.iter().map(|s| (*s).to_owned()).collect()));
            assert_eq!(got, want, "CN={cns:?} O={orgs:?}");
        };
        check(
            &["admin"],
            &["system:masters"],
            Some(("admin", &["system:masters"])),
        );
        check(&["jane"], &[], Some(("jane", &[])));
        check(&[], &["system:masters"], None);
        check(&[""], &["g"], None);
        assert_eq!(client_identity(b"not der"), None);

        // rcgen keeps one value per attribute type, so this subject comes from
        // `openssl req -x509 -subj "/O=system:masters/O=team-a/O=system:masters/CN=first/CN=jane"`.
        // Go's pkix.Name keeps the last CN and every O in order, duplicates included.
        assert_eq!(
            client_identity(&der(MULTI_VALUED_SUBJECT)),
            Some((
                "jane".to_owned(),
                vec![
                    "system:masters".to_owned(),
                    "team-a".to_owned(),
                    "system:masters".to_owned()
                ]
            ))
        );
    }

    const MULTI_VALUED_SUBJECT: &str = "-----BEGIN CERTIFICATE-----
MIICGTCCAb+gAwIBAgIUT7xeHLx2zuOdccS2fdabgC4Mx5UwCgYIKoZIzj0EAwIw
YjEXMBUGA1UECgwOc3lzdGVtOm1hc3RlcnMxDzANBgNVBAoMBnRlYW0tYTEXMBUG
A1UECgwOc3lzdGVtOm1hc3RlcnMxDjAMBgNVBAMMBWZpcnN0MQ0wCwYDVQQDDARq
YW5lMB4XDTI2MTEyNjAxMDEwMVoXDTI2MTEyNzAxMDEwMVowYjEXMBUGA1UECgwO
c3lzdGVtOm1hc3RlcnMxDzANBgNVBAoMBnRlYW0tYTEXMBUGA1UECgwOc3lzdGVt
Om1hc3RlcnMxDjAMBgNVBAMMBWZpcnN0MQ0wCwYDVQQDDARqYW5lMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAE2B+DpgsrQ8bnJwqOX1R+JWPLY4qZ/OrMUSznAXxd
8fx38up3AoLAbcSs8BkwTMAEyMeyi7miqR46u5r9witMqaNTMFEwHQYDVR0OBBYE
FCSFHiCffxS0rN+Ml1a/rSpp12c6MB8GA1UdIwQYMBaAFCSFHiCffxS0rN+Ml1a/
rSpp12c6MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgatkF3tBV
biwROX+Nhkh49f2yXJb1Qp6q2vwJ8nPIKOECIQDgdpEALkNF2kuPMW6vloLANvk9
8fm0ylfLOQ8eD/FbGg==
-----END CERTIFICATE-----
";

    /// Runs one handshake over an in-memory pipe; returns the server's view:
    /// (negotiated ALPN, identity of the client certificate) or the error.
    async fn handshake(
        server: Arc<ServerConfig>,
        ca_pem: &str,
        client_cert: Option<(&str, &str)>,
    ) -> Result<(Option<Vec<u8>>, Option<(String, Vec<String>)>), String> {
        let mut roots = RootCertStore::empty();
        roots.add(der(ca_pem)).expect("root");
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots);
        let mut client = match client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![der(cert)],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
                )
                .expect("client auth"),
        };
        client.alpn_protocols = vec![b"h2".to_vec()];

        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server_side = async move {
            let mut tls = TlsAcceptor::from(server)
                .accept(server_io)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            let (_, conn) = tls.get_ref();
            let identity = conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| client_identity(leaf));
            Ok::<_, String>((conn.alpn_protocol().map(<[u8]>::to_vec), identity))
        };
        let client_side = async move {
            let name = ServerName::try_from("localhost").expect("name");
            let mut tls = TlsConnector::from(Arc::new(client))
                .connect(name, client_io)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        };
        let (server_result, client_result) = tokio::join!(server_side, client_side);
        client_result?;
        server_result
    }

    #[tokio::test]
    async fn client_certificates_are_optional_but_verified() {
        let ca = new_ca("cluster-ca");
        let (cert, key) = leaf(&ca, &["kube-apiserver"], &[], true);
        let config = server_config(&cert, &key, Some(&ca.pem)).expect("config");

        let (admin_cert, admin_key) = leaf(&ca, &["admin"], &["system:masters"], false);
        let (alpn, identity) = handshake(
            Arc::clone(&config),
            &ca.pem,
            Some((&admin_cert, &admin_key)),
        )
        .await
        .expect("admin handshake");
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(
            identity,
            Some(("admin".to_owned(), vec!["system:masters".to_owned()]))
        );

        let (_, identity) = handshake(Arc::clone(&config), &ca.pem, None)
            .await
            .expect("anonymous handshake");
        assert_eq!(identity, None);

        let stranger_ca = new_ca("stranger-ca");
        let (stranger_cert, stranger_key) = leaf(&stranger_ca, &["mallory"], &[], false);
        let err = handshake(config, &ca.pem, Some((&stranger_cert, &stranger_key)))
            .await
            .expect_err("a certificate from another CA must be rejected");
        // The server aborts with an unknown_ca alert, which the client reports.
        assert!(err.contains("UnknownCA"), "{err}");
    }
}
