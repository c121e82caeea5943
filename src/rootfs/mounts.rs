//! config.json `mounts`, performed inside the new mount namespace before pivot_root.
//! Every destination is resolved inside the rootfs and mounted through its O_PATH fd;
//! binds are made with their flags while detached and attached onto that fd
//! (fdmount), so no destination is looked up twice.

use super::fdmount;
use super::options::{self, Parsed};
use super::safe_path::{fd_path, Root};
use crate::bail;
use crate::cgroups::CgroupMount;
use crate::error::{Context, Result};
use crate::sys::newmount;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
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
    /// `linux.mountLabel` where SELinux is enabled (None elsewhere: runc
    /// ignores it then, and the parent warns).
    pub mount_label: Option<&'a str>,
}

/// Mount types that get `linux.mountLabel` as a `context=` option, as runc
/// labels them: not proc, sysfs or cgroup (their labels come from policy),
/// not mqueue (runc relabels it afterwards; skiff warns instead), not binds
/// (a bind takes no data).
fn takes_mount_label(typ: &str) -> bool {
    !matches!(
        typ,
        "proc" | "sysfs" | "cgroup" | "cgroup2" | "mqueue" | "bind"
    )
}

/// `data` with SELinux's `context="LABEL"` added (quoted: a label's MLS
/// part has commas), as runc's FormatMountLabel writes it.
fn with_context(data: &str, label: &str) -> String {
    if data.is_empty() {
        format!("context=\"{label}\"")
    } else {
        format!("{data},context=\"{label}\"")
    }
}

pub(super) fn source_path(bundle: &Path, m: &Mount) -> PathBuf {
    let src = m.source().clone().unwrap_or_default();
    if src.is_relative() && !src.as_os_str().is_empty() {
        bundle.join(src)
    } else {
        src
    }
}

pub(super) fn is_bind(m: &Mount, p: &Parsed) -> bool {
    m.typ().as_deref() == Some("bind") || p.flags.contains(MsFlags::MS_BIND)
}

/// A read-only mount made writable until the rootfs is finished: the mount
/// fd, for [`finish_read_only`].
pub struct LaterReadOnly(OwnedFd, String);

/// `idmapped`: the detached trees stage 1 made for idmapped mounts, by
/// index in `mounts` (see idmap.rs); shorter than `mounts` when there are none.
pub fn mount_all(
    ctx: &MountCtx,
    mounts: &[Mount],
    idmapped: Vec<Option<OwnedFd>>,
) -> Result<Vec<LaterReadOnly>> {
    let mut later = Vec::new();
    let mut trees = idmapped.into_iter();
    for m in mounts {
        if let Some(l) = mount_one(ctx, m, trees.next().flatten())? {
            later.push(l);
        }
    }
    Ok(later)
}

/// Make the mounts [`mount_all`] left writable read-only, once the devices,
/// the mount points of later mounts and the /dev symlinks are made in them
/// (as runc's finalizeRootfs: `ro` on a /dev tmpfs with submounts works).
pub fn finish_read_only(later: Vec<LaterReadOnly>) -> Result<()> {
    for LaterReadOnly(fd, shown) in later {
        fdmount::remount_fd(
            fd.as_fd(),
            MsFlags::MS_RDONLY,
            &format!("{shown}: read-only"),
        )?;
    }
    Ok(())
}

/// runc makes a read-only tmpfs or /dev read-write first and read-only at
/// the end: later mounts and device nodes need their directories in it.
fn read_only_later(dest: &Path, typ: &str, p: &mut Parsed) -> bool {
    let later =
        (typ == "tmpfs" || dest == Path::new("/dev")) && p.flags.contains(MsFlags::MS_RDONLY);
    if later {
        p.flags.remove(MsFlags::MS_RDONLY);
    }
    later
}

/// The options of mount `m` as a bind applies them: those of the config,
/// less an `ro` that [`finish_read_only`] applies later.
pub(super) fn bind_options(m: &Mount) -> Parsed {
    let mut p = options::parse(m.options().as_deref().unwrap_or_default());
    read_only_later(
        m.destination(),
        m.typ().as_deref().unwrap_or_default(),
        &mut p,
    );
    p
}

fn mount_one(
    ctx: &MountCtx,
    m: &Mount,
    idmapped: Option<OwnedFd>,
) -> Result<Option<LaterReadOnly>> {
    let dest = m.destination();
    let opts = m.options().clone().unwrap_or_default();
    let mut p = options::parse(&opts);
    let typ = m.typ().as_deref().unwrap_or_default();
    let later = read_only_later(dest, typ, &mut p);
    if typ == "tmpfs" {
        inherit_tmpfs_mode(ctx.root, dest, &mut p);
    }
    let mnt = mount_one_as(ctx, m, &p, idmapped)?;
    if !later {
        return Ok(None);
    }
    let mnt = match mnt {
        Some(fd) => fd,
        None => ctx
            .root
            .resolve(dest)
            .ctx(|| format!("open {}", dest.display()))?,
    };
    Ok(Some(LaterReadOnly(
        mnt,
        format!("mount onto {}", dest.display()),
    )))
}

/// A tmpfs without `mode=` over a directory that exists takes that
/// directory's mode (runc 1.2.0, opencontainers/runc#3912, backported to
/// 1.1 in #3916; "only if the target already existed", #4973); an explicit
/// `mode=` wins (runc 1.1.5 chmods it away: the bug #3912 fixed); a new
/// directory gets the tmpfs default, 1777.
fn inherit_tmpfs_mode(root: &Root, dest: &Path, p: &mut Parsed) {
    if p.data.split(',').any(|o| o.starts_with("mode=")) {
        return;
    }
    let Ok(fd) = root.resolve(dest) else { return };
    let Ok(st) = nix::sys::stat::fstat(&fd) else {
        return;
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return;
    }
    let mode = format!("mode={:o}", st.st_mode & 0o7777);
    p.data = if p.data.is_empty() {
        mode
    } else {
        format!("{mode},{}", p.data)
    };
}

/// One mount with the options `p`; a bind returns its mount fd. `idmapped`:
/// the tree stage 1 made for it, flags applied, to attach as it is.
fn mount_one_as(
    ctx: &MountCtx,
    m: &Mount,
    p: &Parsed,
    idmapped: Option<OwnedFd>,
) -> Result<Option<OwnedFd>> {
    let dest = m.destination();
    let typ = m.typ().clone().unwrap_or_default();
    if typ == "cgroup" {
        mount_cgroup(ctx, m, p)?;
        return fs_attrs(ctx.root, dest, p, "mount cgroup").map(|_| None);
    }
    let bind = is_bind(m, p);
    let src = source_path(ctx.bundle, m);
    // runc's words (1.1 through 1.5), which people look for in what Docker
    // shows them: the source as the config gives it (a bind's made absolute).
    let shown_src = match (bind, m.source()) {
        (true, _) => src.display().to_string(),
        (false, Some(s)) => s.display().to_string(),
        (false, None) => typ.clone(),
    };
    let shown = format!(
        "error mounting {shown_src:?} to rootfs at {:?}",
        dest.display().to_string()
    );
    // proc and sysfs must land on a real directory: a symlink here is how
    // CVE-2019-16884 style attacks redirect LSM and mask writes. runc's words
    // (1.1.5, and 1.2.8+/1.3+ after CVE-2025-31133/52565/52881).
    if typ == "proc" || typ == "sysfs" {
        if let Ok(fd) = ctx.root.open_in(dest, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
            let st = nix::sys::stat::fstat(&fd).ctx(|| format!("stat {}", dest.display()))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                bail!("{shown}: filesystem {typ:?} must be mounted on ordinary directory");
            }
        }
    }
    let target = if bind && !source_is_dir(&src, idmapped.as_ref(), &shown)? {
        if idmapped.is_none() && !src.exists() {
            // runc 1.1.12+ and 1.2-1.5 (its mount-destination rework after
            // CVE-2024-21626); runc 1.1.5 said only `stat SRC: ...`.
            bail!(
                "{shown}: create mount destination for {} mount: bind mount source stat: stat {}: no such file or directory",
                dest.display(),
                src.display()
            );
        }
        ctx.root.mkfile_all(dest)?
    } else {
        ctx.root.mkdir_all(dest, 0o755)?
    };
    let bind_src = bind.then_some(src.as_path());
    super::proc_dest::check(ctx.root.fd(), &target, &typ, bind_src, &shown)?;
    if let Some(tree) = idmapped {
        return attach_idmapped(tree, &target, p, &shown).map(Some);
    }
    if p.idmap.is_some() || m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        bail!("{shown}: internal error: the idmapped tree was not prepared");
    }
    if bind {
        refuse_bind_data(p, &shown)?;
        let mnt = bind_mount(&src, &target, p, &shown)?;
        for f in &p.propagation {
            fdmount::propagate(mnt.as_fd(), *f, &shown)?;
        }
        return Ok(Some(mnt));
    }
    fs_mount(ctx, m, &typ, &target, p, &shown)?;
    fs_attrs(ctx.root, dest, p, &shown)?;
    apply_propagation(ctx.root, dest, &p.propagation).map(|_| None)
}

/// An idmapped source may be out of our reach in the user namespace: its
/// tree says what it is.
fn source_is_dir(src: &Path, idmapped: Option<&OwnedFd>, shown: &str) -> Result<bool> {
    let Some(tree) = idmapped else {
        return Ok(src.is_dir());
    };
    let st = nix::sys::stat::fstat(tree).ctx(|| format!("{shown}: stat the idmapped tree"))?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// The tree stage 1 made for an idmapped bind (flags applied), attached
/// onto `target`, then given its propagation.
fn attach_idmapped(tree: OwnedFd, target: &OwnedFd, p: &Parsed, shown: &str) -> Result<OwnedFd> {
    refuse_bind_data(p, shown)?;
    newmount::attach(tree.as_fd(), target.as_fd()).ctx(|| format!("{shown}: move_mount"))?;
    for f in &p.propagation {
        fdmount::propagate(tree.as_fd(), *f, shown)?;
    }
    Ok(tree)
}

/// A bind mount with the flags a bind takes from a remount (ro, nosuid, ...)
/// and the mount_setattr options (nosymfollow, the recursive r* family),
/// applied before it is attached: the mount is never visible without them,
/// and the destination is never looked up again (a swap for a symlink
/// between mount and remount cannot leave it read-write).
fn bind_mount(src: &Path, target: &OwnedFd, p: &Parsed, shown: &str) -> Result<OwnedFd> {
    let mnt = detached_bind(src, p, shown)?;
    newmount::attach(mnt.as_fd(), target.as_fd()).ctx(|| format!("{shown}: move_mount"))?;
    Ok(mnt)
}

/// The detached clone of a bind, with its flags and attributes.
pub(super) fn detached_bind(src: &Path, p: &Parsed, shown: &str) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let rec = p.flags.contains(MsFlags::MS_REC);
    let extra = p.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let (extra, cleared) = fdmount::remount_flags(extra);
    let c = std::ffi::CString::new(src.as_os_str().as_bytes())
        .ctx(|| format!("{shown}: source path"))?;
    let mnt = newmount::clone_path(&c, rec).ctx(|| format!("{shown}: open_tree"))?;
    fdmount::set_flags(mnt.as_fd(), extra, cleared, shown)?;
    fdmount::set_attrs(mnt.as_fd(), &p.attrs, &p.rec, shown)?;
    Ok(mnt)
}

/// A bind takes no filesystem data: an option left over is one skiff does
/// not know, refused by name (runtime-spec: "MUST generate an error"; runc
/// 1.1.5 passes it to mount(2) as data, which a bind ignores).
pub(super) fn refuse_bind_data(p: &Parsed, shown: &str) -> Result<()> {
    match p.data.split(',').find(|o| !o.is_empty()) {
        None => Ok(()),
        Some(o) => {
            bail!("{shown}: unknown mount option {o:?} (a bind mount takes no filesystem data)")
        }
    }
}

/// The mount_setattr options of a filesystem mounted with mount(2): found
/// again through the rootfs (as for propagation) and set on its mount.
fn fs_attrs(root: &Root, dest: &Path, p: &Parsed, shown: &str) -> Result<()> {
    if p.attrs.is_empty() && p.rec.is_empty() {
        return Ok(());
    }
    let fd = root
        .resolve(dest)
        .ctx(|| format!("open {}", dest.display()))?;
    fdmount::set_attrs(fd.as_fd(), &p.attrs, &p.rec, shown)
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
    let label = ctx.mount_label.filter(|_| takes_mount_label(typ));
    if p.tmpcopyup && typ == "tmpfs" {
        return tmpfs_copyup(target, m, p, label, shown);
    }
    if typ == "mqueue" {
        if let Some(l) = ctx.mount_label {
            log::warn!("{shown}: linux.mountLabel {l:?} not applied to an mqueue mount");
        }
    }
    let tpath = fd_path(target);
    let flags = p.flags;
    let labelled = label.map(|l| with_context(&p.data, l));
    let data = match &labelled {
        Some(d) => Some(d.as_str()),
        None => (!p.data.is_empty()).then_some(p.data.as_str()),
    };
    let srcs = m
        .source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| typ.to_string());
    match mount(Some(srcs.as_str()), tpath.as_str(), Some(typ), flags, data) {
        Ok(()) => Ok(()),
        // sysfs cannot be mounted from a user namespace that does not own the
        // network namespace: show the host's read-only, as runc does.
        Err(Errno::EPERM) if typ == "sysfs" && ctx.in_userns => {
            let f = flags | MsFlags::MS_RDONLY;
            fdmount::bind_path(Path::new("/sys"), target.as_fd(), true, f, p.cleared, shown)
                .map(drop)
        }
        Err(e) => bail!("{shown}: {e}"),
    }
}

/// tmpcopyup: a tmpfs made detached, filled from the directory it will cover
/// (through fds, never following a symlink: copyup), given its mount flags,
/// then attached. Nothing re-resolves the destination after the mount.
fn tmpfs_copyup(
    target: &OwnedFd,
    m: &Mount,
    p: &Parsed,
    label: Option<&str>,
    shown: &str,
) -> Result<()> {
    let dest = m.destination();
    let below = nix::fcntl::openat(
        target.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {} for tmpcopyup", dest.display()))?;
    let fs = newmount::fsopen(c"tmpfs").ctx(|| format!("{shown}: fsopen tmpfs"))?;
    let source = m.source().as_ref().map(|s| s.display().to_string());
    let source = source.as_deref().unwrap_or("tmpfs");
    fdmount::configure(&fs, source, &p.data, p.flags).ctx(|| shown.to_string())?;
    if let Some(l) = label {
        let value = std::ffi::CString::new(l).ctx(|| format!("linux.mountLabel {l:?}"))?;
        newmount::fsconfig_string(&fs, c"context", &value)
            .ctx(|| format!("{shown}: linux.mountLabel {l:?}"))?;
    }
    let mnt = newmount::create_and_mount(&fs, 0).ctx(|| format!("{shown}: fsmount"))?;
    let top = nix::fcntl::openat(
        mnt.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("{shown}: open new tmpfs"))?;
    super::copyup::copy_dir(below.as_fd(), top.as_fd(), dest)?;
    fdmount::attach_with(mnt, target.as_fd(), p.flags, p.cleared, shown).map(drop)
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

/// The container's view of its cgroups: a tmpfs with one bind per v1 hierarchy,
/// or a single cgroup2 mount (a fresh one when the container has a cgroup namespace).
fn mount_cgroup(ctx: &MountCtx, m: &Mount, p: &Parsed) -> Result<()> {
    let dest = m.destination();
    let shown = format!("mount cgroup onto {}", dest.display());
    let target = ctx.root.mkdir_all(dest, 0o755)?;
    super::proc_dest::check(ctx.root.fd(), &target, "cgroup", None, &shown)?;
    let unified = ctx.cgroups.len() == 1 && ctx.cgroups[0].name.is_empty();
    if unified {
        let done = ctx.new_cgroupns
            && mount(
                Some("cgroup2"),
                fd_path(&target).as_str(),
                Some("cgroup2"),
                p.flags,
                None::<&str>,
            )
            .is_ok();
        if done {
            return apply_propagation(ctx.root, dest, &p.propagation);
        }
        let host = &ctx.cgroups[0].host;
        let shown = format!("bind {} onto {}", host.display(), dest.display());
        let mnt = fdmount::bind_path(host, target.as_fd(), true, p.flags, p.cleared, &shown)?;
        for f in &p.propagation {
            fdmount::propagate(mnt.as_fd(), *f, &shown)?;
        }
        return Ok(());
    }
    let mnt = cgroup_v1_tree(ctx, &target, p, &shown)?;
    for f in &p.propagation {
        fdmount::propagate(mnt.as_fd(), *f, &shown)?;
    }
    Ok(())
}

/// v1: a tmpfs attached at the destination, one bind per hierarchy made
/// under its directory fd, and the tmpfs made read-only through its mount fd.
fn cgroup_v1_tree(ctx: &MountCtx, target: &OwnedFd, p: &Parsed, shown: &str) -> Result<OwnedFd> {
    let ro = p.flags & MsFlags::MS_RDONLY;
    let base = p.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let fs = newmount::fsopen(c"tmpfs").ctx(|| format!("{shown}: fsopen tmpfs"))?;
    fdmount::configure(&fs, "tmpfs", "mode=755", MsFlags::empty()).ctx(|| shown.to_string())?;
    let mnt = newmount::create_and_mount(&fs, 0).ctx(|| format!("{shown}: fsmount"))?;
    let mnt = fdmount::attach_with(mnt, target.as_fd(), base, MsFlags::empty(), shown)?;
    let dir = nix::fcntl::openat(
        mnt.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("{shown}: open the cgroup tmpfs"))?;
    for cg in ctx.cgroups {
        if cg.name.is_empty() || cg.name.contains('/') {
            bail!("{shown}: invalid cgroup hierarchy name {:?}", cg.name);
        }
        let sub = m_sub(shown, &cg.name);
        nix::sys::stat::mkdirat(
            dir.as_fd(),
            cg.name.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .ctx(|| format!("{sub}: mkdir"))?;
        let sfd = nix::fcntl::openat(
            dir.as_fd(),
            cg.name.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("{sub}: open"))?;
        let shown = format!("bind {} onto {sub}", cg.host.display());
        fdmount::bind_path(&cg.host, sfd.as_fd(), true, base | ro, p.cleared, &shown)?;
        // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on the host.
        if cg.name.contains(',') {
            for part in cg.name.split(',') {
                let _ = nix::unistd::symlinkat(cg.name.as_str(), dir.as_fd(), part);
            }
        }
    }
    if !ro.is_empty() {
        fdmount::remount_fd(mnt.as_fd(), MsFlags::MS_RDONLY, shown)?;
    }
    Ok(mnt)
}

/// "<cgroup mount>/<hierarchy>" for messages.
fn m_sub(shown: &str, name: &str) -> String {
    format!("{}/{name}", shown.trim_start_matches("mount cgroup onto "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// runc's FormatMountLabel: appended to the data, the label quoted
    /// because an MLS range has commas.
    #[test]
    fn mount_label_becomes_a_quoted_context_option() {
        let l = "system_u:object_r:container_file_t:s0:c1,c2";
        assert_eq!(
            with_context("", l),
            "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(
            with_context("mode=755,size=65536k", l),
            "mode=755,size=65536k,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
    }

    #[test]
    fn only_filesystems_runc_labels_take_the_mount_label() {
        for t in ["tmpfs", "devpts", "overlay", "fuse"] {
            assert!(takes_mount_label(t), "{t}");
        }
        for t in ["proc", "sysfs", "cgroup", "cgroup2", "mqueue", "bind"] {
            assert!(!takes_mount_label(t), "{t}");
        }
    }
}
