//! Rootless mode: skiff run by a user who is not root, or by root inside a
//! user namespace that does not own the host's (how rootless podman calls
//! the runtime). What changes, as in runc's rootless mode: the default state
//! directory, how the container's uid/gid maps are written, and cgroups used
//! only where the user may write them.

use crate::bail;
use crate::error::{Context, Result};
use oci_spec::runtime::LinuxIdMapping;
use std::path::PathBuf;

/// Whether we run in a user namespace other than the host's: the initial
/// namespace maps every id ("0 0 4294967295").
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => {
            let f: Vec<&str> = m.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

/// Not root, or root of a user namespace that is not the host's: what
/// cannot be had without the host's root (the system's systemd, device
/// programs) is then out of reach.
pub fn is_rootless_euid() -> bool {
    !nix::unistd::geteuid().is_root() || in_user_namespace()
}

/// runc's `--rootless` rule: "true" and "false" as given; "auto" (the
/// default): rootless when not root, or when root of a user namespace.
pub fn resolve(flag: Option<&str>) -> Result<bool> {
    match flag.unwrap_or("auto") {
        "true" => Ok(true),
        "false" => Ok(false),
        "auto" => Ok(is_rootless_euid()),
        other => bail!("invalid --rootless value {other:?}: use true, false or auto"),
    }
}

/// The default `--root`: `$XDG_RUNTIME_DIR/skiff` for a user who is not root,
/// and for root of a user namespace whose $USER is not "root" (runc's rule
/// for `$XDG_RUNTIME_DIR/runc`); None: the usual /run/skiff.
pub fn default_root() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty())?;
    let honor = if !nix::unistd::geteuid().is_root() {
        true
    } else if !in_user_namespace() {
        false
    } else {
        std::env::var("USER").map_or(true, |u| u != "root")
    };
    honor.then(|| PathBuf::from(xdg).join("skiff"))
}

/// How the maps of a container's user namespace get written by a parent
/// that is not root: the kernel lets it map only its own id (and, for gids,
/// only after setgroups is denied); anything more takes the setuid helpers
/// newuidmap/newgidmap, which check /etc/subuid and /etc/subgid.
#[derive(Debug, PartialEq)]
pub enum MapWriter {
    /// Write the map ourselves (a single mapping of our own id).
    Direct,
    /// Run this helper with the mappings as arguments.
    Helper(&'static str),
}

pub fn map_writer(maps: &[LinuxIdMapping], own_id: u32, helper: &'static str) -> MapWriter {
    match maps {
        [m] if m.host_id() == own_id && m.size() == 1 => MapWriter::Direct,
        _ => MapWriter::Helper(helper),
    }
}

/// Run newuidmap/newgidmap for `pid` with `maps`, naming what failed.
pub fn run_map_helper(helper: &str, pid: i32, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd.output().map_err(|e| {
        crate::error::Error::new(format!(
            "rootless: {helper} (package uidmap) is needed to map more than your own id: {e}"
        ))
    })?;
    if !out.status.success() {
        bail!(
            "rootless: {helper} {pid}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Write `pid`'s maps as an unprivileged parent: direct writes where the
/// kernel allows them, the setuid helpers otherwise.
pub fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if !uids.is_empty() {
        match map_writer(uids, euid, "newuidmap") {
            MapWriter::Direct => write_proc(pid, "uid_map", &crate::namespaces::map_text(uids))?,
            MapWriter::Helper(h) => run_map_helper(h, pid, uids)?,
        }
    }
    if !gids.is_empty() {
        match map_writer(gids, egid, "newgidmap") {
            MapWriter::Direct => {
                // An unprivileged gid_map needs setgroups denied first, so
                // the container cannot drop a group it was given.
                write_proc(pid, "setgroups", "deny")?;
                write_proc(pid, "gid_map", &crate::namespaces::map_text(gids))?;
            }
            MapWriter::Helper(h) => run_map_helper(h, pid, gids)?,
        }
    }
    Ok(())
}

fn write_proc(pid: i32, file: &str, text: &str) -> Result<()> {
    crate::sys::procfs::write_all(vec![(
        format!("{pid}/{file}"),
        text.as_bytes(),
        format!("write {file}"),
    )])
    .ctx(|| format!("rootless: /proc/{pid}/{file}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn m(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    #[test]
    fn own_id_alone_is_written_directly_anything_more_by_the_helper() {
        assert_eq!(
            map_writer(&[m(0, 1000, 1)], 1000, "newuidmap"),
            MapWriter::Direct
        );
        assert_eq!(
            map_writer(&[m(0, 1000, 2)], 1000, "newuidmap"),
            MapWriter::Helper("newuidmap")
        );
        assert_eq!(
            map_writer(&[m(0, 1000, 1), m(1, 100000, 65536)], 1000, "newgidmap"),
            MapWriter::Helper("newgidmap")
        );
        assert_eq!(
            map_writer(&[m(0, 0, 1)], 1000, "newuidmap"),
            MapWriter::Helper("newuidmap")
        );
    }

    #[test]
    fn rootless_flag_values() {
        assert!(resolve(Some("true")).unwrap());
        assert!(!resolve(Some("false")).unwrap());
        assert!(resolve(Some("yes")).is_err());
    }
}
