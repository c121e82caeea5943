//! `skiff init`: the only code that runs inside the container. Stage 1 joins and
//! unshares namespaces, then clones stage 2 (PID 1 of a new PID namespace, a
//! sibling of stage 1 thanks to CLONE_PARENT) and exits. Stage 2 builds the
//! rootfs and the process, reports each failure over the sync channel, waits for
//! `start` on the exec fifo, and execs the user process.

use super::sync::{Channel, FromInit, ToInit};
use crate::bail;
use crate::cgroups::CgroupMount;
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::namespaces;
use crate::rootfs::{devices, masked, mounts, pivot, safe_path::Root};
use crate::sys;
use crate::sys::shared_clone::clone_shared;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub const SYNC_FD_ENV: &str = "_SKIFF_SYNC_FD";

#[derive(Serialize, Deserialize, Debug)]
pub struct InitConfig {
    pub spec: Spec,
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// O_PATH fd of the exec fifo; None for exec (no create/start split).
    pub fifo_fd: Option<RawFd>,
    /// Connected console socket, when the process wants a terminal.
    pub console_fd: Option<RawFd>,
    pub preserve_fds: u32,
    /// Clear ONLCR on the pty (skiff's own foreground terminal proxy).
    pub clear_onlcr: bool,
    pub cgroup_mounts: Vec<CgroupMount>,
    /// create on cgroup v2: an O_PATH fd of the container's cgroup directory,
    /// for stage 1 to clone stage 2 into it (stage 1 stays outside).
    #[serde(default)]
    pub cgroup_fd: Option<RawFd>,
    /// create and exec on cgroup v1: write fds of the container's `tasks`
    /// files; stage 2 moves itself in by writing "0" to each (see
    /// cgroups::Manager::join_files), then closes them.
    #[serde(default)]
    pub cgroup_join_fds: Vec<RawFd>,
    /// Joining a running container (`exec`): no rootfs, hostname or sysctl work.
    pub exec: bool,
    /// The OCI state (status creating) handed to in-container hooks.
    pub state: serde_json::Value,
    /// `--debug`: time the steps and report them before Ready.
    #[serde(default)]
    pub timing: bool,
}

/// Entry point of `skiff init`. Never returns on success (execve); on failure the
/// error goes to the parent over the sync channel and we exit 1.
pub fn main() -> ! {
    let t0 = std::time::Instant::now();
    let fd: RawFd = match std::env::var(SYNC_FD_ENV).ok().and_then(|v| v.parse().ok()) {
        Some(fd) => fd,
        None => {
            eprintln!("skiff init must be started by skiff create/run/exec");
            std::process::exit(1);
        }
    };
    std::env::remove_var(SYNC_FD_ENV);
    // The rule for init: non-dumpable before it touches any namespace of the
    // container, until execve. A container process can then neither ptrace us
    // nor open anything through /proc/<pid>/fd (the sync socket, a procfs
    // handle while we write a sysctl).
    if let Err(e) = sys::set_non_dumpable() {
        eprintln!("skiff init: {}", e.message());
        std::process::exit(1);
    }
    let ch = Channel::from_raw(fd);
    let err = match stage1(&ch, t0) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    match fail(&ch, err) {}
}

/// Report a failure of init and exit 1.
fn fail(ch: &Channel, err: Error) -> Infallible {
    if STARTED.load(std::sync::atomic::Ordering::Relaxed) {
        // After `start` the parent no longer listens (a failing startContainer
        // hook, an execve that fails): say it on the container's stderr, as
        // runc's init does.
        eprintln!("{}", err.message());
    } else {
        let _ = ch.send(&FromInit::Error(err.message().to_string()));
    }
    std::process::exit(1);
}

/// Set once `start` has released init: the sync channel is no longer read.
static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn mark_started() {
    STARTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub enum Never {}

fn stage1(ch: &Channel, t0: std::time::Instant) -> Result<Never> {
    let cfg = match ch.recv::<ToInit>()? {
        Some(ToInit::Config(c)) => c,
        Some(ToInit::Abort(m)) => bail!("aborted by parent: {m}"),
        other => bail!("init: expected config, got {other:?}"),
    };
    if cfg.timing {
        crate::timing::collect_from(t0);
        crate::timing::lap("init-config");
    }
    let linux = cfg.spec.linux().clone().unwrap_or_default();
    let nss = linux.namespaces().clone().unwrap_or_default();
    let plan = namespaces::plan(&nss)?;
    super::setup::set_oom_score_adj(cfg.spec.process().as_ref())?;
    let idmapped = prepare_idmapped(&cfg, &plan)?;
    namespaces::join(&plan.join)?;
    if plan.new_user {
        // Read before the unshare: afterwards our ids are unmapped (65534).
        let rootless_parent = !nix::unistd::geteuid().is_root();
        unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "unshare user namespace")?;
        // The /proc/<pid> files of a non-dumpable process belong to root, so
        // a parent that is not root can write our maps only while we are
        // dumpable (runc's stage 1 does the same). We are in no namespace of
        // the container yet but this new, still empty user namespace, and
        // its only possible ptracer is our own parent's user.
        if rootless_parent {
            sys::set_dumpable_for_maps()?;
        }
        ch.send(&FromInit::NeedMaps)?;
        let reply = recv_next(ch);
        if rootless_parent {
            sys::set_non_dumpable()?;
        }
        match reply? {
            ToInit::MapsWritten => {}
            other => bail!("init: expected maps, got {other:?}"),
        }
    }
    if plan.new_user
        || plan
            .join
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::User)
    {
        // Become root of the user namespace so the steps below are privileged there.
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx(|| "setresgid(0) in user namespace")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx(|| "setresuid(0) in user namespace")?;
    }
    // The cgroup namespace's root is our cgroup when we unshare it, so stage 2
    // unshares it once the parent has placed it; everything else is now.
    let early = plan.unshare - CloneFlags::CLONE_NEWCGROUP;
    if !early.is_empty() {
        unshare(early).ctx(|| format!("unshare namespaces {early:?}"))?;
    }
    if early.contains(CloneFlags::CLONE_NEWNET) {
        sys::net::loopback_up()?;
    }
    crate::timing::lap("namespaces");
    if plan
        .unshare
        .contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        && linux.time_offsets().is_some()
    {
        ch.send(&FromInit::NeedTimeOffsets)?;
        match recv_next(ch)? {
            ToInit::TimeOffsetsWritten => {}
            other => bail!("init: expected time offsets, got {other:?}"),
        }
    }
    // Stage 2 may speak on the sync socket only after stage 1 has announced
    // its PID there: frames of the two processes must not overtake each other
    // (`exec` saw "unexpected Pid after ready" about once in 900 calls). A
    // byte on this pipe, written after that frame, is the go-ahead.
    let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    // Each process closes its own copy of the pipe: raw numbers, not owned
    // fds, cross into the closures (which share one memory).
    let (go_r, go_w) = (go_r.into_raw_fd(), go_w.into_raw_fd());
    let new_pidns = plan.unshare.contains(CloneFlags::CLONE_NEWPID);
    let stage2_body = || -> Infallible {
        let err = match after_clone(ch, &cfg, &plan, idmapped, go_r, go_w) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        fail(ch, err)
    };
    let stage1_rest = |child: i32, placed: bool| -> Infallible {
        // Until stage 2 reads the go-ahead byte this is the only user of the
        // shared memory; first of all, the kernel must not clear a word of
        // it when we exit (see exit_shared).
        sys::shared_clone::forget_tid_address();
        drop(sys::owned_fd(go_r));
        let sent = ch.send(&FromInit::Pid(child, placed)).is_ok();
        // The byte says stage 1 is done with the memory. EOF without it (we
        // died: killed by the parent, say, perhaps inside the allocator)
        // makes stage 2 exit at once, touching nothing.
        let go = sent && nix::unistd::write(sys::borrow_fd(go_w), b"g") == Ok(1);
        drop(sys::owned_fd(go_w));
        sys::shared_clone::exit_shared(if go { 0 } else { 1 })
    };
    // A new time namespace applies to our children only at their execve, and
    // kernels before 6.1 refuse CLONE_VM into it: stage 2 is forked then.
    let share = !plan
        .unshare
        .contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME));
    clone_stage2(cfg.cgroup_fd, new_pidns, share, stage2_body, stage1_rest)
}

/// Stage 2 from its first instruction: wait for stage 1's go-ahead byte
/// (stage 1 is done with the memory then), join the container's cgroups,
/// then build the container.
fn after_clone(
    ch: &Channel,
    cfg: &InitConfig,
    plan: &namespaces::Plan,
    idmapped: Vec<Option<OwnedFd>>,
    go_r: RawFd,
    go_w: RawFd,
) -> Result<Never> {
    // System calls only until the go-ahead: stage 1 still runs in this
    // memory (allocating, and with the same thread-local errno), so every
    // failure before it ends this process at once.
    drop(sys::owned_fd(go_w));
    if let Some(fd) = cfg.cgroup_fd {
        // The rule for init: no fd reaching outside the container but the
        // sync socket. Closed before anything else; nobody else owns it.
        drop(sys::owned_fd(fd));
    }
    let go_r = sys::owned_fd(go_r);
    let mut b = [0u8; 1];
    let go = loop {
        // SAFETY: a read into `b`, which lives through the call.
        let n = unsafe { libc::read(go_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
        if n != -1 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break n == 1 && b[0] == b'g';
        }
    };
    if !go {
        // Stage 1 died or could not report our PID: the parent fails the
        // create on its side; the memory may hold a half-done allocation.
        // SAFETY: _exit touches no memory of ours.
        unsafe { libc::_exit(1) };
    }
    drop(go_r);
    // Stage 2 is single-threaded: moving this thread moves the process. Done
    // after the go-ahead, so that a failure reaches the parent after stage
    // 1's PID; the fds are closed as they are used (the rule above).
    for fd in &cfg.cgroup_join_fds {
        let f = sys::owned_fd(*fd);
        nix::unistd::write(&f, b"0")
            .ctx(|| "join the container's cgroup (write 0 to its v1 tasks file)")?;
    }
    crate::timing::lap("clone");
    // Stage 2 is the one the parent places in the container's cgroups:
    // nothing it allocates from here on escapes the limits.
    match ch.recv::<ToInit>()? {
        Some(ToInit::CgroupsApplied) => {}
        Some(ToInit::Abort(m)) => bail!("aborted by parent: {m}"),
        other => bail!("init: expected cgroups applied, got {other:?}"),
    }
    crate::timing::lap("cgroup-wait");
    if plan.unshare.contains(CloneFlags::CLONE_NEWCGROUP) {
        unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare cgroup namespace")?;
    }
    stage2(ch, cfg, plan, idmapped)
}

/// Clone stage 2 as our sibling, sharing our memory if `share`
/// (sys::shared_clone):
/// into the container's cgroup v2 directory when the parent gave one (it is
/// `placed` then), else plainly, for the parent to move. Either way stage 1
/// never enters the container's cgroups, so its start-up and the clone are
/// charged to the caller, not to the container's limits. Returns only when
/// no stage 2 was started.
fn clone_stage2<C, P>(
    cgroup_fd: Option<RawFd>,
    new_pidns: bool,
    share: bool,
    child: C,
    parent: P,
) -> Result<Never>
where
    C: FnOnce() -> Infallible,
    P: FnOnce(i32, bool) -> Infallible,
{
    let (child, parent) = match cgroup_fd {
        None => (child, parent),
        Some(fd) => {
            let refused = clone_shared(Some(fd), share, child, parent)?;
            // A kernel without clone3 or CLONE_INTO_CGROUP refuses before
            // the fork begins. A refusal of the cgroup itself comes after the
            // first PID of a new PID namespace was taken and freed, which
            // leaves that namespace refusing every fork (ENOMEM): no retry.
            if new_pidns
                && !matches!(
                    refused.error.raw_os_error(),
                    Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL)
                )
            {
                return Err(refused.error)
                    .ctx(|| "clone3(CLONE_INTO_CGROUP) of init into the container's cgroup");
            }
            (refused.child, refused.parent)
        }
    };
    // Without a cgroup there is no refusal: an error, or no return at all.
    let refused = clone_shared(None, share, child, parent)?;
    Err(refused.error).ctx(|| "clone init's stage 2")
}

/// The idmapped mounts' trees, made while init is still the host's root
/// (see rootfs/idmap.rs); none for exec or without a mount namespace, where
/// no mount is made.
fn prepare_idmapped(cfg: &InitConfig, plan: &namespaces::Plan) -> Result<Vec<Option<OwnedFd>>> {
    if cfg.exec || !plan.unshare.contains(CloneFlags::CLONE_NEWNS) {
        return Ok(Vec::new());
    }
    let userns = plan.new_user
        || plan
            .join
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::User);
    crate::rootfs::idmap::prepare(&cfg.spec, &cfg.bundle, &cfg.rootfs, userns)
}

/// The parent's answer to a request of stage 1 (or its Abort).
fn recv_next(ch: &Channel) -> Result<ToInit> {
    match ch.recv::<ToInit>()? {
        Some(ToInit::Abort(m)) => bail!("aborted by parent: {m}"),
        Some(m) => Ok(m),
        None => bail!("init: the parent went away"),
    }
}

fn stage2(
    ch: &Channel,
    cfg: &InitConfig,
    plan: &namespaces::Plan,
    idmapped: Vec<Option<OwnedFd>>,
) -> Result<Never> {
    nix::unistd::setsid().ctx(|| "setsid")?;
    let spec = &cfg.spec;
    let process = spec.process().clone().unwrap_or_default();
    let linux = spec.linux().clone().unwrap_or_default();
    // Exact modes for device nodes and mount points; the process umask comes later.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    if !cfg.exec {
        if plan.unshare.contains(CloneFlags::CLONE_NEWNS) {
            let later = prepare_rootfs(ch, cfg, plan, idmapped)?;
            mounts::finish_read_only(later)?;
            let ro = spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false);
            masked::readonly(&linux.readonly_paths().clone().unwrap_or_default())?;
            masked::mask(&linux.masked_paths().clone().unwrap_or_default())?;
            if ro {
                masked::readonly_root()?;
            }
            // rootfsPropagation for the container's own "/" can only be set
            // after pivot_root (before, that mount was part of the host's tree),
            // and last, as an unbindable root refuses the binds above. Private
            // is already what the bind of the rootfs inherited. Only when the
            // config asks (runc 1.2+): the rslave default, applied recursively
            // again here, would turn a mount's own "shared" option into a slave.
            let prop = rootfs_propagation(spec)?;
            if explicit_rootfs_propagation(spec) && !prop.contains(MsFlags::MS_PRIVATE) {
                mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
                    .ctx(|| format!("set rootfsPropagation {prop:?} on /"))?;
            }
            crate::timing::lap("masks");
        } else {
            // Without a private mount namespace every mount would land on the
            // host: only change root (the parent warns that mounts are skipped).
            run_runtime_hooks(ch, cfg)?;
            nix::unistd::chroot(&cfg.rootfs).ctx(|| format!("chroot {}", cfg.rootfs.display()))?;
            nix::unistd::chdir("/").ctx(|| "chdir /")?;
        }
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(h).ctx(|| format!("sethostname {h:?}"))?;
        }
        if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
            sys::procfs::write("sys/kernel/domainname", d.as_bytes())
                .ctx(|| format!("set domainname {d:?}"))?;
        }
        if let Some(sysctl) = linux.sysctl() {
            let mut writes = Vec::new();
            for (k, v) in sysctl {
                let path = crate::spec::sysctl::proc_path(k)?;
                writes.push((path, v.as_bytes(), format!("sysctl {k}={v}")));
            }
            sys::procfs::write_all(writes)?;
        }
        if !cfg.no_new_keyring {
            sys::join_session_keyring(&cfg.id)?;
        }
        crate::timing::lap("hostname");
    }
    super::setup::process(ch, cfg, &process)
}

fn explicit_rootfs_propagation(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .is_some_and(|p| !p.is_empty())
}

fn rootfs_propagation(spec: &Spec) -> Result<MsFlags> {
    let p = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .unwrap_or_default();
    Ok(match p.as_str() {
        "" | "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        other => bail!("linux.rootfsPropagation {other:?} is not a propagation mode"),
    })
}

/// The mount point (from /proc/self/mountinfo) that contains `path`.
fn mount_point_of(path: &Path) -> Result<PathBuf> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    let mut best = PathBuf::from("/");
    for line in info.lines() {
        if let Some(mp) = line.split(' ').nth(4) {
            let mp = PathBuf::from(mp.replace("\\040", " "));
            if path.starts_with(&mp) && mp.as_os_str().len() > best.as_os_str().len() {
                best = mp;
            }
        }
    }
    Ok(best)
}

fn prepare_rootfs(
    ch: &Channel,
    cfg: &InitConfig,
    plan: &namespaces::Plan,
    idmapped: Vec<Option<OwnedFd>>,
) -> Result<Vec<mounts::LaterReadOnly>> {
    let spec = &cfg.spec;
    let prop = rootfs_propagation(spec)?;
    // Nothing we mount below may propagate to the host: `/` first becomes a slave
    // (or what rootfsPropagation asks), and the mount holding the rootfs private.
    mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
        .ctx(|| format!("set propagation {prop:?} on /"))?;
    // pivot_root refuses a new root whose parent mount is shared, and an
    // unbindable parent refuses the rootfs bind below; after an rslave or
    // rprivate `/` neither is, so mountinfo is only read when needed.
    if prop.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE) {
        let parent = mount_point_of(cfg.rootfs.parent().unwrap_or(Path::new("/")))?;
        mount(
            None::<&str>,
            &parent,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .ctx(|| format!("make {} private", parent.display()))?;
    }
    mount(
        Some(&cfg.rootfs),
        &cfg.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind rootfs {} onto itself", cfg.rootfs.display()))?;
    // The new root belongs to no peer group and has no master, as runc's
    // (whose rootfs parent is made private): where the bundle sits on a
    // shared mount (/tmp on systemd hosts), a slave root would still receive
    // whatever the host mounts under the rootfs. rootfsPropagation is applied
    // to it after pivot_root.
    mount(
        None::<&str>,
        &cfg.rootfs,
        None::<&str>,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("make rootfs {} private", cfg.rootfs.display()))?;
    let root = Root::open(&cfg.rootfs)?;
    let in_userns = plan.new_user
        || plan
            .join
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::User);
    let mount_label = crate::security::lsm::mount_label_to_apply(spec);
    let ctx = mounts::MountCtx {
        root: &root,
        bundle: &cfg.bundle,
        in_userns,
        cgroups: &cfg.cgroup_mounts,
        new_cgroupns: plan.unshare.contains(CloneFlags::CLONE_NEWCGROUP),
        mount_label: mount_label.as_deref(),
    };
    let ms = spec.mounts().clone().unwrap_or_default();
    let later = mounts::mount_all(&ctx, &ms, idmapped)?;
    let dev_is_tmpfs = ms.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && m.typ().as_deref() != Some("bind")
            && !m
                .options()
                .as_ref()
                .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
    });
    let linux = spec.linux().clone().unwrap_or_default();
    let listed = linux.devices().clone().unwrap_or_default();
    if dev_is_tmpfs {
        // A default the config lists itself is the config's (runc: /dev/null
        // as 1:5 is made as asked, not refused as a clash with the default).
        for n in devices::defaults()
            .into_iter()
            .filter(|n| !listed.iter().any(|d| d.path() == &n.path))
        {
            devices::create(&root, &n, in_userns)?;
        }
    }
    // The config's devices before the /dev symlinks, as runc: Docker's
    // --privileged lists the host's /dev/ptmx, which the ptmx symlink to the
    // container's devpts then replaces.
    for d in linux.devices().clone().unwrap_or_default() {
        devices::create(&root, &devices::from_spec(&d)?, in_userns)?;
    }
    if dev_is_tmpfs {
        devices::symlinks(&root)?;
    }
    crate::timing::lap("rootfs");
    run_runtime_hooks(ch, cfg)?;
    crate::timing::lap("hooks");
    drop(root);
    if cfg.no_pivot {
        pivot::move_root(&cfg.rootfs)?;
    } else {
        pivot::pivot(&cfg.rootfs)?;
    }
    if dev_is_tmpfs {
        devices::reopen_dev_null()?;
    }
    crate::timing::lap("pivot");
    Ok(later)
}

/// prestart and createRuntime (run by the parent, in the runtime's namespaces),
/// then createContainer (here, in the container's namespaces, before pivot_root).
fn run_runtime_hooks(ch: &Channel, cfg: &InitConfig) -> Result<()> {
    let h = cfg.spec.hooks().as_ref();
    if !hooks::of_kind(h, hooks::Kind::Prestart).is_empty()
        || !hooks::of_kind(h, hooks::Kind::CreateRuntime).is_empty()
    {
        ch.send(&FromInit::RunHooks)?;
        match ch.recv::<ToInit>()? {
            Some(ToInit::HooksDone) => {}
            Some(ToInit::Abort(m)) => bail!("{m}"),
            other => bail!("init: expected hooks done, got {other:?}"),
        }
    }
    let cc = hooks::of_kind(h, hooks::Kind::CreateContainer);
    if !cc.is_empty() {
        let mut st = cfg.state.clone();
        st["pid"] = serde_json::json!(std::process::id());
        hooks::run_all(&cc, hooks::Kind::CreateContainer, &st.to_string())?;
    }
    Ok(())
}

/// Look `name` up in the container's PATH (from the process env), as execvp would.
pub fn find_executable(name: &str, env: &[String]) -> Result<PathBuf> {
    // The wording matters: Docker maps "permission denied" to exit status 126
    // and "no such file or directory" / "not found in $PATH" to 127, as with runc.
    if name.contains('/') {
        let p = PathBuf::from(name);
        return match std::fs::metadata(&p) {
            Ok(m) if is_executable(&m) => Ok(p),
            Ok(_) => Err(Error::new(format!("exec: {name:?}: permission denied"))),
            Err(e) => Err(Error::new(format!(
                "exec: {name:?}: stat {name}: {}",
                io_text(&e)
            ))),
        };
    }
    // Only the process's own PATH, as runc (Go's LookPath): none finds nothing.
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    for dir in path.split(':').filter(|_| !path.is_empty()) {
        let p = Path::new(if dir.is_empty() { "." } else { dir }).join(name);
        if std::fs::metadata(&p).is_ok_and(|m| is_executable(&m)) {
            return Ok(p);
        }
    }
    Err(Error::new(format!(
        "exec: {name:?}: executable file not found in $PATH"
    )))
}

fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.is_file() && m.permissions().mode() & 0o111 != 0
}

/// An io::Error as Go prints it: "no such file or directory", without "(os error 2)".
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    s.to_lowercase()
}

pub fn cstrings(v: &[String], what: &str) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).ctx(|| format!("{what} {s:?}")))
        .collect()
}

/// `--debug`: init's step times, to the parent's log (init has none).
pub fn send_timings(ch: &Channel) -> Result<()> {
    if crate::timing::enabled() {
        ch.send(&FromInit::Timing(crate::timing::take()))?;
    }
    Ok(())
}

/// Tell `start` we are set up: the one byte in the exec fifo (the parent
/// opened it for us read-write with room for exactly one write, see
/// `container::lifecycle::make_exec_fifo`). Written before Ready, so it is there
/// by the time `create` returns.
pub fn announce_ready(fifo: &OwnedFd) -> Result<()> {
    nix::unistd::write(fifo, &[0]).ctx(|| "write exec fifo")?;
    Ok(())
}

/// Block until `start` has read our byte: the fifo holds one write, so it
/// becomes writable again exactly then. The fd stays open until execve closes
/// it (CLOEXEC): `start` reads to EOF, so it knows the user process has been
/// executed before it runs the poststart hooks (runtime-spec: "after the
/// user-specified process is executed"). Nothing here goes through a path or
/// a procfs: init reaches the fifo only through the fd it was given.
pub fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {
                let ev = fds[0].revents().unwrap_or(PollFlags::empty());
                if ev.contains(PollFlags::POLLOUT) {
                    return Ok(());
                }
                bail!("wait for start on the exec fifo: poll returned {ev:?}");
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("wait for start on the exec fifo: poll: {e}"),
        }
    }
}

/// The process environment with each name once, as runc passes it: a name
/// set twice (the config's env, then `exec --env`) keeps the place of its
/// first entry and the value of its last.
pub fn env_of(process: &Process) -> Vec<String> {
    dedup_env(process.env().clone().unwrap_or_default())
}

pub fn dedup_env(env: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for kv in env {
        let name = kv
            .split_once('=')
            .map_or(kv.as_str(), |(n, _)| n)
            .to_string();
        match index.get(&name) {
            Some(&i) => out[i] = kv,
            None => {
                index.insert(name, out.len());
                out.push(kv);
            }
        }
    }
    out
}

#[cfg(test)]
mod env_tests {
    use super::dedup_env;

    #[test]
    fn last_value_wins_in_first_place() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dedup_env(v(&["A=1", "B=2", "A=3", "C", "C", "B="])),
            v(&["A=3", "B=", "C"])
        );
    }
}
