//! Which field names have their values replaced by `"[REDACTED]"`.

/// The names redacted by default: a field whose name contains one of them
/// (case-insensitive) is redacted, so `db_password` and `X-Api-Key`-style
/// `api_key` fields are too.
pub const DEFAULT_REDACTED_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "api_key",
];

#[derive(Clone, Debug)]
pub(crate) struct Redaction {
    needles: Vec<String>,
}

impl Default for Redaction {
    fn default() -> Self {
        Self::new(DEFAULT_REDACTED_FIELDS.iter().copied())
    }
}

impl Redaction {
    pub(crate) fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            needles: names
                .into_iter()
                .map(|n| n.as_ref().to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Whether a field with this name is redacted.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name = name.as_bytes();
        self.needles.iter().any(|needle| {
            let needle = needle.as_bytes();
            name.len() >= needle.len()
                && name
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_case_insensitively() {
        let r = Redaction::default();
        for name in [
            "password",
            "db_Password",
            "TOKEN",
            "access_token",
            "api_key",
            "cookie",
        ] {
            assert!(r.matches(name), "{name}");
        }
        for name in ["user_id", "message", "pass", "key"] {
            assert!(!r.matches(name), "{name}");
        }
        assert!(!Redaction::new(Vec::<String>::new()).matches("password"));
    }
}
