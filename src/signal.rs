//! Signal names as `kill` accepts them: "KILL", "SIGKILL", "9", "sigterm", "RTMIN+3".

use crate::bail;
use crate::error::Result;
use nix::sys::signal::Signal;
use std::str::FromStr;

/// The signal number for a name or number; numbers beyond the named set
/// (real-time signals) are accepted up to SIGRTMAX.
pub fn parse(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if n > 0 && n <= libc::SIGRTMAX() {
            return Ok(n);
        }
        bail!("invalid signal: {s}");
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off = parse_offset(rest, s)?;
        let n = libc::SIGRTMIN() + off;
        if off >= 0 && n <= libc::SIGRTMAX() {
            return Ok(n);
        }
        bail!("invalid signal: {s}");
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off = parse_offset(rest, s)?;
        let n = libc::SIGRTMAX() + off;
        if off <= 0 && n >= libc::SIGRTMIN() {
            return Ok(n);
        }
        bail!("invalid signal: {s}");
    }
    match Signal::from_str(&format!("SIG{name}")) {
        Ok(sig) => Ok(sig as i32),
        Err(_) => bail!("invalid signal: {s}"),
    }
}

fn parse_offset(rest: &str, orig: &str) -> Result<i32> {
    if rest.is_empty() {
        return Ok(0);
    }
    match rest.parse::<i32>() {
        Ok(n) => Ok(n),
        Err(_) => bail!("invalid signal: {orig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("sigterm").unwrap(), 15);
        assert_eq!(parse("15").unwrap(), 15);
        assert_eq!(parse("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert_eq!(parse("RTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
        for bad in ["", "0", "-1", "FOO", "SIGFOO", "65", "RTMIN+x", "RTMAX+1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
