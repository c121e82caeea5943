//! Checked writes to procfs (CVE-2025-52881, CVE-2019-16884, CVE-2019-19921).
//!
//! Writes to /proc change kernel state: sysctls, oom_score_adj, LSM exec
//! labels, time namespace offsets, uid/gid maps. Inside a container the
//! `/proc` we would write through is built from a config and an image we do
//! not trust: a bind mount over /proc/sys/kernel/shmmax (or a race with a
//! shared mount) can send "our" write to /proc/sys/kernel/core_pattern or to
//! a plain file. So every write here goes through a procfs instance of our
//! own, where no mount of anybody else can sit:
//!
//! 1. fsopen("proc") + fsmount: a fresh, detached procfs for our pid
//!    namespace (needs CAP_SYS_ADMIN, which init and the parent have);
//! 2. else open_tree(OPEN_TREE_CLONE) of /proc: a detached copy of that one
//!    mount, without whatever is mounted below it;
//! 3. else /proc itself, after checking it is a procfs root.
//!
//! Paths below the root are opened with openat2 RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV, so nothing
//! can redirect them, and the opened fd must be a regular file on a
//! filesystem with PROC_SUPER_MAGIC before a byte is written.

use crate::bail;
use crate::error::{Context, Result};
use nix::fcntl::{openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::fstat;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::newmount::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID};

const PROC_ROOT_INO: u64 = 1;

/// A new procfs instance, mounted nowhere.
fn fresh_procfs() -> std::io::Result<OwnedFd> {
    let fs = newmount::fsopen(c"proc")?;
    newmount::create_and_mount(
        &fs,
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    )
}

/// A detached clone of the mount at /proc (without its submounts).
fn cloned_proc() -> std::io::Result<OwnedFd> {
    newmount::clone_tree(c"/proc")
}

fn plain_proc() -> std::io::Result<OwnedFd> {
    nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(std::io::Error::from)
}

/// The fd must be the root directory of a procfs.
fn check_root(fd: &OwnedFd) -> Result<()> {
    let sfs = fstatfs(fd).ctx(|| "statfs procfs root")?;
    let st = fstat(fd).ctx(|| "stat procfs root")?;
    if sfs.filesystem_type() != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO {
        bail!("/proc is not the root of a procfs: refusing to write kernel settings through it");
    }
    Ok(())
}

fn open_root() -> Result<OwnedFd> {
    let fd = fresh_procfs()
        .or_else(|_| cloned_proc())
        .or_else(|_| plain_proc())
        .ctx(|| "open a procfs instance")?;
    check_root(&fd)?;
    Ok(fd)
}

/// Run `f` with a procfs root opened for this call alone. It is never kept:
/// a procfs handle left open in init is a writable /proc/sys (and the host's
/// core_pattern) for whoever reaches init's fds, so it lives only as long as
/// the writes it serves.
fn with_root<T>(f: impl FnOnce(BorrowedFd) -> Result<T>) -> Result<T> {
    let root = open_root()?;
    f(root.as_fd())
}

fn resolve_flags() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
        | ResolveFlag::RESOLVE_NO_XDEV
}

/// Open `rel` (relative to the procfs root) for writing, refusing anything that
/// is not a regular procfs file.
fn open_for_write(root: BorrowedFd, rel: &str) -> Result<std::fs::File> {
    if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
        bail!("invalid procfs path {rel:?}");
    }
    let how = OpenHow::new()
        .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(resolve_flags());
    let fd = openat2(root, rel, how).ctx(|| format!("open /proc/{rel}"))?;
    let sfs = fstatfs(&fd).ctx(|| format!("statfs /proc/{rel}"))?;
    if sfs.filesystem_type() != PROC_SUPER_MAGIC {
        bail!("/proc/{rel} is not on procfs: refusing to write to it");
    }
    let st = fstat(&fd).ctx(|| format!("stat /proc/{rel}"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        bail!("/proc/{rel} is not a regular procfs file: refusing to write to it");
    }
    Ok(std::fs::File::from(fd))
}

/// `"self"` or `"thread-self"` as seen by our procfs: `<pid>` or `<pid>/task/<tid>`.
fn link(root: BorrowedFd, name: &str) -> Result<String> {
    let t = readlinkat(root, name).ctx(|| format!("readlink /proc/{name}"))?;
    let t = t.to_string_lossy().into_owned();
    if t.is_empty() || t.starts_with('/') || t.contains("..") {
        bail!("unexpected /proc/{name} -> {t:?}");
    }
    Ok(t)
}

/// Write `data` to `/proc/<rel>` with one write(2) (procfs files take a whole
/// value per write).
fn write_at(root: BorrowedFd, rel: &str, data: &[u8]) -> Result<()> {
    let mut f = open_for_write(root, rel)?;
    f.write_all(data).ctx(|| format!("write /proc/{rel}"))
}

/// Write `/proc/<rel>`, e.g. `sys/kernel/domainname`.
pub fn write(rel: &str, data: &[u8]) -> Result<()> {
    with_root(|root| write_at(root, rel, data))
}

/// Write several `/proc/<rel>` files through one procfs handle (sysctls),
/// naming the first that fails with `what` of its entry.
pub fn write_all<'a>(writes: impl IntoIterator<Item = (String, &'a [u8], String)>) -> Result<()> {
    with_root(|root| {
        for (rel, data, what) in writes {
            write_at(root, &rel, data).ctx(|| what)?;
        }
        Ok(())
    })
}

/// Write `/proc/self/<rel>`, e.g. `oom_score_adj`.
pub fn write_self(rel: &str, data: &[u8]) -> Result<()> {
    with_root(|root| {
        let base = link(root, "self")?;
        write_at(root, &format!("{base}/{rel}"), data)
    })
}

/// Write `/proc/thread-self/<rel>`, e.g. `attr/apparmor/exec` (LSM attributes
/// are per thread).
pub fn write_thread_self(rel: &str, data: &[u8]) -> Result<()> {
    with_root(|root| {
        let base = link(root, "thread-self")?;
        write_at(root, &format!("{base}/{rel}"), data)
    })
}

/// nsfs, the filesystem of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Open `/proc/<pid>/ns/<name>` (our own with `pid` None) as a namespace
/// handle, for setns(2) or mount_setattr's userns_fd. The `ns` directory is
/// reached through the checked walk; its entry is a magic link, which that
/// walk refuses, so it alone is followed, from the directory fd (nothing to
/// redirect in a procfs instance of our own). Refused unless it is an nsfs
/// file.
pub fn open_ns(pid: Option<i32>, name: &str) -> Result<OwnedFd> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        bail!("invalid namespace name {name:?}");
    }
    with_root(|root| {
        let base = match pid {
            Some(p) if p > 0 => p.to_string(),
            Some(p) => bail!("invalid pid {p} for its {name} namespace"),
            None => link(root, "self")?,
        };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(resolve_flags());
        let dir = openat2(root, format!("{base}/ns").as_str(), how)
            .ctx(|| format!("open /proc/{base}/ns"))?;
        let fd = nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("open /proc/{base}/ns/{name}"))?;
        let sfs = fstatfs(&fd).ctx(|| format!("statfs /proc/{base}/ns/{name}"))?;
        if sfs.filesystem_type().0 as i64 != NSFS_MAGIC {
            bail!("/proc/{base}/ns/{name} is not a namespace file");
        }
        Ok(fd)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn writes_reach_procfs() {
        if !is_root() {
            return;
        }
        let cur = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        write_self("oom_score_adj", cur.trim().as_bytes()).unwrap();
        write(
            "sys/kernel/shmmni",
            std::fs::read("/proc/sys/kernel/shmmni").unwrap().as_slice(),
        )
        .unwrap();
    }

    #[test]
    fn escapes_are_refused() {
        if !is_root() {
            return;
        }
        // "self" is a symlink: RESOLVE_NO_SYMLINKS refuses to follow it.
        assert!(write("self/oom_score_adj", b"0").is_err());
        assert!(write("../etc/passwd", b"x").is_err());
        assert!(write("/etc/passwd", b"x").is_err());
        // A directory is not a writable procfs file.
        assert!(write("sys/kernel", b"x").is_err());
    }
}
