//! The credentials as types of their own, so that they cannot leak into logs by accident: the
//! API key, or a short-lived token from the owner's token source.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// The API key. Never printed: `Debug` is redacted and there is no `Display` or `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(s: impl Into<String>) -> Self {
        ApiKey(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// An ephemeral token (`auth_tokens/…`). Never printed, like the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(s: impl Into<String>) -> Self {
        Token(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// What one connection shows the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `x-goog-api-key`.
    Key(ApiKey),
    /// `Authorization: Token …`, at the constrained endpoint.
    Token(Token),
}

pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credential, String>> + Send + 'a>>;

/// Where a connection gets its credential, in its own task (a token source may run a program
/// or ask a web server; the control loop never waits for it).
pub trait Credentials: Send + Sync {
    /// `new_session`: the connection starts a conversation (a token must be fresh: the
    /// service lets a token open sessions only shortly after it was minted), rather than
    /// resuming one. The error says why, in words for the log (never the secret).
    fn credential(&self, new_session: bool) -> CredentialFuture<'_>;

    /// A dial with the credential just given failed: a cached token may be the reason.
    fn failed(&self) {}
}

impl Credentials for ApiKey {
    fn credential(&self, _new_session: bool) -> CredentialFuture<'_> {
        let c = Credential::Key(self.clone());
        Box::pin(async move { Ok(c) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let shown = format!("{:?}", ApiKey::new("AIzaSECRET"));
        assert!(!shown.contains("SECRET"), "{shown}");
        let shown = format!("{:?}", Credential::Token(Token::new("auth_tokens/SECRET")));
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
