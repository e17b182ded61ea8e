//! The server URL of a kubeconfig cluster, and the loopback rule: this tool only drives servers
//! whose host is `127.0.0.1`, `::1` or `localhost`, and never resolves a name through DNS.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where the server listens, parsed from `https://HOST[:PORT][/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `https` (true) or `http` (false).
    pub tls: bool,
    /// The host as written: `localhost` or an IP address.
    pub host: LoopbackHost,
    /// The port (443/80 when the URL has none).
    pub port: u16,
    /// A path prefix before `/api` (without a trailing `/`), usually empty.
    pub path_prefix: String,
    /// The URL as the kubeconfig wrote it.
    pub original: String,
}

/// A host the loopback rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopbackHost {
    /// `localhost`: tried as 127.0.0.1, then ::1.
    Localhost,
    /// `127.0.0.1` or `::1`.
    Ip(IpAddr),
}

impl ServerUrl {
    /// Parses `url` and applies the loopback rule.
    pub fn parse(url: &str) -> Result<Self, String> {
        let original = url.trim().to_owned();
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(&original, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(&original, "http://") {
            (false, rest)
        } else {
            return Err(format!(
                "server URL {original:?} must start with https:// or http://"
            ));
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!(
                "server URL {original:?} must not carry credentials"
            ));
        }
        if path.contains(['?', '#']) {
            return Err(format!(
                "server URL {original:?} must not have a query or fragment"
            ));
        }
        let (host_text, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
            let end = bracketed
                .find(']')
                .ok_or_else(|| format!("server URL {original:?} has an unclosed '['"))?;
            let after = &bracketed[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(format!("server URL {original:?} is malformed")),
            };
            (&bracketed[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port_text {
            Some(text) => text
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("server URL {original:?} has an invalid port {text:?}"))?,
            None if tls => 443,
            None => 80,
        };
        let host = loopback_host(host_text).ok_or_else(|| {
            format!(
                "refusing server {original:?}: ironplane-load only drives servers on loopback \
                 (host 127.0.0.1, ::1 or localhost), not {host_text:?}"
            )
        })?;
        Ok(ServerUrl {
            tls,
            host,
            port,
            path_prefix: path.trim_end_matches('/').to_owned(),
            original,
        })
    }

    /// The socket addresses to try, in order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        match self.host {
            LoopbackHost::Ip(ip) => vec![SocketAddr::new(ip, self.port)],
            LoopbackHost::Localhost => vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.port),
            ],
        }
    }

    /// `host:port` as sent in `Host` / `:authority`.
    pub fn authority(&self) -> String {
        match self.host {
            LoopbackHost::Localhost => format!("localhost:{}", self.port),
            LoopbackHost::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            LoopbackHost::Ip(IpAddr::V4(ip)) => format!("{ip}:{}", self.port),
        }
    }
}

/// The loopback rule: exactly 127.0.0.1, ::1 (in any spelling) or localhost.
pub fn loopback_host(host: &str) -> Option<LoopbackHost> {
    if host.eq_ignore_ascii_case("localhost") {
        return Some(LoopbackHost::Localhost);
    }
    match host.parse::<IpAddr>() {
        Ok(ip @ IpAddr::V4(v4)) if v4 == Ipv4Addr::LOCALHOST => Some(LoopbackHost::Ip(ip)),
        Ok(ip @ IpAddr::V6(v6)) if v6 == Ipv6Addr::LOCALHOST => Some(LoopbackHost::Ip(ip)),
        _ => None,
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: Result<(bool, &str, u16, &str), &str>) {
        let got = ServerUrl::parse(url);
        match (got, expected) {
            (Ok(u), Ok((tls, authority, port, prefix))) => {
                assert_eq!(
                    (
                        u.tls,
                        u.authority().as_str(),
                        u.port,
                        u.path_prefix.as_str()
                    ),
                    (tls, authority, port, prefix),
                    "{url}"
                );
            }
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{url}: {e}"),
            (got, expected) => panic!("{url}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn accepts_loopback_servers() {
        check(
            "https://127.0.0.1:6443",
            Ok((true, "127.0.0.1:6443", 6443, "")),
        );
        check(
            "https://127.0.0.1:6443/",
            Ok((true, "127.0.0.1:6443", 6443, "")),
        );
        check(
            "https://localhost:8443/k8s/",
            Ok((true, "localhost:8443", 8443, "/k8s")),
        );
        check("HTTPS://LOCALHOST", Ok((true, "localhost:443", 443, "")));
        check("https://[::1]:6443", Ok((true, "[::1]:6443", 6443, "")));
        check("https://[0:0:0:0:0:0:0:1]:1", Ok((true, "[::1]:1", 1, "")));
        check(
            "http://127.0.0.1:8080",
            Ok((false, "127.0.0.1:8080", 8080, "")),
        );
    }

    #[test]
    fn refuses_other_hosts() {
        for url in [
            "https://10.0.0.1:6443",
            "https://127.0.0.2:6443",
            "https://0.0.0.0:6443",
            "https://[::]:6443",
            "https://kubernetes.default.svc",
            "https://example.com",
            "https://localhost.example.com:6443",
            "https://[::ffff:127.0.0.1]:6443",
        ] {
            check(url, Err("only drives servers on loopback"));
        }
    }

    #[test]
    fn rejects_malformed_urls() {
        check("127.0.0.1:6443", Err("must start with https://"));
        check("https://127.0.0.1:0", Err("invalid port"));
        check("https://127.0.0.1:99999", Err("invalid port"));
        check("https://user:pw@127.0.0.1", Err("credentials"));
        check("https://[::1", Err("unclosed"));
        check("https://127.0.0.1/?x=1", Err("query"));
    }

    #[test]
    fn localhost_tries_both_families() {
        let url = ServerUrl::parse("https://localhost:6443").unwrap();
        assert_eq!(url.addresses().len(), 2);
        assert!(url.addresses().iter().all(|a| a.ip().is_loopback()));
    }
}
