use crate::container::{lifecycle, Globals};
use crate::error::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct CreateFlags {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container's init PID to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// AF_UNIX socket that receives a pidfd of the container's init (runc 1.2)
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N additional fds (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

impl CreateFlags {
    pub fn opts(&self, foreground: bool) -> lifecycle::CreateOpts {
        lifecycle::CreateOpts {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self
                .preserve_fds
                .saturating_add(crate::process::listen_fds::count()),
            foreground,
            own_console: false,
            pidfd_socket: self.pidfd_socket.clone(),
            pipe_handshake: false,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    lifecycle::create(g, &a.id, &a.flags.opts(false))?;
    Ok(0)
}
