use crate::container::Globals;
use crate::error::Result;
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
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run in this sub-cgroup (controller:path or path)
    #[arg(long)]
    pub cgroup: Vec<String>,
    pub id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(_g: &Globals, a: Args) -> Result<i32> {
    crate::bail!("exec into {}: not implemented yet", a.id)
}
