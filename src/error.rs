//! The one error type: a human-readable chain of context ("mount proc onto /proc: EPERM: ...").
//! Errors cross the init/parent boundary as strings, so a flat message is all we need.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The longest run of non-space characters (an ID, a path, a value from the
/// config) an error message shows before cutting it.
const MAX_WORD: usize = 256;
/// The most of a whole message that is shown: its head and its tail (where
/// the errno of a context chain is).
const MAX_HEAD: usize = 3072;
const MAX_TAIL: usize = 1024;

/// An error or log message as it may be shown: control characters escaped
/// (a NUL or a terminal escape from a config must not reach a terminal or a
/// log reader raw; newlines and tabs stay), every word cut to MAX_WORD
/// characters and the whole to about 4 KiB, each cut saying how much went.
/// Messages echo their input (IDs, paths, config values), and input has no
/// length limit: one 10 MB value would otherwise be 10 MB of stderr.
pub fn bounded(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MAX_HEAD + MAX_TAIL + 64));
    let mut word = 0;
    let mut cut = 0usize;
    for c in msg.chars() {
        if c.is_whitespace() {
            if cut > 0 {
                out.push_str(&format!("...[{cut} bytes cut]"));
                cut = 0;
            }
            word = 0;
        } else if word >= MAX_WORD {
            cut += c.len_utf8();
            continue;
        } else {
            word += 1;
        }
        push_escaped(&mut out, c);
    }
    if cut > 0 {
        out.push_str(&format!("...[{cut} bytes cut]"));
    }
    cut_middle(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' | '\t' => out.push(c),
        '\0' => out.push_str("\\0"),
        c if c.is_control() && (c as u32) < 0x100 => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// Keep the head and the tail of a message longer than both together.
fn cut_middle(s: String) -> String {
    if s.len() <= MAX_HEAD + MAX_TAIL {
        return s;
    }
    let head = floor_boundary(&s, MAX_HEAD);
    let tail = floor_boundary(&s, s.len() - MAX_TAIL);
    format!(
        "{}...[{} bytes cut]...{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Build an error from format arguments: `bail!("bad id {id:?}")`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::new(format!($($arg)*))) };
}

/// Attach "what we were doing" to any displayable error.
pub trait Context<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {}", what().into(), e)))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(e.to_string())
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_escapes_control_characters() {
        assert_eq!(
            bounded("a\0b\x1b[31m\tc\nd\u{85}"),
            "a\\0b\\x1b[31m\tc\nd\\x85"
        );
        assert_eq!(bounded("plain: ENOENT"), "plain: ENOENT");
    }

    #[test]
    fn bounded_cuts_long_words_and_long_messages() {
        let long = format!("bad id \"{}\": too long", "x".repeat(10_000));
        let b = bounded(&long);
        // The word is the quote and 255 x; the rest of it, quote and colon included, goes.
        let want = format!(
            "bad id \"{}...[{} bytes cut] too long",
            "x".repeat(255),
            10_000 - 255 + 2
        );
        assert_eq!(b, want);
        assert!(b.len() < 400, "{}", b.len());
        let many = "word ".repeat(1_000_000);
        let b = bounded(&format!("{many}: EPERM"));
        assert!(b.len() < MAX_HEAD + MAX_TAIL + 64, "{}", b.len());
        assert!(b.ends_with(": EPERM"));
        assert!(b.contains("bytes cut]..."));
        // Multi-byte characters are cut on their boundaries.
        let b = bounded(&"é".repeat(100_000));
        assert!(b.starts_with(&"é".repeat(256)));
    }

    #[test]
    fn context_chains_messages() {
        let r: std::result::Result<(), nix::Error> = Err(nix::Error::EPERM);
        let e = r.ctx(|| "mount proc onto /proc").unwrap_err();
        assert_eq!(
            e.message(),
            "mount proc onto /proc: EPERM: Operation not permitted"
        );
    }
}
