//! `checkpoint`: runc's flags (go-runc and podman send them with one dash too).

use crate::bail;
use crate::container::{checkpoint, Globals};
use crate::criu;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// The flags `checkpoint` and `restore` share, spelled as runc spells them.
#[derive(clap::Args, Debug, Clone)]
pub struct CriuFlags {
    /// Path for the criu image files (default: ./checkpoint)
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode", default_value = "")]
    pub manage_cgroups_mode: String,
    /// Create a namespace, but don't restore its properties (only "network")
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

#[derive(clap::Args, Debug)]
// A flag given twice is what it is once (runc's flag parser takes it so, and
// podman sends --leave-running twice with `checkpoint --leave-running`).
#[command(args_override_self = true)]
pub struct Args {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Path for previous criu image files in pre-dump (relative to --image-path)
    #[arg(long = "parent-path")]
    pub parent_path: Option<String>,
    /// Leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump the container's memory only, leaving it running
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// Skip in-flight tcp connections (runc 1.2+)
    #[arg(long = "tcp-skip-in-flight")]
    pub tcp_skip_in_flight: bool,
    /// Allow one to link unlinked files back when possible (runc 1.2+)
    #[arg(long = "link-remap")]
    pub link_remap: bool,
    /// CRIU writes \0 to this fd once lazy-pages is ready
    #[arg(long = "status-fd", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    pub id: String,
}

impl CriuFlags {
    /// The options both commands share; the image path made as runc makes it.
    pub fn opts(&self) -> Result<criu::Opts> {
        let image_path = match &self.image_path {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => std::env::current_dir()
                .map_err(|e| crate::error::Error::new(format!("current directory: {e}")))?
                .join("checkpoint"),
        };
        Ok(criu::Opts {
            image_path,
            work_path: self.work_path.clone().filter(|p| !p.as_os_str().is_empty()),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
            status_fd: -1,
            manage_cgroups_mode: criu::cg_mode(&self.manage_cgroups_mode)?,
            empty_ns: criu::empty_ns(&self.empty_ns)?,
            ..Default::default()
        })
    }
}

/// runc: --parent-path is relative to the image path and must be a directory there.
fn check_parent(image: &Path, parent: &str) -> Result<()> {
    if Path::new(parent).is_absolute() {
        bail!("--parent-path must be relative");
    }
    let real = image.join(parent);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("invalid --parent-path: {}: not a directory", real.display()),
        Err(e) => bail!("invalid --parent-path: {}: {e}", real.display()),
    }
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    let mut o = a.criu.opts()?;
    std::fs::create_dir_all(&o.image_path).map_err(|e| {
        crate::error::Error::new(format!("image path {}: {e}", o.image_path.display()))
    })?;
    if let Some(p) = a.parent_path.filter(|p| !p.is_empty()) {
        check_parent(&o.image_path, &p)?;
        o.parent_path = Some(p);
    }
    o.leave_running = a.leave_running;
    o.pre_dump = a.pre_dump;
    o.tcp_skip_in_flight = a.tcp_skip_in_flight;
    o.link_remap = a.link_remap;
    o.status_fd = a.status_fd;
    o.page_server = match a.page_server.filter(|s| !s.is_empty()) {
        Some(s) => Some(criu::page_server(&s)?),
        None => None,
    };
    checkpoint::checkpoint(g, &a.id, &o)?;
    Ok(0)
}
