//! Text that came from the network, made safe for logs and terminals.
//!
//! Names, groups, serve infos and refusal texts are chosen by peers. Shown
//! raw, a newline forges a log line or a table row, and an escape sequence
//! clears a terminal or sets its title. [`Escaped`] shows control and
//! bidirectional-override characters as Rust escapes (`\n`, `\u{1b}`), so
//! every log line and every table row stays one line that begins where it
//! should. Vnets refuse such characters in what they register (see
//! [`printable`]); escaping still guards everything that is shown.
use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a terminal raw: control characters and
/// the marks and overrides that reorder text.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with unsafe characters escaped; borrowed when there are none.
///
/// ```
/// assert_eq!(proto::text::escape("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
/// assert_eq!(proto::text::escape("home ssh"), "home ssh");
/// ```
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Displays a string with [`escape`]: for log fields
/// (`info!(name = %Escaped(&name), ...)`).
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape(self.0))
    }
}

/// Checks that `text` holds no character [`escape`] would change.
///
/// # Errors
/// Names the first such character, escaped.
///
/// ```
/// assert!(proto::text::printable("home-ssh 1").is_ok());
/// assert!(proto::text::printable("a\tb").is_err());
/// ```
pub fn printable(text: &str) -> Result<(), String> {
    match text.chars().find(|c| is_unsafe(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "contains the control character {}",
            c.escape_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_lines_and_terminal_sequences_stay_visible_text() {
        let hostile = "x\r\n2026-11-29 INFO vnet joined name=admin\u{7}\u{9b}31m\u{202e}";
        let shown = escape(hostile);
        assert!(!shown.chars().any(is_unsafe), "{shown}");
        assert_eq!(
            shown,
            "x\\r\\n2026-11-29 INFO vnet joined name=admin\\u{7}\\u{9b}31m\\u{202e}"
        );
        assert_eq!(Escaped("a\nb").to_string(), "a\\nb");
        assert_eq!(format!("{:?}", Escaped("a\nb")), "\"a\\nb\"");
        assert!(matches!(escape("plain ünïcode"), Cow::Borrowed(_)));
    }
}
