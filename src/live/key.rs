//! The API key as a type of its own, so that it cannot leak into logs by accident.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let shown = format!("{:?}", ApiKey::new("AIzaSECRET"));
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
