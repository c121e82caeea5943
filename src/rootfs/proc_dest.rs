//! What may be mounted at or under the container's /proc (runc's
//! checkProcMount). Masks, read-only paths, sysctls and the exec fifo all
//! rely on /proc being a real procfs: a tmpfs or a bind of a rootfs directory
//! there would let the bundle fake its entries. So /proc takes only a procfs
//! (a fresh one, or a bind of one), and nothing is mounted below it except the
//! few files lxcfs emulates.

use super::safe_path::fd_path;
use crate::bail;
use crate::error::{Context, Result};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Files under /proc a mount may cover: what lxcfs emulates (runc 1.4's list;
/// runc 1.1 also had /proc/net/dev, dropped since, and lacked fips_enabled).
const ALLOWED_UNDER_PROC: &[&str] = &[
    "cpuinfo",
    "diskstats",
    "meminfo",
    "stat",
    "swaps",
    "uptime",
    "loadavg",
    "slabinfo",
    "sys/kernel/ns_last_pid",
    "sys/crypto/fips_enabled",
];

#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    /// Not /proc nor under it.
    Elsewhere,
    /// /proc itself: only a procfs.
    Proc,
    /// Under /proc, and one of the lxcfs files.
    Allowed,
    /// Under /proc, anything else.
    Inside,
}

/// Where `rel` (a destination as resolved, relative to the rootfs) lands.
pub fn place(rel: &Path) -> Place {
    match rel.strip_prefix("proc") {
        Err(_) => Place::Elsewhere,
        Ok(sub) if sub.as_os_str().is_empty() => Place::Proc,
        Ok(sub) if ALLOWED_UNDER_PROC.iter().any(|a| sub == Path::new(a)) => Place::Allowed,
        Ok(_) => Place::Inside,
    }
}

/// The destination `target` (an fd resolved inside the rootfs, before
/// pivot_root, when our /proc is still the host's) as a path relative to the
/// rootfs `root_fd`: symlinks in the config's destination already followed.
fn resolved(root_fd: &impl AsRawFd, target: &impl AsRawFd) -> Result<PathBuf> {
    let root = std::fs::read_link(fd_path(root_fd)).ctx(|| "readlink rootfs")?;
    let t = std::fs::read_link(fd_path(target)).ctx(|| "readlink mount destination")?;
    match t.strip_prefix(&root) {
        Ok(rel) => Ok(rel.to_path_buf()),
        Err(_) => bail!(
            "mount destination {} is outside the rootfs {}",
            t.display(),
            root.display()
        ),
    }
}

/// Whether `path` (a bind source on the host) is on a procfs.
fn is_procfs(path: &Path) -> Result<bool> {
    let st = nix::sys::statfs::statfs(path).ctx(|| format!("statfs {}", path.display()))?;
    Ok(st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Refuse a mount that would put something other than procfs at /proc, or
/// anything under /proc but the lxcfs files. `fstype` is the config's type,
/// `bind_src` the source when it is a bind. Wording as runc's.
pub fn check(
    root_fd: &impl AsRawFd,
    target: &impl AsRawFd,
    fstype: &str,
    bind_src: Option<&Path>,
    shown: &str,
) -> Result<()> {
    let rel = resolved(root_fd, target)?;
    let dest = Path::new("/").join(&rel);
    match place(&rel) {
        Place::Elsewhere | Place::Allowed => Ok(()),
        Place::Proc => {
            let ok = match bind_src {
                Some(src) => is_procfs(src)?,
                None => fstype == "proc",
            };
            if ok {
                return Ok(());
            }
            bail!(
                "{shown}: {:?} cannot be mounted because it is not of type proc",
                dest
            )
        }
        Place::Inside => bail!(
            "{shown}: {:?} cannot be mounted because it is inside /proc",
            dest
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_places() {
        assert_eq!(place(Path::new("proc")), Place::Proc);
        assert_eq!(place(Path::new("proc/cpuinfo")), Place::Allowed);
        assert_eq!(
            place(Path::new("proc/sys/kernel/ns_last_pid")),
            Place::Allowed
        );
        assert_eq!(place(Path::new("proc/sys/kernel/shmmax")), Place::Inside);
        assert_eq!(place(Path::new("proc/1/oom_score_adj")), Place::Inside);
        assert_eq!(place(Path::new("proc/cpuinfo/x")), Place::Inside);
        assert_eq!(place(Path::new("procfoo")), Place::Elsewhere);
        assert_eq!(place(Path::new("sys/proc")), Place::Elsewhere);
        assert_eq!(place(Path::new("")), Place::Elsewhere);
    }
}
