//! Parent side of create and exec: start `skiff init`, place it in the cgroup,
//! send its config, answer its requests (id maps, hooks), and collect its result.

use super::init::{InitConfig, SYNC_FD_ENV};
use super::sync::{Channel, FromInit, ToInit};
use crate::bail;
use crate::cgroups::Manager;
use crate::error::{Context, Error, Result};
use crate::namespaces;
use crate::sys::spawn::{self, ChildSetup, IntoCgroup};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// What the parent must do at each point init asks for.
pub trait Parent {
    /// init (stage 2) is in the container's cgroups: join what else it must
    /// be in before it goes on (resctrl groups).
    fn place(&mut self, _stage2: i32) -> Result<()> {
        Ok(())
    }
    /// Called once the container process's host PID is known (state can say "creating").
    fn on_pid(&mut self, pid: i32) -> Result<()>;
    /// Run prestart and createRuntime hooks.
    fn run_hooks(&mut self, pid: i32) -> Result<()>;
    /// A seccomp notify fd arrived from init.
    fn seccomp_fd(&mut self, pid: i32, fd: OwnedFd) -> Result<()>;
}

pub struct Launch<'a> {
    pub cfg: InitConfig,
    pub cgroup: Option<&'a dyn Manager>,
    /// fds init must inherit (fifo, console socket) besides the sync socket.
    pub pass_fds: Vec<RawFd>,
}

/// Move `fd` to a number at or above `min` (so preserved fds 3..3+N stay the
/// caller's), CLOEXEC like everything of ours until pre_exec clears it.
fn dup_above(fd: RawFd, min: RawFd) -> Result<OwnedFd> {
    let n = nix::fcntl::fcntl(
        crate::sys::borrow_fd(fd),
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min),
    )
    .ctx(|| "dup fd for init")?;
    Ok(crate::sys::owned_fd(n))
}

/// `--preserve-fds N` passes fds 3..3+N: refuse an N for which those cannot
/// all be fds (beyond the open-file limit), before its arithmetic can wrap
/// and take stdio or the sync socket with it.
pub fn check_preserve_fds(n: u32) -> Result<()> {
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ctx(|| "--preserve-fds: getrlimit RLIMIT_NOFILE")?;
    // Room for the fds we add above the preserved ones (see dup_above).
    let max = hard.min(i32::MAX as u64).saturating_sub(3 + 16);
    if u64::from(n) > max {
        bail!(
            "--preserve-fds {n}: fds 3 to {} cannot exist (the open file limit is {hard}); at most {max}",
            u64::from(n) + 2
        );
    }
    Ok(())
}

fn in_user_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| crate::namespaces::has(n, LinuxNamespaceType::User))
}

fn kill_and_reap(pid: i32) {
    if pid > 0 {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
    }
}

/// Start init and drive it to Ready. Returns the container process's host PID.
/// On failure every process started here is killed and reaped.
pub fn launch(mut l: Launch, parent: &mut dyn Parent) -> Result<i32> {
    crate::security::preflight(&l.cfg.spec)?;
    let initial_cpus = match (l.cfg.exec, l.cfg.spec.process()) {
        (true, Some(p)) => crate::security::task::initial_affinity(p)?,
        _ => None,
    };
    let min_fd = 3 + l.cfg.preserve_fds as RawFd + 8;
    let (ours, theirs) = Channel::pair()?;
    let theirs_fd = dup_above(theirs.raw(), min_fd)?;
    drop(theirs);
    let mut keep = Vec::new();
    let mut mapped = Vec::new();
    for fd in &l.pass_fds {
        let d = dup_above(*fd, min_fd)?;
        mapped.push((*fd, d.as_raw_fd()));
        keep.push(d);
    }
    if let Some(f) = l.cfg.fifo_fd.as_mut() {
        if let Some((_, n)) = mapped.iter().find(|(o, _)| o == f) {
            *f = *n;
        }
    }
    if let Some(f) = l.cfg.console_fd.as_mut() {
        if let Some((_, n)) = mapped.iter().find(|(o, _)| o == f) {
            *f = *n;
        }
    }
    // create on cgroup v2: stage 1 clones stage 2 straight into the cgroup
    // (see init::clone_stage2) and needs the directory for it. Not from a
    // user namespace: its root may not write the host's cgroup.procs, which
    // clone3 checks with the caller's credentials (the parent moves stage 2).
    if !l.cfg.exec && !in_user_namespace(&l.cfg.spec) {
        if let Some(fd) = l.cgroup.map(|c| c.clone_into()).transpose()?.flatten() {
            let d = dup_above(fd.as_raw_fd(), min_fd)?;
            l.cfg.cgroup_fd = Some(d.as_raw_fd());
            keep.push(d);
        }
    }
    // cgroup v1 (create and exec): stage 2 moves itself in through the
    // `tasks` files, without the grace period a write of its PID costs.
    if l.cfg.cgroup_fd.is_none() {
        for f in l
            .cgroup
            .map(|c| c.join_files())
            .transpose()?
            .unwrap_or_default()
        {
            let d = dup_above(f.as_raw_fd(), min_fd)?;
            l.cfg.cgroup_join_fds.push(d.as_raw_fd());
            keep.push(d);
        }
    }
    let mut inherit: Vec<RawFd> = keep.iter().map(|k| k.as_raw_fd()).collect();
    inherit.push(theirs_fd.as_raw_fd());
    let exe = crate::sys::self_exe()?;
    let setup = ChildSetup::new(3 + l.cfg.preserve_fds as RawFd, inherit, initial_cpus);
    let sync_env = (SYNC_FD_ENV, theirs_fd.as_raw_fd().to_string());
    let mem_before = super::oom_cause::before(l.cgroup);
    let (stage1, placed) = spawn_init(&l, exe, &sync_env, setup).map_err(|e| {
        super::oom_cause::explain(l.cgroup, &mem_before, &l.cfg.spec, l.cfg.exec, e)
    })?;
    crate::timing::lap("spawn");
    drop(theirs_fd);
    drop(keep);
    let mut stage2 = 0;
    let r = drive(&l, &ours, stage1, placed, &mut stage2, parent);
    match r {
        Ok(pid) => Ok(pid),
        Err(e) => {
            let _ = ours.send(&ToInit::Abort(e.message().to_string()));
            kill_and_reap(stage2);
            kill_and_reap(stage1);
            let (cg, spec) = (l.cgroup, &l.cfg.spec);
            Err(super::oom_cause::explain(
                cg,
                &mem_before,
                spec,
                l.cfg.exec,
                e,
            ))
        }
    }
}

/// Start stage 1 of init. For exec on cgroup v2 it starts inside the
/// container's cgroup (clone3 with CLONE_INTO_CGROUP, as runc 1.4 does for
/// exec): returns true then, and nothing needs to join it; where the kernel
/// refuses that, or the manager cannot (v1), a plain spawn. For create, stage 1
/// stays outside: only stage 2 goes in (its start-up, the exec of skiff and
/// the fork of stage 2 are not the container's to pay for).
fn spawn_init(
    l: &Launch,
    exe: &str,
    env: &(&str, String),
    setup: ChildSetup,
) -> Result<(i32, bool)> {
    let into = l.cgroup.filter(|_| l.cfg.exec);
    if let Some(fd) = into.map(|c| c.clone_into()).transpose()?.flatten() {
        let argv = ["skiff", "init"];
        match spawn::into_cgroup(fd.as_fd(), exe, &argv, (env.0, &env.1), &setup)? {
            IntoCgroup::Started(pid) => return Ok((pid, true)),
            IntoCgroup::Refused(e) => {
                log::debug!("clone3(CLONE_INTO_CGROUP) refused ({e}): joining through cgroup.procs")
            }
        }
    }
    let program = spawn::Program::new(exe, &["skiff", "init"], (env.0, &env.1))?;
    let pid = spawn::spawn(&program, &setup).ctx(|| format!("start init ({exe})"))?;
    Ok((pid, false))
}

fn drive(
    l: &Launch,
    ch: &Channel,
    stage1: i32,
    placed: bool,
    stage2: &mut i32,
    parent: &mut dyn Parent,
) -> Result<i32> {
    // Config first: init unshares its namespaces while we make its cgroup
    // and write the limits where the cgroup exists already (v2).
    send_or_init_error(ch, &ConfigMsg::Config(&l.cfg)).map_err(|e| during_init(l, e))?;
    // pids.max waits until stage 1 has cloned stage 2 and exited: a limit of
    // 1 (runc 1.4: pids.limit 0) must leave room for init's own clone.
    let mut pids_later = None;
    let mut limits_set = false;
    if let Some(cg) = l.cgroup {
        if !l.cfg.exec && (l.cfg.cgroup_fd.is_some() || !l.cfg.cgroup_join_fds.is_empty()) {
            // The cgroup exists (v2, or v1 made for stage 2 to join): its
            // limits now, while stage 1 works, and before anything joins.
            pids_later = set_limits(l, cg)?;
            limits_set = true;
        }
    }
    talk(
        l, ch, stage1, placed, stage2, limits_set, pids_later, parent,
    )
    .map_err(|e| during_init(l, e))
}

/// runc 1.2+ reports everything that fails while it talks with the
/// container's init (init's own errors, the hooks run on its request, an
/// execve lookup) as `error during container init: ...` (runc 1.1 left the
/// lookup out); exec's setns process has no such layer.
fn during_init(l: &Launch, e: Error) -> Error {
    if l.cfg.exec {
        e
    } else {
        Error::new(format!("error during container init: {e}"))
    }
}

/// Answer init's requests until it is ready (or fails).
#[allow(clippy::too_many_arguments)]
fn talk(
    l: &Launch,
    ch: &Channel,
    stage1: i32,
    placed: bool,
    stage2: &mut i32,
    limits_set: bool,
    mut pids_later: Option<oci_spec::runtime::LinuxPids>,
    parent: &mut dyn Parent,
) -> Result<i32> {
    loop {
        let msg = ch.recv_with_fd::<FromInit>()?;
        let Some((msg, fd)) = msg else {
            let why = if *stage2 == 0 { stage1 } else { *stage2 };
            bail!(
                "container init exited unexpectedly{}",
                exit_reason(why, *stage2 == 0)
            );
        };
        match msg {
            FromInit::NeedMaps => {
                write_maps(&l.cfg.spec, stage1)?;
                ch.send(&ToInit::MapsWritten)?;
            }
            FromInit::NeedTimeOffsets => {
                let linux = l.cfg.spec.linux().clone().unwrap_or_default();
                namespaces::write_time_offsets(stage1, &linux)?;
                ch.send(&ToInit::TimeOffsetsWritten)?;
            }
            FromInit::Pid(pid, in_cgroup) => {
                *stage2 = pid;
                // Stage 1 is done; reap it so it does not linger as a zombie.
                let _ = waitpid(Pid::from_raw(stage1), None);
                if let Some(cg) = l.cgroup {
                    // exec's stage 1 may have been born in the cgroup (v2),
                    // and stage 2 with it; else stage 2 is moved in now.
                    if !l.cfg.cgroup_join_fds.is_empty() {
                        // Stage 2 joins itself (v1) before it waits for
                        // CgroupsApplied; only hybrid's cgroup2 is left.
                        cg.apply_joined(pid)?;
                    } else if !in_cgroup && !placed {
                        cg.apply(pid)?;
                    }
                    if !limits_set && !l.cfg.exec {
                        pids_later = set_limits(l, cg)?;
                    }
                }
                if let (Some(cg), Some(p)) = (l.cgroup, pids_later.take()) {
                    let mut only = oci_spec::runtime::LinuxResources::default();
                    only.set_pids(Some(p));
                    cg.set(&only)?;
                }
                parent.place(pid)?;
                ch.send(&ToInit::CgroupsApplied)?;
                crate::timing::lap("cgroup");
                parent.on_pid(pid)?;
                // Init is in the container's namespaces now; it goes on with
                // its mounts while we move the devices (runc 1.4's order:
                // before the container's config reaches init).
                if !l.cfg.exec {
                    if let Some(devs) = l
                        .cfg
                        .spec
                        .linux()
                        .as_ref()
                        .and_then(|x| x.net_devices().as_ref())
                    {
                        crate::netdev::move_all(devs, pid)?;
                    }
                }
            }
            FromInit::RunHooks => {
                parent.run_hooks(*stage2)?;
                ch.send(&ToInit::HooksDone)?;
            }
            FromInit::SeccompFd => match fd {
                Some(fd) => parent.seccomp_fd(*stage2, fd)?,
                None => bail!("init announced a seccomp fd but sent none"),
            },
            FromInit::Timing(steps) => {
                for (name, us) in steps {
                    crate::timing::emit(&name, us);
                }
            }
            FromInit::Ready if l.cfg.exec => {
                crate::timing::lap("ready");
                return exec_result(ch, *stage2);
            }
            FromInit::Ready => {
                crate::timing::lap("ready");
                return Ok(*stage2);
            }
            FromInit::Error(m) => return Err(Error::new(m)),
        }
    }
}

/// The container's limits as create writes them (device rules included even
/// when the spec has none), but pids.max, returned to be written once stage 1
/// has exited. exec joins a cgroup whose limits are already set (and maybe
/// changed by `update` since): only create writes them.
fn set_limits(l: &Launch, cg: &dyn Manager) -> Result<Option<oci_spec::runtime::LinuxPids>> {
    let spec_res = l
        .cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|x| x.resources().as_ref());
    let mut res = crate::cgroups::resources_for_create(spec_res);
    let pids = *res.pids();
    res.set_pids(None);
    cg.set(&res)?;
    Ok(pids)
}

/// After Ready, an exec'd process only has execve left: the sync socket closes
/// (CLOEXEC) when it succeeds, and an Error arrives when it fails, so a
/// command that cannot run fails `exec` instead of exiting 1 unseen.
fn exec_result(ch: &Channel, pid: i32) -> Result<i32> {
    match ch.recv::<FromInit>()? {
        None => Ok(pid),
        Some(FromInit::Error(m)) => Err(Error::new(m)),
        Some(other) => bail!("init: unexpected {other:?} after ready"),
    }
}

/// Send to init; if init has already failed (the socket is closed), its own
/// message explains why far better than our EPIPE does.
fn send_or_init_error<T: serde::Serialize>(ch: &Channel, msg: &T) -> Result<()> {
    let Err(e) = ch.send(msg) else {
        return Ok(());
    };
    match ch.recv::<FromInit>() {
        Ok(Some(FromInit::Error(m))) => Err(Error::new(m)),
        _ => Err(e),
    }
}

/// Serializes exactly as `ToInit::Config` (same externally tagged enum shape)
/// from a borrow, so the config is encoded once and never copied.
#[derive(serde::Serialize)]
enum ConfigMsg<'a> {
    Config(&'a InitConfig),
}

fn exit_reason(pid: i32, is_stage1: bool) -> String {
    if pid <= 0 || !is_stage1 {
        return String::new();
    }
    match waitpid(Pid::from_raw(pid), None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => format!(" (exit status {c})"),
        Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => format!(" (killed by {s})"),
        _ => String::new(),
    }
}

/// Write uid/gid maps for init's new user namespace; gid maps need setgroups
/// denied first unless we are privileged in the parent namespace (we are root).
fn write_maps(spec: &Spec, pid: i32) -> Result<()> {
    let linux = spec.linux().clone().unwrap_or_default();
    let uids = linux.uid_mappings().clone().unwrap_or_default();
    let gids = linux.gid_mappings().clone().unwrap_or_default();
    if nix::unistd::geteuid().is_root() {
        namespaces::write_id_maps(pid, &uids, &gids)
    } else {
        crate::rootless::write_id_maps(pid, &uids, &gids)
    }
}
