//! `ociVersion`: runtime-spec (config.md, "Specification version") says it
//! MUST be in SemVer v2.0.0 format, and runtimes MUST generate an error for
//! invalid values; runtime-tools' misc_props checks that an invalid one fails.
//!
//! runc does not check it at all (1.1.5 through 1.5.1: opencontainers/runc#1846,
//! "runc does not error on ociVersion=invalid", still open), so this is a
//! deliberate difference: skiff refuses what is not SemVer, and a major other
//! than 1 (this runtime implements runtime-spec 1.x; `features` says
//! ociVersionMin 1.0.0). Any 1.x is accepted, newer minors included: within a
//! major, the spec only adds.

use crate::bail;
use crate::error::Result;

/// Refuse an `ociVersion` that is not SemVer 2.0.0, or not of major 1.
pub fn check(v: &str) -> Result<()> {
    let Some(major) = semver_major(v) else {
        bail!("ociVersion {v:?} is not a SemVer 2.0.0 version (runtime-spec: config.md, Specification version)");
    };
    if major != 1 {
        bail!("ociVersion {v:?}: unsupported runtime-spec major version {major} (skiff implements runtime-spec 1.x)");
    }
    Ok(())
}

/// The major of a SemVer 2.0.0 version `MAJOR.MINOR.PATCH[-PRE][+BUILD]`,
/// None when `v` is not one.
fn semver_major(v: &str) -> Option<u64> {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    if nums.len() != 3 || !nums.iter().all(|n| is_numeric_id(n)) {
        return None;
    }
    // Pre-release identifiers: numeric ones without leading zeros.
    if let Some(p) = pre {
        if !p
            .split('.')
            .all(|i| is_ident(i) && (!is_digits(i) || is_numeric_id(i)))
        {
            return None;
        }
    }
    if let Some(b) = build {
        if !b.split('.').all(is_ident) {
            return None;
        }
    }
    nums[0].parse().ok()
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// A number: digits, no leading zero unless it is "0".
fn is_numeric_id(s: &str) -> bool {
    is_digits(s) && (s == "0" || !s.starts_with('0'))
}

/// A non-empty run of [0-9A-Za-z-].
fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_versions_of_major_1_pass() {
        for v in [
            "1.0.0",
            "1.0.2-dev",
            "1.1.0+dev",
            "1.2.1",
            "1.3.0",
            "1.9.0-rc.1+build.5",
            "1.0.0-alpha-1.0",
        ] {
            assert!(check(v).is_ok(), "{v}");
        }
    }

    #[test]
    fn non_semver_is_refused_naming_oci_version() {
        for v in [
            "invalid",
            "latest",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0+",
            "1.0.0-01",
            "1.0.0-a..b",
            "v1.0.0",
            " 1.0.0",
            "1.0.0_x",
            "",
        ] {
            let e = check(v).expect_err(v).to_string();
            assert!(e.starts_with("ociVersion"), "{v}: {e}");
            assert!(e.contains("SemVer"), "{v}: {e}");
        }
    }

    #[test]
    fn other_majors_are_refused() {
        for v in ["0.1.0", "2.0.0", "9.9.9"] {
            let e = check(v).expect_err(v).to_string();
            assert!(e.contains("unsupported runtime-spec major"), "{v}: {e}");
        }
    }
}
