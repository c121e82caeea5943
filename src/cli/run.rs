use super::create::CreateFlags;
use crate::container::{lifecycle, Globals};
use crate::error::{Context, Result};
use crate::process::tty;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    if a.detach {
        let created = lifecycle::create_for_run(g, &a.id, &a.flags.opts(false))?;
        if let Err(e) = lifecycle::start_created(g, &a.id, created) {
            let _ = lifecycle::delete(g, &a.id, true);
            return Err(e);
        }
        return Ok(0);
    }
    // Signals meant for the container arrive here; block them and forward them
    // from a sigwait loop (no handlers, no threads).
    let set = forwarded_signals();
    set.thread_block().ctx(|| "block signals")?;
    let mut opts = a.flags.opts(true);
    // A terminal with nobody else to take it: be the console socket ourselves
    // and proxy the pty to our own stdio.
    let console = match opts.console_socket.is_none() && wants_terminal(&opts.bundle) {
        true => Some(tty::ConsoleListener::new()?),
        false => None,
    };
    if let Some(c) = &console {
        opts.console_socket = Some(c.path().to_path_buf());
        opts.own_console = true;
    }
    let created = lifecycle::create_for_run(g, &a.id, &opts)?;
    let pid = created.pid;
    let master = match &console {
        Some(c) => match c.recv_master() {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = lifecycle::delete(g, &a.id, true);
                return Err(e);
            }
        },
        None => None,
    };
    drop(console);
    if let Err(e) = lifecycle::start_created(g, &a.id, created) {
        let _ = lifecycle::delete(g, &a.id, true);
        return Err(e);
    }
    let code = match master {
        Some(m) => tty::proxy(m, pid, &set)?,
        None => wait_forwarding(pid, &set)?,
    };
    // The container's own run time is not the runtime's.
    crate::timing::reset();
    if !a.keep {
        lifecycle::delete(g, &a.id, true)?;
        crate::timing::lap("delete");
    }
    Ok(code)
}

/// Every signal a foreground container process should get from us: all but
/// those that cannot be caught or mean that we ourselves crashed.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    set
}

/// process.terminal of the bundle's config.json (the full check happens in
/// create, or restore).
pub fn wants_terminal(bundle: &std::path::Path) -> bool {
    // Only process.terminal is read; serde skips the rest without building
    // it (create parses the whole file right after, with its errors).
    #[derive(serde::Deserialize)]
    struct Config {
        process: Option<Process>,
    }
    #[derive(serde::Deserialize)]
    struct Process {
        terminal: Option<bool>,
    }
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Config>(&b).ok())
        .and_then(|c| c.process?.terminal)
        .unwrap_or(false)
}

/// Reap children until the container process exits, forwarding other signals to it.
pub fn wait_forwarding(pid: i32, set: &SigSet) -> Result<i32> {
    loop {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => return Ok(c),
                Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => return Ok(128 + s as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let sig = crate::sys::sigwait_raw(set)?;
        if sig != libc::SIGCHLD {
            let _ = crate::sys::kill_raw(pid, sig);
        }
    }
}
