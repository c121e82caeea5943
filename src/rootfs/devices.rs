//! /dev inside the container: the default nodes, linux.devices, and the standard
//! symlinks. Nodes are made with mknodat under a directory fd resolved inside the
//! rootfs; in a user namespace (no mknod) the host node is bind-mounted instead.

use super::safe_path::{fd_path, Root};
use crate::bail;
use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Node {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (runtime-spec "Default Devices").
pub fn defaults() -> Vec<Node> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .iter()
    .map(|(p, maj, min)| Node {
        path: PathBuf::from(p),
        kind: SFlag::S_IFCHR,
        major: *maj,
        minor: *min,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

pub fn from_spec(d: &LinuxDevice) -> Result<Node> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => bail!("device {}: type 'a' is not a node", d.path().display()),
    };
    Ok(Node {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

fn parent_dir(root: &Root, p: &Path) -> Result<(OwnedFd, PathBuf)> {
    let parent = p.parent().unwrap_or(Path::new("/"));
    let name = match p.file_name() {
        Some(n) => PathBuf::from(n),
        None => bail!("invalid device path {}", p.display()),
    };
    let pfd = root.mkdir_all(parent, 0o755)?;
    let dir = nix::fcntl::openat(
        pfd.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", parent.display()))?;
    Ok((dir, name))
}

pub fn create(root: &Root, n: &Node, bind_only: bool) -> Result<()> {
    if !n.path.starts_with("/dev") {
        bail!("device {}: path must be under /dev", n.path.display());
    }
    if bind_only {
        return bind_from_host(root, n);
    }
    let (dir, name) = parent_dir(root, &n.path)?;
    let _ = nix::unistd::unlinkat(
        dir.as_fd(),
        name.as_path(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    let dev = makedev(n.major, n.minor);
    match mknodat(
        dir.as_fd(),
        name.as_path(),
        n.kind,
        Mode::from_bits_truncate(n.mode),
        dev,
    ) {
        Ok(()) => {}
        Err(Errno::EPERM) => return bind_from_host(root, n),
        Err(e) => bail!("mknod {}: {e}", n.path.display()),
    }
    fchownat(
        dir.as_fd(),
        name.as_path(),
        Some(Uid::from_raw(n.uid)),
        Some(Gid::from_raw(n.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {}", n.path.display()))?;
    Ok(())
}

fn bind_from_host(root: &Root, n: &Node) -> Result<()> {
    let target = root.mkfile_all(&n.path)?;
    mount(
        Some(&n.path),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind {} onto {}", n.path.display(), n.path.display()))
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx and /dev/core.
pub fn symlinks(root: &Root) -> Result<()> {
    let dev = root.mkdir_all(Path::new("/dev"), 0o755)?;
    let dir = nix::fcntl::openat(
        dev.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /dev")?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dir.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => bail!("symlink /dev/{name} -> {target}: {e}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_nodes() {
        let d = defaults();
        assert_eq!(d.len(), 6);
        assert!(d
            .iter()
            .any(|n| n.path == Path::new("/dev/null") && n.major == 1 && n.minor == 3));
    }
}
