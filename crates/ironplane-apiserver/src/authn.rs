//! Authentication: who is calling. x509 client certificates verified against the cluster CA
//! (user = Subject CN, groups = Subject O) and static bearer tokens from a `--token-auth-file`
//! (upstream's CSV format: `token,user,uid,"group1,group2"`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// The user's uid, if the authenticator knows one.
    pub uid: String,
    /// Groups, including `system:authenticated`.
    pub groups: Vec<String>,
}

impl UserInfo {
    fn authenticated(name: String, uid: String, mut groups: Vec<String>) -> Self {
        if !groups.iter().any(|group| group == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        UserInfo { name, uid, groups }
    }

    /// A user from a verified client certificate.
    pub fn from_certificate(common_name: String, organizations: Vec<String>) -> Self {
        Self::authenticated(common_name, String::new(), organizations)
    }
}

/// The identity a TLS connection's client certificate proved, attached to each request on it
/// (shared, so that attaching it copies nothing).
#[derive(Clone, Debug, Default)]
pub struct PeerIdentity(pub Option<Arc<UserInfo>>);

/// Users known by bearer token.
#[derive(Clone, Debug, Default)]
pub struct TokenAuthenticator {
    tokens: HashMap<String, Arc<UserInfo>>,
}

impl TokenAuthenticator {
    /// Read a token file: one `token,user,uid[,"groups"]` line per token; blank lines and lines
    /// starting with `#` are skipped.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read token file {}: {err}", path.display()))?;
        Self::parse(&text).map_err(|err| format!("{}: {err}", path.display()))
    }

    /// Parse the contents of a token file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 {
                return Err(format!(
                    "line {}: expected at least 3 columns (token,user,uid), found {}",
                    number + 1,
                    fields.len()
                ));
            }
            let groups = fields
                .get(3)
                .map(|groups| {
                    groups
                        .split(',')
                        .map(str::trim)
                        .filter(|group| !group.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if fields[0].is_empty() {
                return Err(format!("line {}: empty token", number + 1));
            }
            tokens.insert(
                fields[0].clone(),
                Arc::new(UserInfo::authenticated(
                    fields[1].clone(),
                    fields[2].clone(),
                    groups,
                )),
            );
        }
        Ok(TokenAuthenticator { tokens })
    }

    /// The user a token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&Arc<UserInfo>> {
        self.tokens.get(token)
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Split one CSV line, honouring double quotes (`""` inside quotes is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current)),
            ch => current.push(ch),
        }
    }
    fields.push(current);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_files() {
        let tokens = TokenAuthenticator::parse(
            "# comment\nsecret,admin,uid-1,\"system:masters,devs\"\nplain,bob,2\n",
        )
        .unwrap();
        let admin = tokens.authenticate("secret").unwrap();
        assert_eq!(admin.name, "admin");
        assert_eq!(admin.uid, "uid-1");
        assert_eq!(
            admin.groups,
            ["system:masters", "devs", "system:authenticated"]
        );
        assert_eq!(
            tokens.authenticate("plain").unwrap().groups,
            ["system:authenticated"]
        );
        assert!(tokens.authenticate("nope").is_none());
        assert!(TokenAuthenticator::parse("only,two").is_err());
    }
}
