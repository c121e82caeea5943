//! A command's result on stdout. runc (Go) dies of SIGPIPE when the reader of
//! its stdout has gone (`runc list | head -1`); Rust's `println!` panics there
//! instead, and with `panic = "abort"` that is a core dump and exit 134.

use crate::error::{Context, Result};
use std::io::Write;

/// Write `text` and a newline to stdout.
pub fn line(text: &str) -> Result<()> {
    raw(&format!("{text}\n"))
}

/// Write `text` to stdout as it is. A closed pipe ends the process by SIGPIPE,
/// as it ends runc; any other failure is an error naming stdout.
pub fn raw(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::sys::die_of_sigpipe(),
        r => r.ctx(|| "write to stdout"),
    }
}
