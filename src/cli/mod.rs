//! The command line, spelled as runc spells it. One module per subcommand; each
//! parses its flags and calls one container operation.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod fast;
pub mod features;
pub mod goflags;
pub mod kill;
pub mod list;
pub mod out;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use crate::container::Globals;
use crate::error::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `--root` when not given (and no $XDG_RUNTIME_DIR applies).
pub const DEFAULT_ROOT: &str = "/run/skiff";

#[derive(Parser, Debug)]
#[command(
    name = "skiff",
    about = "skiff: an OCI container runtime (runc-compatible)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Log file (default stderr)
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd cgroup paths (slice:prefix:name)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Path to the criu binary used for checkpoint and restore (default: criu)
    #[arg(long, global = true)]
    pub criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    /// Whether `--root` was given (not the default): set from the matches.
    #[arg(skip)]
    pub root_given: bool,
}

// Each subcommand's flags are built only when it is the one used (or its
// help is asked for): building all eighteen costs every call ~0.1 ms of CPU,
// most of it copying clap's Arg builders (734 memcpy of 0.5-1 KiB per `run`).
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Cmd {
    /// Create a container
    Create(create::Args),
    /// Start a created container
    Start(start::Args),
    /// Create and start a container
    Run(run::Args),
    /// Output the state of a container
    State(state::Args),
    /// Send a signal to the container's init process
    Kill(kill::Args),
    /// Delete a container
    Delete(delete::Args),
    /// List containers
    List(list::Args),
    /// Execute a new process inside a container
    Exec(exec::Args),
    /// List processes running inside a container
    Ps(ps::Args),
    /// Suspend all processes of a container
    Pause(pause::Args),
    /// Resume all processes of a paused container
    Resume(pause::Args),
    /// Update container resource constraints
    Update(update::Args),
    /// Display container events and statistics
    Events(events::Args),
    /// Show the enabled features
    Features(features::Args),
    /// Create a new specification file
    Spec(spec::Args),
    /// Checkpoint a running container (CRIU)
    Checkpoint(checkpoint::Args),
    /// Restore a container from a previous checkpoint (CRIU)
    Restore(restore::Args),
    #[command(hide = true)]
    Init,
}

impl Cli {
    pub fn globals(&self) -> Result<Globals> {
        let root = match crate::rootless::default_root() {
            Some(xdg) if !self.root_given => xdg,
            _ => self.root.clone(),
        };
        Ok(Globals {
            root,
            systemd_cgroup: self.systemd_cgroup,
            rootless: crate::rootless::resolve(self.rootless.as_deref())?,
        })
    }
}

/// The command line as clap parses it (after Go-style flags are rewritten):
/// every command line that `fast::parse` does not take.
pub fn parse_with_clap(args: Vec<std::ffi::OsString>) -> std::result::Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let cmd = Cli::command();
    let args = goflags::normalize(args, &cmd);
    let matches = cmd.try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    cli.root_given = root_given(&matches);
    Ok(cli)
}

/// Whether `--root` came from the command line, before or after the command.
fn root_given(m: &clap::ArgMatches) -> bool {
    let given = |m: &clap::ArgMatches| {
        m.value_source("root") == Some(clap::parser::ValueSource::CommandLine)
    };
    given(m) || m.subcommand().is_some_and(|(_, sub)| given(sub))
}

pub fn version_text() -> String {
    format!(
        "skiff version {}\ncommit: {}\nspec: {}",
        env!("CARGO_PKG_VERSION"),
        option_env!("SKIFF_COMMIT")
            .filter(|c| !c.is_empty())
            .unwrap_or("unknown"),
        crate::container::state::OCI_VERSION
    )
}

/// Run the chosen command; the result is the process exit status.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let g = cli.globals()?;
    if let Some(c) = cli.criu.as_deref().filter(|c| !c.is_empty()) {
        crate::criu::swrk::set_binary(c);
    }
    let Some(cmd) = cli.cmd else {
        if cli.version {
            out::line(&version_text())?;
            return Ok(0);
        }
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return Ok(0);
    };
    match cmd {
        Cmd::Create(a) => create::run(&g, a),
        Cmd::Start(a) => start::run(&g, a),
        Cmd::Run(a) => run::run(&g, a),
        Cmd::State(a) => state::run(&g, a),
        Cmd::Kill(a) => kill::run(&g, a),
        Cmd::Delete(a) => delete::run(&g, a),
        Cmd::List(a) => list::run(&g, a, cli.root_given),
        Cmd::Exec(a) => exec::run(&g, a),
        Cmd::Ps(a) => ps::run(&g, a),
        Cmd::Pause(a) => pause::pause(&g, a),
        Cmd::Resume(a) => pause::resume(&g, a),
        Cmd::Update(a) => update::run(&g, a),
        Cmd::Events(a) => events::run(&g, a),
        Cmd::Features(a) => features::run(&g, a),
        // `spec --rootless` writes the rootless config only when asked, as
        // runc's; the resolved mode (auto) is about how we run.
        Cmd::Spec(a) => spec::run(a, matches!(cli.rootless.as_deref(), Some("true"))),
        Cmd::Checkpoint(a) => checkpoint::run(&g, a),
        Cmd::Restore(a) => restore::run(&g, a),
        Cmd::Init => crate::process::init::main(),
    }
}
