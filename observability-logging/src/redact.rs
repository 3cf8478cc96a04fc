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

#[derive(Clone)]
pub(crate) struct Redaction {
    /// The names, in ASCII lowercase, none empty.
    needles: Vec<String>,
    /// The bytes (in lowercase) some name starts with: at any other
    /// position of a field name, no name can start.
    starts: [bool; 256],
    /// The shortest name's length.
    shortest: usize,
}

impl std::fmt::Debug for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redaction")
            .field("needles", &self.needles)
            .finish_non_exhaustive()
    }
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
        let needles: Vec<String> = names
            .into_iter()
            .map(|n| n.as_ref().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        let mut starts = [false; 256];
        for needle in &needles {
            starts[usize::from(needle.as_bytes()[0])] = true;
        }
        let shortest = needles.iter().map(String::len).min().unwrap_or(usize::MAX);
        Self {
            needles,
            starts,
            shortest,
        }
    }

    /// Whether a field with this name is redacted: whether it contains a
    /// name, ignoring ASCII case. Run for every field of every span and
    /// line, so it looks further only at positions where a name starts (a
    /// field name usually has none).
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name = name.as_bytes();
        let Some(last) = name.len().checked_sub(self.shortest) else {
            return false;
        };
        (0..=last).any(|at| {
            self.starts[usize::from(name[at].to_ascii_lowercase())] && {
                let rest = &name[at..];
                self.needles.iter().any(|needle| {
                    rest.get(..needle.len())
                        .is_some_and(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
                })
            }
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
        assert!(!r.matches(""));
        let custom = Redaction::new(["SSN", "", "card_number"]);
        for name in ["ssn", "user_SSN", "CARD_NUMBER_last4"] {
            assert!(custom.matches(name), "{name}");
        }
        for name in ["ss", "card_numbe", "password"] {
            assert!(!custom.matches(name), "{name}");
        }
    }

    /// The search by first byte finds what a plain search of every
    /// position finds.
    #[test]
    fn agrees_with_a_search_of_every_position() {
        use proptest::prelude::*;
        fn naive(needles: &[String], name: &str) -> bool {
            needles.iter().filter(|n| !n.is_empty()).any(|needle| {
                name.len() >= needle.len()
                    && name
                        .as_bytes()
                        .windows(needle.len())
                        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
            })
        }
        proptest!(|(needles in proptest::collection::vec("[a-zA-Z_é]{0,4}", 0..4),
                    name in "[a-zA-Z_.é]{0,12}")| {
            let r = Redaction::new(&needles);
            prop_assert_eq!(r.matches(&name), naive(&needles, &name), "{:?} {}", needles, name);
        });
        let r = Redaction::default();
        for name in ["x_PassWord_y", "tokens", "order.id", "user_agent", "Cookie"] {
            let defaults: Vec<String> = DEFAULT_REDACTED_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect();
            assert_eq!(r.matches(name), naive(&defaults, name), "{name}");
        }
    }
}
