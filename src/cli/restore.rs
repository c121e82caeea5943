//! `restore`: runc's flags (go-runc sends `-no-subreaper` with one dash).

use super::checkpoint::CriuFlags;
use super::run::{forwarded_signals, wait_forwarding};
use crate::bail;
use crate::container::restore::{self, RestoreOpts};
use crate::container::{lifecycle, Globals};
use crate::error::{Context, Result};
use crate::process::tty;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
// A flag given twice is what it is once (runc's flag parser takes it so, and
// podman sends --leave-running twice with `checkpoint --leave-running`).
#[command(args_override_self = true)]
pub struct Args {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// AF_UNIX socket that receives the pty master of a terminal container
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the restored process's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Accepted as runc does: CRIU sets up the restored root itself
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// An LSM profile for the restored process, TYPE:NAME
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// An LSM mount context for the restore
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    let mut c = a.criu.opts()?;
    c.lsm_profile = a.lsm_profile.filter(|s| !s.is_empty());
    c.lsm_mount_context = a.lsm_mount_context.filter(|s| !s.is_empty());
    let mut o = RestoreOpts {
        bundle: a.bundle,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        detach: a.detach,
        no_pivot: a.no_pivot,
        criu: c,
    };
    let terminal = super::run::wants_terminal(&o.bundle);
    if terminal && o.console_socket.is_none() && o.detach {
        bail!("cannot allocate tty if skiff will detach without setting console socket");
    }
    if !terminal && o.console_socket.is_some() {
        bail!("cannot use console socket if skiff will not detach or allocate tty");
    }
    if o.detach {
        restore::restore(g, &a.id, &o)?;
        return Ok(0);
    }
    // In the foreground we wait for the restored process (our child: CRIU
    // restores it as our sibling's) and pass signals on, as `run` does.
    let set = forwarded_signals();
    set.thread_block().ctx(|| "block signals")?;
    if !a.no_subreaper {
        nix::sys::prctl::set_child_subreaper(true).ctx(|| "become a child subreaper")?;
    }
    let console = match terminal && o.console_socket.is_none() {
        true => Some(tty::ConsoleListener::new()?),
        false => None,
    };
    if let Some(l) = &console {
        o.console_socket = Some(l.path().to_path_buf());
    }
    let pid = restore::restore(g, &a.id, &o)?;
    let code = match console {
        Some(l) => match l.recv_master() {
            Ok(m) => {
                drop(l);
                tty::proxy(m, pid, &set)?
            }
            Err(e) => {
                let _ = lifecycle::delete(g, &a.id, true);
                return Err(e);
            }
        },
        None => wait_forwarding(pid, &set)?,
    };
    lifecycle::delete(g, &a.id, true)?;
    Ok(code)
}
