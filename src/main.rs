//! skiff: an OCI container runtime, a drop-in replacement for runc.

mod cgroups;
mod cli;
mod container;
mod error;
mod hooks;
mod logging;
mod namespaces;
mod process;
mod rootfs;
mod security;
mod signal;
mod spec;
mod sys;

use clap::{CommandFactory, FromArgMatches};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // init runs inside the container on every create: skip CLI parsing and logging.
    if args.get(1).is_some_and(|a| a == "init") {
        process::init::main();
    }
    let cmd = cli::Cli::command();
    let args = cli::goflags::normalize(args, &cmd);
    let matches = match cmd.try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) if e.use_stderr() => {
            // clap quotes the offending argument: bound it like our own errors.
            eprint!("{}", error::bounded(&e.render().to_string()));
            std::process::exit(1);
        }
        Err(e) => {
            let _ = e.print();
            std::process::exit(0);
        }
    };
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{}", error::bounded(&e.render().to_string()));
            std::process::exit(1);
        }
    };
    let format = match cli.log_format.as_str() {
        "json" => logging::Format::Json,
        "text" => logging::Format::Text,
        other => {
            eprintln!(
                "{}",
                error::bounded(&format!("invalid log-format {other:?}: use text or json"))
            );
            std::process::exit(1);
        }
    };
    let to_file = cli.log.as_deref().is_some_and(|l| !l.is_empty());
    if let Err(e) = logging::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("{}", error::bounded(&e));
        std::process::exit(1);
    }
    match cli::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            if to_file {
                log::error!("{e}");
            }
            eprintln!("{}", error::bounded(e.message()));
            std::process::exit(1);
        }
    }
}
