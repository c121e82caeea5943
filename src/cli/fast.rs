//! `state` as shims call it (`[--root DIR] state ID`, nothing else), without
//! building clap's whole command tree: that is about a quarter of the CPU a
//! `state` costs (0.2-0.3 ms of page faults and setup on the bench host), and
//! containerd/podman shims ask for state all the time. Any other command
//! line, including any other flag, goes through clap as before.

use crate::container::Globals;
use std::ffi::OsString;
use std::path::PathBuf;

/// The root (None: not given) and ID of exactly `[--root DIR] state ID`.
pub fn plain_state(args: &[OsString]) -> Option<(Option<PathBuf>, &str)> {
    let rest: Vec<&str> = args
        .get(1..)?
        .iter()
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let plain = |v: &str| !v.is_empty() && !v.starts_with('-');
    match rest.as_slice() {
        ["state", id] if plain(id) => Some((None, id)),
        ["--root", root, "state", id] if plain(root) && plain(id) => {
            Some((Some(PathBuf::from(root)), id))
        }
        _ => None,
    }
}

/// `state` with clap's defaults for everything not given: text log to stderr,
/// no debug, cgroupfs, --rootless auto. Returns the exit status.
pub fn state(root: Option<PathBuf>, id: &str) -> i32 {
    let format = crate::logging::Format::Text;
    if let Err(e) = crate::logging::init(None, format, false) {
        eprintln!("{}", crate::error::bounded(&e));
        return 1;
    }
    let root = match (root, crate::rootless::default_root()) {
        (Some(r), _) => r,
        (None, Some(xdg)) => xdg,
        (None, None) => PathBuf::from(super::DEFAULT_ROOT),
    };
    let run = || -> crate::error::Result<i32> {
        let g = Globals {
            root,
            systemd_cgroup: false,
            rootless: crate::rootless::resolve(None)?,
        };
        super::state::run(&g, super::state::Args { id: id.to_string() })
    };
    match run() {
        Ok(code) => code,
        Err(e) => {
            crate::logging::report_error(e.message(), format, false);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_the_plain_state_command_line_is_taken() {
        let a = args(&["skiff", "--root", "/r", "state", "c1"]);
        assert_eq!(plain_state(&a), Some((Some(PathBuf::from("/r")), "c1")));
        let a = args(&["skiff", "state", "c1"]);
        assert_eq!(plain_state(&a), Some((None, "c1")));
        for other in [
            &["skiff", "state"][..],
            &["skiff", "state", "--help"],
            &["skiff", "--root=/r", "state", "c1"],
            &["skiff", "--debug", "state", "c1"],
            &["skiff", "state", "c1", "--log", "x"],
            &["skiff", "--root", "/r", "state", "c1", "c2"],
            &["skiff", "-root", "/r", "state", "c1"],
            &["skiff", "list"],
        ] {
            assert_eq!(plain_state(&args(other)), None, "{other:?}");
        }
    }
}
