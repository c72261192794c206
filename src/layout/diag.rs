//! Diagnostics for layout authors: `file:line:column: error: message` plus a hint, the
//! shape compilers use, so editors and terminals link straight to the spot.

use std::fmt;
use std::ops::Range;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The layout cannot be used.
    Error,
    /// The layout works but probably not as meant.
    Warning,
}

/// One message about a place in a layout file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file (or built-in name).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at byte `span.start` of `text`.
    pub fn at(
        severity: Severity,
        file: &str,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let (line, column) = line_col(text, span.start);
        Diagnostic {
            severity,
            file: file.to_owned(),
            line,
            column,
            message: message.into(),
            hint,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {kind}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`; an offset past the
/// end (or inside a character) points just after the last whole character before it.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_characters() {
        let text = "a = 1\nnäme = x\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // "x" is after "näme = " (7 characters, 8 bytes).
        assert_eq!(line_col(text, 6 + 8), (2, 8));
        assert_eq!(line_col(text, 1000), (3, 1));
        assert_eq!(line_col(text, 8), (2, 2)); // inside 'ä'
    }

    #[test]
    fn display_has_position_and_hint() {
        let d = Diagnostic::at(
            Severity::Error,
            "x.toml",
            "a\nbc",
            3..4,
            "bad",
            Some("do this".into()),
        );
        assert_eq!(d.to_string(), "x.toml:2:2: error: bad\n  hint: do this");
    }
}
