//! Switching the container's root: pivot_root, or MS_MOVE + chroot with --no-pivot.

use crate::error::{Context, Result};
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use std::path::{Path, PathBuf};

/// pivot_root(".", ".") stacks the old root under the new one; we then detach it
/// (after making it a slave so the unmount does not propagate to the host).
pub fn pivot(rootfs: &Path) -> Result<()> {
    let old = nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /")?;
    let new = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", rootfs.display()))?;
    fchdir(&new).ctx(|| format!("chdir {}", rootfs.display()))?;
    pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    fchdir(&old).ctx(|| "chdir to old root")?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmount old root")?;
    chdir("/").ctx(|| "chdir /")?;
    Ok(())
}

/// --no-pivot: move the rootfs onto `/` and chroot into it. The host's own
/// procfs and sysfs mounts stay in this mount namespace (under the chroot,
/// but the kernel still counts them): a fully visible procfs lets a process
/// in a nested user namespace mount a fresh, unmasked one (mnt_too_revealing
/// only refuses when none is). So, as runc 1.1 does, first detach every full
/// proc and sysfs mount outside the rootfs (cover it with a tmpfs where the
/// kernel refuses: locked mounts in a user namespace).
pub fn move_root(rootfs: &Path) -> Result<()> {
    let real = std::fs::canonicalize(rootfs).ctx(|| format!("resolve {}", rootfs.display()))?;
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    for mp in host_pseudo_fs(&info, &real) {
        hide(&mp)?;
    }
    chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .ctx(|| format!("move {} to /", rootfs.display()))?;
    chroot(".").ctx(|| format!("chroot {}", rootfs.display()))?;
    chdir("/").ctx(|| "chdir /")?;
    Ok(())
}

/// Detach the mount at `mp` without the unmount reaching the host.
fn hide(mp: &Path) -> Result<()> {
    match mount(
        None::<&str>,
        mp,
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        // Gone with a parent detached before it.
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("make {} rslave", mp.display())),
    }
    match umount2(mp, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => mount(
            Some("tmpfs"),
            mp,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .ctx(|| format!("cover {} with a tmpfs", mp.display())),
        Err(e) => Err(e).ctx(|| format!("unmount {}", mp.display())),
    }
}

/// Mount points of full (root "/") proc and sysfs mounts in `mountinfo`
/// that are not inside `rootfs`, in mountinfo order.
fn host_pseudo_fs(mountinfo: &str, rootfs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let fstype = post.split(' ').next().unwrap_or("");
        if f.len() < 5 || f[3] != "/" || (fstype != "proc" && fstype != "sysfs") {
            continue;
        }
        let mp = PathBuf::from(unescape(f[4]));
        if !mp.starts_with(rootfs) {
            out.push(mp);
        }
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as \ooo.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_full_host_proc_and_sysfs_only() {
        let info = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
23 1 0:22 / /sys rw - sysfs sysfs rw
24 23 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
25 1 0:21 /sys /mnt/procsys rw - proc proc rw
26 1 0:24 / /tmp/b/rootfs/proc rw - proc proc rw
27 1 0:25 / /srv/my\\040proc rw - proc proc rw
";
        let got = host_pseudo_fs(info, Path::new("/tmp/b/rootfs"));
        let want: Vec<PathBuf> = ["/proc", "/sys", "/srv/my proc"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(got, want);
    }
}
