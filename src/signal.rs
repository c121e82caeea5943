//! Signal names as `kill` accepts them: "KILL", "SIGKILL", "9", "sigterm", "RTMIN+3".

use crate::bail;
use crate::error::Result;
use nix::sys::signal::Signal;
use std::str::FromStr;

/// The signal number for a name or number; numbers beyond the named set
/// (real-time signals) are accepted up to SIGRTMAX, and 0 (as runc does:
/// `kill ID 0` delivers nothing and only checks that init exists).
pub fn parse(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (0..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal: {s}");
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    // Offsets come from the command line: checked arithmetic, so a huge N is
    // an invalid signal rather than a wrapped (or, in debug, panicking) sum.
    let rt = if let Some(rest) = name.strip_prefix("RTMIN") {
        Some(parse_offset(rest).and_then(|off| min.checked_add(off)))
    } else {
        name.strip_prefix("RTMAX")
            .map(|rest| parse_offset(rest).and_then(|off| max.checked_add(off)))
    };
    match rt {
        Some(Some(n)) if (min..=max).contains(&n) => Ok(n),
        Some(_) => bail!("invalid signal: {s}"),
        None => match Signal::from_str(&format!("SIG{name}")) {
            Ok(sig) => Ok(sig as i32),
            Err(_) => bail!("invalid signal: {s}"),
        },
    }
}

/// The `+N` / `-N` after RTMIN or RTMAX (empty is 0); None if not a number.
fn parse_offset(rest: &str) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    rest.parse::<i32>().ok()
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
        for bad in ["", "-1", "FOO", "SIGFOO", "65", "RTMIN+x", "RTMAX+1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_checks_existence() {
        // `runc kill ID 0` sends nothing and only reports whether init exists.
        assert_eq!(parse("0").unwrap(), 0);
    }

    #[test]
    fn huge_realtime_offsets_are_invalid_not_overflow() {
        for bad in [
            "RTMIN+2147483647",
            "SIGRTMIN+2147483600",
            "RTMAX-2147483648",
            "RTMAX+2147483647",
            "RTMIN-2147483648",
            "RTMIN+99999999999",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.message().contains("invalid signal"), "{bad}: {e}");
        }
    }
}
