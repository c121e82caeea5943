use super::run;
use crate::container::{exec, Globals};
use crate::error::{Context, Result};
use crate::process::tty;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Current working directory in the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// Set environment variables (KEY=VALUE)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Path to a process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Detach from the process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process PID to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// AppArmor profile
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux process label
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Pass N additional fds
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Console socket for the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// AF_UNIX socket that receives a pidfd of the process (runc 1.2)
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run in this sub-cgroup (controller:path or path)
    #[arg(long)]
    pub cgroup: Vec<String>,
    pub id: String,
    /// Command and arguments (ignored with --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    let (mut process, spec) = match &a.process {
        Some(path) => (exec::process_from_file(path)?, None),
        None => {
            let spec = exec::container_spec(g, &a.id)?;
            let base = exec::container_process(&spec);
            (exec::process_from_flags(&base, &a.overrides())?, Some(spec))
        }
    };
    let opts = exec::ExecOpts {
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        cgroup: a.cgroup.clone(),
        own_console: false,
        pidfd_socket: a.pidfd_socket.clone(),
    };
    if a.detach {
        exec::exec(g, &a.id, process, spec, &opts)?;
        return Ok(0);
    }
    let set = run::forwarded_signals();
    set.thread_block().ctx(|| "block signals")?;
    let terminal = process.terminal().unwrap_or(false);
    let mut opts = opts;
    let console = match terminal && opts.console_socket.is_none() {
        true => Some(tty::ConsoleListener::new()?),
        false => None,
    };
    if let Some(c) = &console {
        opts.console_socket = Some(c.path().to_path_buf());
        opts.own_console = true;
        if process.console_size().is_none() {
            if let Some(ws) = tty::stdin_winsize() {
                let b = serde_json::json!({"height": ws.rows, "width": ws.cols});
                process.set_console_size(serde_json::from_value(b).ok());
            }
        }
    }
    let pid = exec::exec(g, &a.id, process, spec, &opts)?;
    match console {
        Some(c) => {
            let master = c.recv_master()?;
            drop(c);
            tty::proxy(master, pid, &set)
        }
        None => run::wait_forwarding(pid, &set),
    }
}

impl Args {
    fn overrides(&self) -> exec::Overrides {
        exec::Overrides {
            args: self.command.clone(),
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            tty: self.tty,
            user: self.user.clone(),
            additional_gids: self.additional_gids.clone(),
            caps: self.cap.clone(),
            no_new_privs: self.no_new_privs,
            apparmor: self.apparmor.clone(),
            process_label: self.process_label.clone(),
        }
    }
}
