//! The process half of init, shared by create and exec: rlimits, oom score,
//! cwd, user, capabilities, no_new_privs, seccomp, fds, then the start handshake
//! and execve.

use super::init::{announce_ready, cstrings, env_of, find_executable, wait_for_start, InitConfig};
use super::sync::{Channel, FromInit};
use crate::bail;
use crate::error::{Context, Result};
use crate::hooks;
use crate::security::{capabilities, lsm, seccomp, task};
use crate::sys;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};
use std::os::fd::AsRawFd;
use std::path::Path;

// The cast is needed on glibc (its RLIMIT_* are u32) and a no-op on musl.
#[allow(clippy::unnecessary_cast)]
fn rlimit_number(t: PosixRlimitType) -> i32 {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as i32
}

/// HOME from the container's /etc/passwd when the config does not set it (or sets it empty).
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".to_string())
}

fn set_user(process: &Process) -> Result<()> {
    let u = process.user();
    let gids: Vec<Gid> = u
        .additional_gids()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(Gid::from_raw)
        .collect();
    // setgroups is denied in a user namespace whose gid_map was written with
    // setgroups=deny; then there is nothing to drop anyway.
    match nix::unistd::setgroups(&gids) {
        Ok(()) | Err(nix::errno::Errno::EPERM) if gids.is_empty() => {}
        Ok(()) => {}
        Err(e) => bail!("setgroups {gids:?}: {e}"),
    }
    let g = Gid::from_raw(u.gid());
    nix::unistd::setresgid(g, g, g).ctx(|| format!("setresgid {}", u.gid()))?;
    let uid = Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setresuid {}", u.uid()))?;
    Ok(())
}

fn set_no_new_privs() -> Result<()> {
    nix::sys::prctl::set_no_new_privs().ctx(|| "prctl(PR_SET_NO_NEW_PRIVS)")
}

pub fn process(ch: &Channel, cfg: &InitConfig, process: &Process) -> Result<super::init::Never> {
    let spec = &cfg.spec;
    let linux = spec.linux().clone().unwrap_or_default();
    sys::reset_signal_state()?;
    if process.terminal().unwrap_or(false) {
        super::tty::setup_console(cfg, process)?;
    }
    super::tty::fix_stdio_owner(process.user().uid())?;
    set_limits(process)?;
    let mut env = env_of(process);
    // runc fills HOME in from the user's passwd entry when it is unset or empty.
    let home = format!("HOME={}", home_of(process.user().uid()));
    match env.iter_mut().find(|e| e.starts_with("HOME=")) {
        Some(h) if h == "HOME=" => *h = home,
        Some(_) => {}
        None => env.push(home),
    }
    enter_cwd(process, !cfg.exec)?;
    apply_task_settings(cfg, process, &linux)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // Compiled now, so a bad profile fails `create` with a message; loaded as
    // late as possible below. Kept alive until execve: freeing it after the
    // load would make syscalls under the filter.
    crate::timing::lap("process");
    let filter = linux.seccomp().as_ref().map(seccomp::build).transpose()?;
    crate::timing::lap("seccomp");
    // Nothing of ours past the preserved fds may reach the process
    // (CVE-2024-21626): after libseccomp has opened what it needs to compile,
    // before any filter is loaded that could refuse close_range.
    sys::cloexec_from(3 + cfg.preserve_fds)?;
    let mut loaded = false;
    // No `capabilities` at all means none, as in runc: every set empty.
    let caps = capabilities::plan_here(
        &process
            .capabilities()
            .clone()
            .unwrap_or_else(capabilities::empty),
    );
    capabilities::drop_bounding(&caps)?;
    capabilities::keep_caps_across_setuid()?;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
    // capability step may drop: load it first then (runc's order).
    if let Some(f) = filter.as_ref().filter(|_| !nnp) {
        send_notify_fd(ch, f.load()?)?;
        loaded = true;
    }
    set_user(process)?;
    if let Some(umask) = process.user().umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    } else {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    }
    capabilities::apply(&caps)?;
    if nnp {
        set_no_new_privs()?;
    }
    let args = process.args().clone().unwrap_or_default();
    let exe = find_executable(&args[0], &env)?;
    let argv = cstrings(&args, "argument")?;
    let envp = cstrings(&env, "environment variable")?;
    let exe_c = cstrings(&[exe.display().to_string()], "executable")?;
    // A notify filter's fd must reach the listener before `create` returns.
    if let Some(f) = filter.as_ref().filter(|f| !loaded && f.uses_notify()) {
        send_notify_fd(ch, f.load()?)?;
        loaded = true;
    }
    let fifo = match (cfg.exec, cfg.fifo_fd) {
        (false, Some(fd)) => Some(sys::owned_fd(fd)),
        (false, None) => bail!("init: no exec fifo was passed"),
        (true, _) => None,
    };
    crate::timing::lap("credentials");
    super::init::send_timings(ch)?;
    if let Some(f) = &fifo {
        announce_ready(f)?;
    }
    ch.send(&FromInit::Ready)?;
    if let Some(fifo) = fifo {
        wait_for_start(&fifo)?;
        // From here on nobody reads the sync channel: failures go to stderr.
        super::init::mark_started();
        // Held (CLOEXEC) until execve: its closing tells `start` we exec'd.
        std::mem::forget(fifo);
        let sc = hooks::of_kind(spec.hooks().as_ref(), hooks::Kind::StartContainer);
        if !sc.is_empty() {
            let mut st = cfg.state.clone();
            st["pid"] = serde_json::json!(std::process::id());
            st["status"] = serde_json::json!("created");
            hooks::run_all_with_env(&sc, hooks::Kind::StartContainer, &st.to_string(), &env)?;
        }
    }
    // As late as possible: only execve follows, so the profile need not allow
    // anything init does (the exec fifo, startContainer hooks).
    if let Some(f) = filter.as_ref().filter(|_| !loaded) {
        f.load()?;
    }
    let e = nix::unistd::execve(&exe_c[0], &argv, &envp).unwrap_err();
    bail!("exec {}: {e}", Path::new(&exe).display())
}

/// rlimits, while we still may raise them.
fn set_limits(process: &Process) -> Result<()> {
    for r in process.rlimits().clone().unwrap_or_default() {
        sys::setrlimit(rlimit_number(r.typ()), r.soft(), r.hard()).ctx(|| {
            format!(
                "setrlimit {:?} soft={} hard={}",
                r.typ(),
                r.soft(),
                r.hard()
            )
        })?;
    }
    Ok(())
}

/// oom_score_adj, written by stage 1 before it joins or creates any namespace:
/// init is non-dumpable, so once it is root of a user namespace its own
/// /proc/self files are no longer its to write (runc writes it before
/// entering, too). The value is inherited by stage 2 and across execve.
pub fn set_oom_score_adj(process: Option<&Process>) -> Result<()> {
    if let Some(adj) = process.and_then(|p| p.oom_score_adj()) {
        sys::procfs::write_self("oom_score_adj", adj.to_string().as_bytes())
            .ctx(|| format!("set oom_score_adj {adj}"))?;
    }
    Ok(())
}

/// chdir into process.cwd, checked to be inside the container's root.
/// chdir to process.cwd. For the container's first process a missing cwd is
/// created first (0755, as root, inside the pivoted root), as runc does; `exec`
/// never creates it.
fn enter_cwd(process: &Process, create: bool) -> Result<()> {
    let cwd = process.cwd();
    if create && std::fs::symlink_metadata(cwd).is_err() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(cwd)
            .ctx(|| format!("create cwd {}", cwd.display()))?;
    }
    // runc's words (1.1 through 1.5), errno as Go prints it: Docker and
    // people look for "chdir to cwd".
    if let Err(e) = nix::unistd::chdir(cwd) {
        bail!(
            "chdir to cwd ({:?}) set in config.json failed: {}",
            cwd,
            e.desc().to_lowercase()
        );
    }
    // CVE-2024-21626: a cwd reached through a leaked host fd shows up as an
    // unreachable path; refuse anything that is not inside our root.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        _ => bail!("cwd {} is outside the container root", cwd.display()),
    }
    Ok(())
}

/// Scheduler, I/O priority, CPU affinity, personality and LSM labels: settings
/// that need privileges the capability drop may take away.
fn apply_task_settings(
    cfg: &InitConfig,
    process: &Process,
    linux: &oci_spec::runtime::Linux,
) -> Result<()> {
    // Settings that need privileges the capability drop below may take away.
    if let Some(s) = process.scheduler() {
        task::set_scheduler(s)?;
    }
    if let Some(io) = process.io_priority() {
        task::set_io_priority(io)?;
    }
    if cfg.exec {
        task::set_final_affinity(process)?;
    } else {
        task::reset_affinity();
    }
    if let Some(p) = linux.personality() {
        task::set_personality(p)?;
    }
    if let Some(m) = linux.memory_policy() {
        crate::security::mempolicy::apply(m)?;
    }
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        lsm::apply_apparmor(p)?;
    }
    if let Some(l) = process.selinux_label().as_deref().filter(|p| !p.is_empty()) {
        lsm::apply_selinux_exec_label(l)?;
    }
    Ok(())
}

fn send_notify_fd(ch: &Channel, fd: Option<std::os::fd::OwnedFd>) -> Result<()> {
    if let Some(fd) = fd {
        ch.send_with_fd(&FromInit::SeccompFd, Some(fd.as_raw_fd()))?;
    }
    Ok(())
}
