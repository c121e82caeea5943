//! create, start, kill, delete: the runtime-spec operations.

use super::state::{State, Status};
use super::store::{self, Store};
use super::{proc_start_time, Container, Globals};
use crate::bail;
use crate::cgroups::{self, FreezerState, Manager};
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::process::init::InitConfig;
use crate::process::launch::{self, Launch, Parent};
use crate::spec;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `run` in the foreground: the terminal is proxied by us, no socket needed.
    pub foreground: bool,
    /// The console socket is our own foreground proxy (`run -t`): the pty
    /// gets ONLCR cleared, as runc's own terminal handling does.
    pub own_console: bool,
    /// runc 1.2's `--pidfd-socket`: where to send a pidfd of init.
    pub pidfd_socket: Option<PathBuf>,
    /// `run`: init is released through a pipe we hold (see `Created`), not
    /// the exec fifo, which nobody else needs when start follows at once.
    pub pipe_handshake: bool,
}

/// A container `create_for_run` made: what `start_created` needs, kept in
/// memory instead of read back from the state dir.
pub struct Created {
    pub pid: i32,
    /// The read end of init's handshake pipe.
    handshake: OwnedFd,
    state: State,
    spec: Spec,
}

/// Undo a half-made container when create fails, by `delete`'s rules: with a
/// PID namespace of its own, killing init (launch already did, if it failed)
/// ends the container, and whatever else is in the cgroup belongs to another
/// container sharing the cgroupsPath, which must survive.
pub(super) struct Cleanup<'a> {
    pub(super) store: &'a Store,
    pub(super) id: &'a str,
    pub(super) cgroup: Option<&'a dyn Manager>,
    pub(super) own_ns: bool,
    pub(super) pid: i32,
    pub(super) intel_rdt: Option<crate::intelrdt::Applied>,
    pub(super) armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.pid > 0 {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(self.pid), None);
        }
        if let Some(cg) = self.cgroup {
            if let Err(e) = release_cgroup(cg, self.own_ns) {
                log::warn!("cleanup: {e}");
            }
        }
        if let Some(a) = &self.intel_rdt {
            if let Err(e) = crate::intelrdt::destroy(a) {
                log::warn!("cleanup: {e}");
            }
        }
        let _ = self.store.remove(self.id);
    }
}

struct CreateParent<'a> {
    store: &'a Store,
    state: State,
    spec: &'a Spec,
    /// Whether state must carry init's PID before create ends (see on_pid).
    record_pid: bool,
}

impl CreateParent<'_> {
    fn oci_json(&self, status: Status) -> String {
        serde_json::to_string(&self.state.to_oci(status)).unwrap_or_default()
    }
}

impl Parent for CreateParent<'_> {
    fn place(&mut self, stage1: i32) -> Result<()> {
        let Some(r) = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.intel_rdt().as_ref())
        else {
            return Ok(());
        };
        let root = crate::intelrdt::detect().map_err(|why| {
            Error::new(format!("linux.intelRdt: Intel RDT is not enabled: {why}"))
        })?;
        let a = crate::intelrdt::apply(&root, r, &self.state.id, stage1)
            .ctx(|| "unable to apply Intel RDT configuration")?;
        self.state.intel_rdt = Some(a);
        self.store
            .write_json(&self.state.id, store::STATE_FILE, &self.state)
    }

    fn on_pid(&mut self, pid: i32) -> Result<()> {
        self.state.pid = pid;
        self.state.init_start_time = proc_start_time(pid).map(|x| x.0).unwrap_or(0);
        if !self.record_pid {
            return Ok(());
        }
        self.store
            .write_json(&self.state.id, store::STATE_FILE, &self.state)
    }

    fn run_hooks(&mut self, _pid: i32) -> Result<()> {
        let json = self.oci_json(Status::Creating);
        let h = self.spec.hooks().as_ref();
        hooks::run_all(
            &hooks::of_kind(h, hooks::Kind::Prestart),
            hooks::Kind::Prestart,
            &json,
        )?;
        hooks::run_all(
            &hooks::of_kind(h, hooks::Kind::CreateRuntime),
            hooks::Kind::CreateRuntime,
            &json,
        )
    }

    fn seccomp_fd(&mut self, _pid: i32, fd: OwnedFd) -> Result<()> {
        let json = self.oci_json(Status::Creating);
        crate::security::seccomp::send_to_listener(self.spec, &json, fd)
    }
}

/// A rootless container keeps its cgroup only where the user may write it
/// (cgroups::rootless); a root one always does.
fn rootless_cgroup(
    g: &Globals,
    m: Box<dyn cgroups::Manager>,
    linux: &oci_spec::runtime::Linux,
) -> Result<Option<Box<dyn cgroups::Manager>>> {
    // systemd makes a scope's cgroup: the user's own instance for a rootless
    // container, where anything it cannot do is its error.
    if !g.rootless || g.systemd_cgroup {
        return Ok(Some(m));
    }
    let explicit = linux.cgroups_path().is_some();
    let usable = cgroups::rootless::usable(m.as_ref(), explicit, linux.resources().as_ref())?;
    Ok(usable.then_some(m))
}

pub fn create(g: &Globals, id: &str, o: &CreateOpts) -> Result<i32> {
    create_inner(g, id, o).map(|(pid, _)| pid)
}

/// `run`'s create: released by `start_created` through a pipe.
pub fn create_for_run(g: &Globals, id: &str, o: &CreateOpts) -> Result<Created> {
    let o = CreateOpts {
        pipe_handshake: true,
        ..o.clone()
    };
    match create_inner(g, id, &o)? {
        (_, Some(c)) => Ok(c),
        (_, None) => bail!("create: no handshake pipe"),
    }
}

/// Whether anything can look at the state while create runs: a hook (it
/// may call `state`) or a seccomp listener (it gets the state). Without the
/// exec fifo (`run`), init cannot outlive us waiting for start (the pipe
/// breaks), so nobody else needs its PID on disk before create is done.
fn observed_while_creating(spec: &Spec) -> bool {
    let h = spec.hooks().as_ref();
    [
        hooks::Kind::Prestart,
        hooks::Kind::CreateRuntime,
        hooks::Kind::CreateContainer,
    ]
    .into_iter()
    .any(|k| !hooks::of_kind(h, k).is_empty())
        || spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .is_some_and(|s| s.listener_path().is_some())
}

fn create_inner(g: &Globals, id: &str, o: &CreateOpts) -> Result<(i32, Option<Created>)> {
    store::validate_id(id)?;
    launch::check_preserve_fds(o.preserve_fds)?;
    if let Some(p) = &o.pid_file {
        store::check_pid_file(p)?;
    }
    let bundle =
        std::fs::canonicalize(&o.bundle).ctx(|| format!("bundle {}", o.bundle.display()))?;
    let spec = spec::load(&bundle)?;
    log::debug!("config loaded from {}", bundle.display());
    let rootfs = spec::rootfs(&spec, &bundle)?;
    check_terminal(&spec, o)?;
    crate::timing::lap("parse");
    let linux = spec.linux().clone().unwrap_or_default();
    let nss = linux.namespaces().clone().unwrap_or_default();
    log::debug!(
        "namespaces: {:?}; {} mounts",
        nss.iter().map(|n| n.typ()).collect::<Vec<_>>(),
        spec.mounts().as_ref().map_or(0, |m| m.len())
    );
    if !crate::namespaces::has(&nss, oci_spec::runtime::LinuxNamespaceType::Mount) {
        log::warn!("no mount namespace: mounts, devices, masked and read-only paths are not applied (they would change the host)");
    }
    let st = g.store();
    let dir = st.create_dir(id)?;
    let _lock = st.lock(id)?;
    let cg_box = match cgroups::create(
        linux.cgroups_path().as_ref().and_then(|p| p.to_str()),
        id,
        g.systemd_cgroup,
    )
    .and_then(|m| m.check_unused().map(|()| m))
    .and_then(|m| rootless_cgroup(g, m, &linux))
    {
        Ok(m) => m,
        // Nothing of ours to undo yet: an in-use cgroup is someone else's.
        Err(e) => {
            let _ = st.remove(id);
            return Err(e);
        }
    };
    let mut guard = Cleanup {
        store: &st,
        id,
        cgroup: cg_box.as_deref(),
        own_ns: has_own_pid_ns(&spec),
        pid: 0,
        intel_rdt: None,
        armed: true,
    };
    st.write_json(id, store::CONFIG_FILE, &spec)?;
    let (fifo, handshake) = match o.pipe_handshake {
        true => {
            let (r, w) = make_handshake_pipe()?;
            (w, Some(r))
        }
        false => (make_exec_fifo(&dir)?, None),
    };
    let console = match &o.console_socket {
        Some(p) => Some(crate::process::tty::connect_console_socket(p)?),
        None => None,
    };
    let pidfd_sock = match &o.pidfd_socket {
        Some(p) => Some(crate::process::pidfd::connect(p)?),
        None => None,
    };
    let cgroup_path = cg_box.as_ref().map(|c| c.path().to_string());
    log::debug!("cgroup path {}", cgroup_path.as_deref().unwrap_or("(none)"));
    let state = new_state(g, id, &spec, &bundle, &rootfs, cgroup_path);
    // Written before any cgroup exists, so a `create` killed at any point
    // leaves state that `delete --force` can clean up from.
    st.write_json(id, store::STATE_FILE, &state)?;
    let mut pass_fds = vec![fifo.as_raw_fd()];
    if let Some(c) = &console {
        pass_fds.push(c.as_raw_fd());
    }
    let cfg = InitConfig {
        spec: crate::process::listen_fds::with_env(spec.clone()),
        id: id.to_string(),
        bundle: bundle.clone(),
        rootfs,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        fifo_fd: Some(fifo.as_raw_fd()),
        console_fd: console.as_ref().map(|c| c.as_raw_fd()),
        preserve_fds: o.preserve_fds,
        clear_onlcr: o.own_console,
        cgroup_mounts: cg_box.as_ref().map(|c| c.mounts()).unwrap_or_default(),
        cgroup_fd: None,
        cgroup_join_fds: Vec::new(),
        exec: false,
        state: serde_json::to_value(state.to_oci(Status::Creating)).ctx(|| "encode state")?,
        timing: crate::timing::enabled(),
    };
    let mut parent = CreateParent {
        store: &st,
        state,
        spec: &spec,
        record_pid: handshake.is_none() || observed_while_creating(&spec),
    };
    crate::timing::lap("state");
    let launched = launch::launch(
        Launch {
            cfg,
            cgroup: cg_box.as_deref(),
            pass_fds,
        },
        &mut parent,
    );
    guard.intel_rdt = parent.state.intel_rdt.clone();
    let pid = launched.map_err(super::start_failed)?;
    guard.pid = pid;
    log::debug!("init process {pid} ready");
    if let Some(sock) = &pidfd_sock {
        crate::process::pidfd::send(sock, pid, crate::process::pidfd::INIT_TAG)?;
    }
    drop(fifo);
    drop(console);
    let mut state = parent.state;
    state.pid = pid;
    state.creating = false;
    st.write_json(id, store::STATE_FILE, &state)?;
    log::debug!("state written: container {id} created");
    if let Some(p) = &o.pid_file {
        store::write_pid_file(p, pid)?;
    }
    guard.armed = false;
    crate::timing::lap("record");
    let created = handshake.map(|h| Created {
        pid,
        handshake: h,
        state,
        spec,
    });
    Ok((pid, created))
}

/// A terminal needs somewhere to go: a console socket, or `run` in the
/// foreground; a console socket without a terminal is a caller's mistake.
fn check_terminal(spec: &Spec, o: &CreateOpts) -> Result<()> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && o.console_socket.is_none() && !o.foreground {
        bail!("cannot allocate tty if skiff will detach without setting console socket");
    }
    if !terminal && o.console_socket.is_some() {
        bail!("cannot use console socket if skiff will not detach or allocate tty");
    }
    Ok(())
}

/// The create/start handshake fifo in the state dir, opened read-write for
/// init (a fifo open for reading and writing never blocks) and shrunk to one
/// page: init's one byte then fills it, so init learns that `start` has read
/// the byte by the fifo becoming writable again. init never reopens the fifo
/// through a path or /proc, and holds no procfs handle while it waits.
fn make_exec_fifo(dir: &Path) -> Result<OwnedFd> {
    let fifo_path = dir.join(store::FIFO_FILE);
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .ctx(|| format!("mkfifo {}", fifo_path.display()))?;
    // Exact mode despite our umask: runc's 0622 (init itself never reopens it;
    // it gets the fd from us).
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .ctx(|| format!("chmod {}", fifo_path.display()))?;
    let fd = nix::fcntl::open(
        &fifo_path,
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {}", fifo_path.display()))?;
    // The smallest pipe the kernel makes: one buffer, full after one write.
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096))
        .ctx(|| format!("fcntl F_SETPIPE_SZ {}", fifo_path.display()))?;
    Ok(fd)
}

/// `run`'s handshake: a pipe with the exec fifo's one-page trick (see
/// make_exec_fifo); init gets the write end, we keep the read end. No file
/// in the state dir, and if we die init's wait ends (EPIPE) instead of
/// waiting for a `start` that will never come.
fn make_handshake_pipe() -> Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .ctx(|| "pipe for the start handshake")?;
    nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096))
        .ctx(|| "fcntl F_SETPIPE_SZ on the start handshake pipe")?;
    Ok((r, w))
}

/// The state of a container being created (no init PID yet).
pub(super) fn new_state(
    g: &Globals,
    id: &str,
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    cgroup_path: Option<String>,
) -> State {
    State {
        id: id.to_string(),
        pid: 0,
        init_start_time: 0,
        bundle: bundle.to_path_buf(),
        rootfs: rootfs.to_path_buf(),
        created: crate::logging::rfc3339_now(),
        // runc's `state` reports an owner for rootless containers only.
        owner: String::new(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup_path: cgroup_path.unwrap_or_default(),
        systemd_cgroup: g.systemd_cgroup,
        creating: true,
        intel_rdt: None,
    }
}

/// Release init: read the byte it writes into the exec fifo once we open it.
pub fn start(g: &Globals, id: &str) -> Result<()> {
    let mut c = Container::load(g, id)?;
    let _lock = c.store.lock(id)?;
    c.refresh();
    match c.status {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running => bail!("cannot start an already running container"),
        s => bail!("cannot start a container in the {s} state"),
    }
    let fifo_path = c.store.dir(id).join(store::FIFO_FILE);
    log::debug!("starting container {id}: init process {}", c.state.pid);
    read_fifo(&fifo_path, c.state.pid, c.state.init_start_time)?;
    let _ = std::fs::remove_file(&fifo_path);
    crate::timing::lap("start");
    let spec: Spec = c.store.read_json(id, store::CONFIG_FILE)?;
    if hooks::of_kind(spec.hooks().as_ref(), hooks::Kind::Poststart).is_empty() {
        return Ok(());
    }
    c.refresh();
    poststart(&spec, &c.state)
}

/// `run`'s start: release init through the pipe of `create_for_run`, with
/// the state and config create had in hand.
pub fn start_created(g: &Globals, id: &str, c: Created) -> Result<()> {
    let _lock = g.store().lock(id)?;
    log::debug!("starting container {id}: init process {}", c.pid);
    await_release(&c.handshake, c.pid, c.state.init_start_time)?;
    crate::timing::lap("start");
    poststart(&c.spec, &c.state)
}

/// runtime-spec 1.3: a failing poststart hook fails start; the container is
/// stopped so the caller is not left with a half-started one.
fn poststart(spec: &Spec, state: &State) -> Result<()> {
    let ps = hooks::of_kind(spec.hooks().as_ref(), hooks::Kind::Poststart);
    if ps.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(&state.to_oci(Status::Running)).ctx(|| "encode state")?;
    if let Err(e) = hooks::run_all(&ps, hooks::Kind::Poststart, &json) {
        let _ = kill(Pid::from_raw(state.pid), Signal::SIGKILL);
        return Err(e);
    }
    crate::timing::lap("poststart");
    Ok(())
}

fn read_fifo(path: &Path, pid: i32, start_time: u64) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(path)
        .ctx(|| format!("open exec fifo {}", path.display()))?;
    await_release(&f, pid, start_time)
}

/// Read init's byte from the (non-blocking) exec fifo or handshake pipe,
/// then wait for EOF.
fn await_release(f: &impl std::os::fd::AsFd, pid: i32, start_time: u64) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    // Phase 1: init's one byte (it is released); phase 2: EOF, when execve
    // closes init's end (the user process runs; poststart may follow).
    let mut released = false;
    loop {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(100u16)).ctx(|| "poll exec fifo")?;
        if n > 0 {
            let mut b = [0u8; 1];
            match nix::unistd::read(f.as_fd(), &mut b) {
                Ok(1) => released = true,
                Ok(_) if released => return Ok(()),
                Ok(_) => bail!("cannot start container: init exited before start"),
                Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => bail!("read exec fifo: {e}"),
            }
            // Progress: init is there (a gone init shows as EOF or, with
            // the fifo held open by someone else, as the timeout below).
            continue;
        }
        match proc_start_time(pid) {
            Some((t, false)) if t == start_time => {}
            // Released, then gone: the process ran (and already exited).
            _ if released => return Ok(()),
            _ => bail!("cannot start container: init process {pid} is gone"),
        }
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

pub(super) fn kill_all_in(cg: &dyn Manager, sig: Signal) {
    // An empty cgroup (the common case on delete) needs no freezer round trip.
    if cg.pids().map_or(true, |p| p.is_empty()) {
        return;
    }
    if sig == Signal::SIGKILL && cg.kill_all().unwrap_or(false) {
        return;
    }
    // Freeze first so no process forks a child we would miss.
    let froze = cg.freeze(FreezerState::Frozen).is_ok();
    if let Ok(pids) = cg.pids() {
        for p in pids {
            let _ = kill(Pid::from_raw(p), sig);
        }
    }
    if froze {
        let _ = cg.freeze(FreezerState::Thawed);
    }
}

pub fn kill_container(g: &Globals, id: &str, sig: i32, all: bool) -> Result<()> {
    let c = Container::load(g, id)?;
    if all {
        if let Some(cg) = c.cgroup() {
            log::debug!("kill --all: signal {sig} to every process in {}", cg.path());
            if sig == libc::SIGKILL && cg.kill_all()? {
                return Ok(());
            }
            let frozen_before = c.status == Status::Paused;
            let _ = cg.freeze(FreezerState::Frozen);
            let pids = cg.pids().unwrap_or_default();
            for p in &pids {
                let _ = signal_pid(*p, sig);
            }
            // A frozen v1 task only dies once thawed: SIGKILL thaws (as runc).
            if !frozen_before || sig == libc::SIGKILL {
                let _ = cg.freeze(FreezerState::Thawed);
            }
            return Ok(());
        }
        if c.status == Status::Stopped {
            return Ok(());
        }
    }
    if sig == libc::SIGKILL && kill_shared_pid_ns(&c)? {
        log::debug!("kill: SIGKILL to every process in the cgroup (no PID namespace of its own)");
        return Ok(());
    }
    log::debug!("kill: signal {sig} to init process {}", c.state.pid);
    match c.status {
        Status::Stopped => bail!("container not running"),
        _ => {
            signal_pid(c.state.pid, sig).map_err(|e| match e {
                nix::errno::Errno::ESRCH => Error::new("container not running"),
                e => Error::new(format!("kill {} with signal {sig}: {e}", c.state.pid)),
            })?;
            if c.status == Status::Paused && sig == libc::SIGKILL {
                if let Some(cg) = c.cgroup() {
                    let _ = cg.freeze(FreezerState::Thawed);
                }
            }
            Ok(())
        }
    }
}

/// runc 1.2+: SIGKILL to a container without a PID namespace of its own
/// kills every process in its cgroup, since killing init leaves the rest
/// running (in a private PID namespace the kernel does that itself). runc
/// 1.1.5 signalled init only. False when this does not apply.
fn kill_shared_pid_ns(c: &Container) -> Result<bool> {
    let spec = c.store.read_json::<Spec>(c.id(), store::CONFIG_FILE).ok();
    if spec.as_ref().is_none_or(has_own_pid_ns) {
        return Ok(false);
    }
    let Some(cg) = c.cgroup() else {
        return Ok(false);
    };
    let empty = cg.pids().map_or(true, |p| p.is_empty());
    if empty && c.status == Status::Stopped {
        bail!("container not running");
    }
    kill_all_in(cg.as_ref(), Signal::SIGKILL);
    // A frozen v1 task only dies once thawed (kill_all_in thaws only what it froze).
    let _ = cg.freeze(FreezerState::Thawed);
    Ok(true)
}

fn signal_pid(pid: i32, sig: i32) -> std::result::Result<(), nix::errno::Errno> {
    // Raw numbers: real-time signals have no nix::Signal variant.
    // SAFETY-free: nix::sys::signal::kill needs a Signal, so use libc via Errno::result.
    nix::errno::Errno::result(crate::sys::kill_raw(pid, sig)).map(drop)
}

/// Wait until `pid` (with the recorded start time) is gone.
fn wait_gone(pid: i32, start: u64, max: Duration) -> bool {
    let end = Instant::now() + max;
    let mut nap = Duration::from_micros(100);
    loop {
        match proc_start_time(pid) {
            Some((t, false)) if t == start => {}
            _ => return true,
        }
        if Instant::now() >= end {
            return false;
        }
        // Reap it if it is our child (`run` is its parent).
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

pub fn delete(g: &Globals, id: &str, force: bool) -> Result<()> {
    store::validate_id(id)?;
    let st = g.store();
    // Lock first, then read the state once: what a `create` still running
    // left counts, and a `run` deleting after its process exited does not pay
    // for a second read of state.json and a second probe of init and the fifo.
    let lock = match st.lock(id) {
        Ok(l) => l,
        Err(_) if force && !st.dir(id).exists() => return Ok(()),
        Err(e) => return Err(e),
    };
    let c = match Container::load(g, id) {
        Ok(c) => c,
        // Removed by a racing delete while we waited for the lock.
        Err(_) if !st.dir(id).exists() => {
            if force {
                return Ok(());
            }
            bail!("container {id:?} does not exist");
        }
        // Unreadable state: find what the container left, or refuse. That
        // takes the lock itself (flock is per open file: ours would block it).
        Err(e) if force => {
            drop(lock);
            return super::orphan::delete_unreadable(g, id, &e);
        }
        Err(e) => return Err(e),
    };
    let _lock = lock;
    // Whether killing init is enough, and the cgroup may hold others' processes.
    // The frozen config, read once: it says whether the container has its own
    // PID namespace and which poststop hooks to run.
    let spec = c.store.read_json::<Spec>(id, store::CONFIG_FILE).ok();
    let own_ns = spec.as_ref().is_some_and(has_own_pid_ns) && c.state.pid > 0;
    match c.status {
        Status::Stopped => {}
        Status::Created | Status::Creating => stop(&c, own_ns)?,
        Status::Running | Status::Paused if force => stop(&c, own_ns)?,
        s => bail!("cannot delete container {id} that is not stopped: {s}"),
    }
    log::debug!("delete: removing the cgroup and state of container {id}");
    destroy(&c, own_ns, spec.as_ref())
}

/// Whether the container has a PID namespace of its own: then killing its init
/// kills everything in it, and its cgroup may hold processes that are not its
/// own (a cgroupsPath shared with other containers), which we must not touch.
pub(super) fn has_own_pid_ns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .is_some_and(|nss| {
            nss.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid
                    && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty())
            })
        })
}

/// SIGKILL the container (its init, or with no PID namespace of its own every
/// process in its cgroup, as runc does) and wait for init to go.
fn stop(c: &Container, own_ns: bool) -> Result<()> {
    let cg = c.cgroup();
    if let (Some(cg), false) = (&cg, own_ns) {
        kill_all_in(cg.as_ref(), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(c.state.pid), Signal::SIGKILL);
    // A frozen process dies only once thawed.
    if let Some(cg) = &cg {
        let _ = cg.freeze(FreezerState::Thawed);
    }
    if !wait_gone(
        c.state.pid,
        c.state.init_start_time,
        Duration::from_secs(10),
    ) {
        bail!(
            "container {}: init {} did not exit after SIGKILL",
            c.id(),
            c.state.pid
        );
    }
    Ok(())
}

/// Poststop hooks, cgroup removal, state removal.
fn destroy(c: &Container, own_ns: bool, spec: Option<&Spec>) -> Result<()> {
    if let Some(cg) = c.cgroup() {
        release_cgroup(cg.as_ref(), own_ns)?;
    }
    if let Some(a) = &c.state.intel_rdt {
        crate::intelrdt::destroy(a)?;
    }
    remove_state(c, spec)
}

/// The cgroup of a container whose init is gone (or was just killed), for
/// `delete` and a failed `create` alike. With a PID namespace of its own the
/// kernel kills the rest of the namespace once init is gone; what is still in
/// the cgroup after that belongs to someone else (a shared cgroupsPath), so
/// the cgroup is left to its other users. Without one, every process in the
/// cgroup is the container's (as runc has it) and is killed.
pub(super) fn release_cgroup(cg: &dyn Manager, own_ns: bool) -> Result<()> {
    if own_ns {
        if !drained(cg, Duration::from_secs(1)) {
            log::warn!(
                "cgroup {} still has other processes: left in place",
                cg.path()
            );
            return Ok(());
        }
    } else {
        kill_all_in(cg, Signal::SIGKILL);
    }
    cg.destroy()
}

/// Poststop hooks, then the state directory.
fn remove_state(c: &Container, spec: Option<&Spec>) -> Result<()> {
    if let Some(spec) = spec {
        run_poststop_hooks(c, spec);
    }
    c.store.remove(c.id())
}

/// Poststop hooks: a failing one only warns, and the others still run.
fn run_poststop_hooks(c: &Container, spec: &Spec) {
    let ps = hooks::of_kind(spec.hooks().as_ref(), hooks::Kind::Poststop);
    if ps.is_empty() {
        return;
    }
    let json = serde_json::to_string(&c.state.to_oci(Status::Stopped)).unwrap_or_default();
    for (i, h) in ps.iter().enumerate() {
        if let Err(e) = hooks::run_all(std::slice::from_ref(h), hooks::Kind::Poststop, &json) {
            log::warn!("{}", e.message().replacen("#0", &format!("#{i}"), 1));
        }
    }
}

/// Wait up to `max` for the cgroup to have no process left.
fn drained(cg: &dyn Manager, max: Duration) -> bool {
    let end = Instant::now() + max;
    loop {
        if cg.pids().map_or(true, |p| p.is_empty()) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
