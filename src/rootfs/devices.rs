//! /dev inside the container: the default nodes, linux.devices, and the standard
//! symlinks. Nodes are made with mknodat under a directory fd resolved inside the
//! rootfs; in a user namespace (no mknod) the host node is bind-mounted instead.

use super::safe_path::{fd_path, Root};
use crate::bail;
use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstatat, major, makedev, minor, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

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

/// A device path must name a node inside /dev: absolute, under `/dev/`, and
/// without `..` (resolved inside the rootfs, `/dev/../etc/x` would be
/// `<rootfs>/etc/x`, and a prefix test on the string lets it through).
pub fn check_path(p: &Path) -> std::result::Result<(), &'static str> {
    let mut parts = p.components();
    if parts.next() != Some(Component::RootDir)
        || parts.next() != Some(Component::Normal("dev".as_ref()))
    {
        return Err("must be an absolute path under /dev/");
    }
    let mut names = 0;
    for c in parts {
        match c {
            Component::Normal(_) => names += 1,
            _ => return Err("must not contain \"..\""),
        }
    }
    if names == 0 {
        return Err("must name a node under /dev/, not /dev itself");
    }
    Ok(())
}

/// Check every linux.devices path up front, naming the entry
/// (`linux.devices[2].path`), so a bad one fails before anything is made.
// Meant for spec::validate (another owner's file): until it calls this,
// from_spec refuses the same paths without the index.
pub fn check_spec(devices: &[LinuxDevice]) -> Result<()> {
    for (i, d) in devices.iter().enumerate() {
        if let Err(why) = check_path(d.path()) {
            bail!("linux.devices[{i}].path {:?}: {why}", d.path());
        }
    }
    Ok(())
}

pub fn from_spec(d: &LinuxDevice) -> Result<Node> {
    if let Err(why) = check_path(d.path()) {
        bail!("linux.devices: path {:?}: {why}", d.path());
    }
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

/// Make the node `n`. Never unlinks: /dev may be a directory the caller bound
/// in from the host, and whatever is at the path belongs to them.
pub fn create(root: &Root, n: &Node, bind_only: bool) -> Result<()> {
    if let Err(why) = check_path(&n.path) {
        bail!("device {:?}: {why}", n.path);
    }
    if bind_only {
        return bind_from_host(root, n);
    }
    let (dir, name) = parent_dir(root, &n.path)?;
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
        // The same node is already there (a bound /dev, a duplicate entry): keep it.
        Err(Errno::EEXIST) => return keep_existing(&dir, &name, n),
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

/// mknod found something at the path: fine if it is the very node wanted,
/// an error naming what is there otherwise.
fn keep_existing(dir: &OwnedFd, name: &Path, n: &Node) -> Result<()> {
    let st = fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .ctx(|| format!("stat existing {}", n.path.display()))?;
    let (kind, rdev) = (st.st_mode & SFlag::S_IFMT.bits(), st.st_rdev);
    if same_node(kind, rdev, n) {
        return Ok(());
    }
    bail!(
        "device {}: {} already exists there (want {}); refusing to replace it",
        n.path.display(),
        describe(kind, rdev),
        describe(n.kind.bits(), makedev(n.major, n.minor))
    )
}

/// Whether a file of type `kind` (S_IFMT bits) and `rdev` is the node `n`.
fn same_node(kind: libc::mode_t, rdev: libc::dev_t, n: &Node) -> bool {
    kind == n.kind.bits()
        && (n.kind == SFlag::S_IFIFO || (major(rdev) == n.major && minor(rdev) == n.minor))
}

/// "a regular file", "char device 1:3", ... for error messages.
fn describe(kind: libc::mode_t, rdev: libc::dev_t) -> String {
    let node = |what: &str| format!("{what} {}:{}", major(rdev), minor(rdev));
    match SFlag::from_bits_truncate(kind) {
        SFlag::S_IFCHR => node("char device"),
        SFlag::S_IFBLK => node("block device"),
        SFlag::S_IFIFO => "a fifo".into(),
        SFlag::S_IFREG => "a regular file".into(),
        SFlag::S_IFDIR => "a directory".into(),
        SFlag::S_IFLNK => "a symlink".into(),
        SFlag::S_IFSOCK => "a socket".into(),
        _ => format!("a file of type {kind:o}"),
    }
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

/// After pivot_root: stdio that is the host's /dev/null (a caller that gave
/// us /dev/null) becomes the container's own, as runc does, so nothing of
/// the process points at a mount outside its namespace (CRIU refuses to dump
/// an fd whose mount it cannot find). The node is checked to be 1:3 first.
pub fn reopen_dev_null() -> Result<()> {
    use std::os::fd::AsRawFd;
    let null = nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .ctx(|| "open the container's /dev/null")?;
    let is_null = |st: &nix::sys::stat::FileStat| {
        st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFCHR.bits()
            && major(st.st_rdev) == 1
            && minor(st.st_rdev) == 3
    };
    let st = nix::sys::stat::fstat(&null).ctx(|| "stat the container's /dev/null")?;
    if !is_null(&st) {
        bail!("the container's /dev/null is not the null device: not reopening stdio on it");
    }
    for fd in 0..3 {
        let Ok(st) = nix::sys::stat::fstat(crate::sys::borrow_fd(fd)) else {
            continue;
        };
        if is_null(&st) && st.st_dev != nix::sys::stat::fstat(&null).map_or(0, |s| s.st_dev) {
            crate::sys::tty::dup_onto(null.as_raw_fd(), fd)?;
        }
    }
    Ok(())
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
    // /dev/ptmx must be the container's own devpts multiplexer: a node the
    // config created there (the host's 5:2, for --privileged) gives way. /dev
    // is the tmpfs we just mounted, so nothing of the image is removed.
    match nix::unistd::unlinkat(&dir, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => bail!("remove /dev/ptmx before linking it to pts/ptmx: {e}"),
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
        assert!(d.iter().all(|n| check_path(&n.path).is_ok()));
    }

    #[test]
    fn device_paths_must_stay_under_dev() {
        for ok in ["/dev/null", "/dev/net/tun", "/dev//sda", "/dev/./x"] {
            assert!(check_path(Path::new(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "/dev/../etc/precious",
            "/dev/net/../../etc/x",
            "/dev/..",
            "/dev",
            "/dev/",
            "/devices/x",
            "/etc/x",
            "dev/null",
            "/",
            "",
        ] {
            assert!(check_path(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_errors_name_the_entry() {
        let devs: Vec<LinuxDevice> = serde_json::from_value(serde_json::json!([
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
            {"path": "/dev/../etc/x", "type": "c", "major": 1, "minor": 3}
        ]))
        .unwrap();
        let e = check_spec(&devs).unwrap_err();
        assert!(e.message().contains("linux.devices[1].path"), "{e}");
        assert!(e.message().contains("/dev/../etc/x"), "{e}");
        assert!(from_spec(&devs[1]).is_err());
    }

    #[test]
    fn existing_node_matches_only_itself() {
        let null = &defaults()[0];
        let chr = SFlag::S_IFCHR.bits();
        assert!(same_node(chr, makedev(1, 3), null));
        assert!(!same_node(chr, makedev(1, 5), null));
        assert!(!same_node(SFlag::S_IFBLK.bits(), makedev(1, 3), null));
        assert!(!same_node(SFlag::S_IFREG.bits(), 0, null));
        assert_eq!(describe(SFlag::S_IFREG.bits(), 0), "a regular file");
        assert_eq!(describe(chr, makedev(5, 0)), "char device 5:0");
    }
}
