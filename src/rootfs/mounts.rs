//! config.json `mounts`, performed inside the new mount namespace before pivot_root.
//! Every destination is resolved inside the rootfs and mounted through its O_PATH fd.

use super::options::{self, Parsed};
use super::safe_path::{fd_path, Root};
use crate::bail;
use crate::cgroups::CgroupMount;
use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use oci_spec::runtime::Mount;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What one mount needs beyond the spec entry.
pub struct MountCtx<'a> {
    pub root: &'a Root,
    pub bundle: &'a Path,
    /// In a new user namespace: device nodes and sysfs need bind fallbacks.
    pub in_userns: bool,
    /// Host paths of the container's cgroups, for a `cgroup` mount.
    pub cgroups: &'a [CgroupMount],
    pub new_cgroupns: bool,
}

fn source_path(bundle: &Path, m: &Mount) -> PathBuf {
    let src = m.source().clone().unwrap_or_default();
    if src.is_relative() && !src.as_os_str().is_empty() {
        bundle.join(src)
    } else {
        src
    }
}

fn is_bind(m: &Mount, p: &Parsed) -> bool {
    m.typ().as_deref() == Some("bind") || p.flags.contains(MsFlags::MS_BIND)
}

/// Flags a bind remount must keep or the kernel refuses it with EPERM in a user
/// namespace (locked flags), read from the mount as it is now.
fn locked_flags(fd: &OwnedFd) -> MsFlags {
    let mut f = MsFlags::empty();
    if let Ok(st) = fstatvfs(fd) {
        let fl = st.flags();
        for (s, m) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if fl.contains(s) {
                f |= m;
            }
        }
    }
    f
}

/// Remount a bind mount with `flags`; where the kernel refuses (locked flags in a
/// user namespace) retry keeping the flags the mount already has.
pub fn remount_bind(target: &Path, flags: MsFlags, cleared: MsFlags) -> Result<()> {
    let fd = nix::fcntl::open(
        target,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {}", target.display()))?;
    remount_bind_fd(&fd, target, flags, cleared)
}

fn remount_bind_fd(fd: &OwnedFd, shown: &Path, flags: MsFlags, cleared: MsFlags) -> Result<()> {
    let keep = MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC
        | MsFlags::MS_NOATIME
        | MsFlags::MS_NODIRATIME
        | MsFlags::MS_RELATIME
        | MsFlags::MS_STRICTATIME;
    // A bind remount resets every per-mount flag it does not name: keep the ones
    // the mount already has unless the config cleared them ("rw", "suid", ...).
    let current = locked_flags(fd);
    let mut want = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | (flags & keep) | (current & !cleared);
    if flags.intersects(MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME | MsFlags::MS_RELATIME) {
        // An explicit atime mode replaces the current one.
        want.remove(
            (MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME | MsFlags::MS_RELATIME) & !flags,
        );
    }
    let p = fd_path(fd);
    match mount(None::<&str>, p.as_str(), None::<&str>, want, None::<&str>) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) => {
            // In a user namespace the kernel also locks flags we did not see via statvfs.
            let retry = want | current;
            mount(None::<&str>, p.as_str(), None::<&str>, retry, None::<&str>)
                .ctx(|| format!("remount {} with {:?}", shown.display(), retry))
        }
        Err(e) => bail!("remount {} with {:?}: {e}", shown.display(), want),
    }
}

pub fn mount_all(ctx: &MountCtx, mounts: &[Mount]) -> Result<()> {
    for m in mounts {
        mount_one(ctx, m)?;
    }
    Ok(())
}

fn mount_one(ctx: &MountCtx, m: &Mount) -> Result<()> {
    let dest = m.destination();
    let opts = m.options().clone().unwrap_or_default();
    let p = options::parse(&opts);
    let typ = m.typ().clone().unwrap_or_default();
    if typ == "cgroup" {
        return mount_cgroup(ctx, m, &p);
    }
    let bind = is_bind(m, &p);
    let src = source_path(ctx.bundle, m);
    let shown = format!(
        "mount {} onto {}",
        if bind {
            src.display().to_string()
        } else {
            typ.clone()
        },
        dest.display()
    );
    // proc and sysfs must land on a real directory: a symlink here is how
    // CVE-2019-16884 style attacks redirect LSM and mask writes.
    if typ == "proc" || typ == "sysfs" {
        if let Ok(fd) = ctx.root.open_in(dest, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
            let st = nix::sys::stat::fstat(&fd).ctx(|| format!("stat {}", dest.display()))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                bail!("{shown}: destination is not a directory (possible symlink attack)");
            }
        }
    }
    let target = if bind && !src.is_dir() {
        if !src.exists() {
            bail!(
                "{shown}: source {}: no such file or directory",
                src.display()
            );
        }
        ctx.root.mkfile_all(dest)?
    } else {
        ctx.root.mkdir_all(dest, 0o755)?
    };
    if bind {
        bind_mount(ctx, dest, &src, &target, &p, &shown)?;
    } else {
        fs_mount(ctx, m, &typ, &target, &p, &shown)?;
    }
    apply_propagation(ctx.root, dest, &p.propagation)
}

/// A bind mount, then a remount for the flags a bind ignores (ro, nosuid, ...).
fn bind_mount(
    ctx: &MountCtx,
    dest: &Path,
    src: &Path,
    target: &OwnedFd,
    p: &Parsed,
    shown: &str,
) -> Result<()> {
    let tpath = fd_path(target);
    let f = p.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
    mount(Some(src), tpath.as_str(), None::<&str>, f, None::<&str>).ctx(|| shown.to_string())?;
    let extra = p.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        // Re-resolve: the old fd names the directory under the new mount.
        let newfd = ctx
            .root
            .resolve(dest)
            .ctx(|| format!("open {}", dest.display()))?;
        remount_bind_fd(&newfd, dest, extra, p.cleared)?;
    }
    Ok(())
}

/// A filesystem mount (proc, tmpfs, sysfs, ...), with tmpcopyup and the sysfs
/// fallback for user namespaces.
fn fs_mount(
    ctx: &MountCtx,
    m: &Mount,
    typ: &str,
    target: &OwnedFd,
    p: &Parsed,
    shown: &str,
) -> Result<()> {
    let dest = m.destination();
    let tpath = fd_path(target);
    let flags = p.flags;
    let data = (!p.data.is_empty()).then_some(p.data.as_str());
    // tmpcopyup: keep a handle on what the tmpfs is about to cover.
    let below = if p.tmpcopyup && typ == "tmpfs" {
        Some(
            nix::fcntl::openat(
                target.as_fd(),
                ".",
                OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ctx(|| format!("open {} for tmpcopyup", dest.display()))?,
        )
    } else {
        None
    };
    let srcs = m
        .source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| typ.to_string());
    match mount(Some(srcs.as_str()), tpath.as_str(), Some(typ), flags, data) {
        Ok(()) => {}
        // sysfs cannot be mounted from a user namespace that does not own the
        // network namespace: show the host's read-only, as runc does.
        Err(Errno::EPERM) if typ == "sysfs" && ctx.in_userns => {
            mount(
                Some("/sys"),
                tpath.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx(|| format!("bind /sys onto {}", dest.display()))?;
            let newfd = ctx.root.resolve(dest)?;
            remount_bind_fd(&newfd, dest, flags | MsFlags::MS_RDONLY, p.cleared)?;
        }
        Err(e) => bail!("{shown}: {e}"),
    }
    if let Some(below) = below {
        let top = ctx
            .root
            .resolve(dest)
            .ctx(|| format!("open {}", dest.display()))?;
        copy_tree(Path::new(&fd_path(&below)), Path::new(&fd_path(&top)))
            .ctx(|| format!("tmpcopyup into {}", dest.display()))?;
    }
    Ok(())
}

fn apply_propagation(root: &Root, dest: &Path, props: &[MsFlags]) -> Result<()> {
    if props.is_empty() {
        return Ok(());
    }
    let fd = root
        .resolve(dest)
        .ctx(|| format!("open {}", dest.display()))?;
    let p = fd_path(&fd);
    for f in props {
        mount(None::<&str>, p.as_str(), None::<&str>, *f, None::<&str>)
            .ctx(|| format!("set propagation {:?} on {}", f, dest.display()))?;
    }
    Ok(())
}

/// tmpcopyup: copy what the tmpfs covers into it, keeping modes, owners and
/// symlinks (regular files, directories and links; other types are skipped).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    for ent in std::fs::read_dir(from)? {
        let ent = ent?;
        let src = ent.path();
        let dst = to.join(ent.file_name());
        let md = std::fs::symlink_metadata(&src)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        lchown(&dst, Some(md.uid()), Some(md.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// The container's view of its cgroups: a tmpfs with one bind per v1 hierarchy,
/// or a single cgroup2 mount (a fresh one when the container has a cgroup namespace).
fn mount_cgroup(ctx: &MountCtx, m: &Mount, p: &Parsed) -> Result<()> {
    let dest = m.destination();
    let ro = p.flags.contains(MsFlags::MS_RDONLY);
    let base = p.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let unified = ctx.cgroups.len() == 1 && ctx.cgroups[0].name.is_empty();
    let target = ctx.root.mkdir_all(dest, 0o755)?;
    let tpath = fd_path(&target);
    if unified {
        let done = ctx.new_cgroupns
            && mount(
                Some("cgroup2"),
                tpath.as_str(),
                Some("cgroup2"),
                p.flags,
                None::<&str>,
            )
            .is_ok();
        if !done {
            mount(
                Some(&ctx.cgroups[0].host),
                tpath.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx(|| {
                format!(
                    "bind {} onto {}",
                    ctx.cgroups[0].host.display(),
                    dest.display()
                )
            })?;
            let fd = ctx.root.resolve(dest)?;
            remount_bind_fd(&fd, dest, p.flags, p.cleared)?;
        }
        return apply_propagation(ctx.root, dest, &p.propagation);
    }
    mount(
        Some("tmpfs"),
        tpath.as_str(),
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .ctx(|| format!("mount tmpfs onto {}", dest.display()))?;
    for cg in ctx.cgroups {
        let sub = dest.join(&cg.name);
        let fd = ctx.root.mkdir_all(&sub, 0o755)?;
        mount(
            Some(&cg.host),
            fd_path(&fd).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind {} onto {}", cg.host.display(), sub.display()))?;
        let fd = ctx.root.resolve(&sub)?;
        remount_bind_fd(
            &fd,
            &sub,
            base | if ro {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            },
            p.cleared,
        )?;
        // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on the host.
        if cg.name.contains(',') {
            let parent = ctx.root.resolve(dest)?;
            let dirfd = nix::fcntl::openat(
                parent.as_fd(),
                ".",
                OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            for part in cg.name.split(',') {
                let _ = nix::unistd::symlinkat(cg.name.as_str(), dirfd.as_fd(), part);
            }
        }
    }
    if ro {
        let fd = ctx.root.resolve(dest)?;
        remount_bind_fd(&fd, dest, base | MsFlags::MS_RDONLY, p.cleared).or_else(|_| {
            let p = fd_path(&fd);
            mount(
                None::<&str>,
                p.as_str(),
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
                Some("mode=755"),
            )
            .ctx(|| format!("remount {} read-only", dest.display()))
        })?;
    }
    apply_propagation(ctx.root, dest, &p.propagation)
}
