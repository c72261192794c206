//! The one type every credential is held in (API secrets, the Redis password, storage
//! keys, template tokens' signing secret): its `Debug` and `Display` print `***`, never
//! the value; [`Secret::expose`] is the one way to read it, where it is used.

use std::fmt;

use serde::Deserialize;

/// A secret string.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value, to sign or send with (never to print).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (not configured).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of the secret masked as `***` (unchanged when the
    /// secret is empty): for error messages a server or library may have echoed it into.
    pub fn mask_in(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(self.0.as_str(), "***")
        }
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "" } else { "***" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_debug_nor_display_prints_the_value() {
        let s = Secret::from("hunter2-long-secret");
        let shown = format!("{s} {s:?} {:?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s.expose(), "hunter2-long-secret");
        assert_eq!(s.mask_in("bad key hunter2-long-secret"), "bad key ***");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }
}
