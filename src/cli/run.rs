use super::create::CreateFlags;
use crate::container::{lifecycle, Globals};
use crate::error::{Context, Result};
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
        lifecycle::create(g, &a.id, &a.flags.opts(false))?;
        if let Err(e) = lifecycle::start(g, &a.id) {
            let _ = lifecycle::delete(g, &a.id, true);
            return Err(e);
        }
        return Ok(0);
    }
    // Signals meant for the container arrive here; block them and forward them
    // from a sigwait loop (no handlers, no threads).
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
    set.thread_block().ctx(|| "block signals")?;
    let pid = lifecycle::create(g, &a.id, &a.flags.opts(true))?;
    if let Err(e) = lifecycle::start(g, &a.id) {
        let _ = lifecycle::delete(g, &a.id, true);
        return Err(e);
    }
    let code = wait_forwarding(pid, &set)?;
    if !a.keep {
        lifecycle::delete(g, &a.id, true)?;
    }
    Ok(code)
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
        let sig = set.wait().ctx(|| "sigwait")?;
        if sig != Signal::SIGCHLD {
            let _ = crate::sys::kill_raw(pid, sig as i32);
        }
    }
}
