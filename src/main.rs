//! skiff: an OCI container runtime, a drop-in replacement for runc.

mod alloc;
mod cgroups;
mod cli;
mod container;
mod criu;
mod error;
mod hooks;
mod intelrdt;
mod logging;
mod namespaces;
mod netdev;
mod process;
mod rootfs;
mod rootless;
mod security;
mod signal;
mod spec;
mod sys;
mod timing;

fn main() {
    // The start of `--debug`'s first timing step (one clock read, always).
    let t0 = std::time::Instant::now();
    alloc::fork_safe();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // init runs inside the container on every create: skip CLI parsing and logging.
    if args.get(1).is_some_and(|a| a == "init") {
        process::init::main();
    }
    let cli = match cli::fast::parse(&args) {
        Some(cli) => cli,
        None => match cli::parse_with_clap(args) {
            Ok(cli) => cli,
            Err(e) if e.use_stderr() => usage_error(e),
            Err(e) => {
                let _ = e.print();
                std::process::exit(0);
            }
        },
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
    if cli.debug {
        timing::log_from(t0);
    }
    // runc exits 255 when `exec` fails before the process could report a
    // status of its own, and says so.
    let is_exec = matches!(cli.cmd, Some(cli::Cmd::Exec(_)));
    let failed = failed_prefix(&cli.cmd);
    match cli::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) if is_exec => {
            logging::report_error(&format!("exec failed: {e}"), format, to_file);
            std::process::exit(255);
        }
        Err(e) => {
            let msg = match &failed {
                Some(p) => format!("{p}: {e}"),
                None => e.message().to_string(),
            };
            logging::report_error(&msg, format, to_file);
            std::process::exit(1);
        }
    }
}

/// runc (1.1 through 1.5) says `runc create failed: ...` and `runc run
/// failed: ...` for every error of those two commands after the argument
/// checks, and people and scripts look for that shape in what containerd and
/// Docker show them. The name is the one we were run as: `runc` when skiff is
/// installed in runc's place, else `skiff`.
fn failed_prefix(cmd: &Option<cli::Cmd>) -> Option<String> {
    let verb = match cmd {
        Some(cli::Cmd::Create(_)) => "create",
        Some(cli::Cmd::Run(_)) => "run",
        _ => return None,
    };
    let arg0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&arg0)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("skiff")
        .to_string();
    Some(format!("{name} {verb} failed"))
}

/// A command line clap refuses, worded as runc's CLI library does: the
/// error as a `level=error` line on stderr (an unknown command is "No help
/// topic", exit 3), the usage hint on stdout, exit 1.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::InvalidSubcommand {
        if let Some(ContextValue::String(name)) = e.get(ContextKind::InvalidSubcommand) {
            // runc's message ends in a newline it then quotes as \n.
            let msg = format!("No help topic for '{name}'\n");
            logging::report_error(&msg, logging::Format::Text, false);
            std::process::exit(3);
        }
    }
    let rendered = error::bounded(&e.render().to_string());
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    logging::report_error(first, logging::Format::Text, false);
    let rest: Vec<&str> = lines.collect();
    let _ = cli::out::line(rest.join("\n").trim());
    std::process::exit(1);
}
