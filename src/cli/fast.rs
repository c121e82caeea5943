//! The command lines engines send on every container start, exec probe and
//! state poll, parsed without clap. Clap builds its command and each Arg at
//! every call and allocates as it parses: 0.1-0.2 ms of CPU and 30-60 page
//! faults per call on the bench host, paid by every `create`, `start`,
//! `exec`, `state`, `kill` and `delete` of every container.
//!
//! clap stays the reference. This parser takes only a plain subset:
//! - global flags before the command: `--root`, `--log`, `--log-format`,
//!   `--criu` (each with a value, as `--f V` or `--f=V`), `--debug`,
//!   `--systemd-cgroup`, and `--rootless=V`;
//! - the commands create, run, start, state, kill, delete and exec, with
//!   each of their flags in its long form or single-letter short form (no
//!   clusters such as `-dt`, no value glued to a short flag);
//! - values that are not empty and do not start with '-'; IDs likewise.
//!
//! Anything else returns None and goes through clap: `--help`, `--`, a
//! repeated single-value flag, a global flag after the command, a Go-style
//! `-flag`, a non-UTF-8 word, an unknown flag, a missing or extra word. A
//! unit test checks over a corpus of command lines that whatever this
//! parser takes, clap parses to the same `Cli`.

use super::{create, delete, exec, kill, run, start, state, Cli, Cmd, DEFAULT_ROOT};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A switch: no value.
    Bool,
    /// One value; given twice is clap's error.
    One,
    /// A value per occurrence, collected.
    Many,
}

/// A flag as this parser knows it.
struct Flag {
    long: &'static str,
    short: Option<char>,
    kind: Kind,
}

const fn flag(long: &'static str, short: Option<char>, kind: Kind) -> Flag {
    Flag { long, short, kind }
}

const GLOBAL: &[Flag] = &[
    flag("root", None, Kind::One),
    flag("log", None, Kind::One),
    flag("log-format", None, Kind::One),
    flag("criu", None, Kind::One),
    flag("debug", None, Kind::Bool),
    flag("systemd-cgroup", None, Kind::Bool),
    // `--rootless` alone means true, and takes a following word only as
    // clap decides: taken here in the `--rootless=V` form only.
    flag("rootless", None, Kind::One),
];

const CREATE: &[Flag] = &[
    flag("bundle", Some('b'), Kind::One),
    flag("pid-file", None, Kind::One),
    flag("console-socket", None, Kind::One),
    flag("pidfd-socket", None, Kind::One),
    flag("no-pivot", None, Kind::Bool),
    flag("no-new-keyring", None, Kind::Bool),
    flag("preserve-fds", None, Kind::One),
];

const RUN_ONLY: &[Flag] = &[
    flag("detach", Some('d'), Kind::Bool),
    flag("keep", None, Kind::Bool),
];

const DELETE: &[Flag] = &[flag("force", Some('f'), Kind::Bool)];

const KILL: &[Flag] = &[flag("all", Some('a'), Kind::Bool)];

const EXEC: &[Flag] = &[
    flag("cwd", None, Kind::One),
    flag("env", Some('e'), Kind::Many),
    flag("tty", Some('t'), Kind::Bool),
    flag("user", Some('u'), Kind::One),
    flag("additional-gids", Some('g'), Kind::Many),
    flag("process", Some('p'), Kind::One),
    flag("detach", Some('d'), Kind::Bool),
    flag("pid-file", None, Kind::One),
    flag("apparmor", None, Kind::One),
    flag("process-label", None, Kind::One),
    flag("no-new-privs", None, Kind::Bool),
    flag("cap", Some('c'), Kind::Many),
    flag("preserve-fds", None, Kind::One),
    flag("console-socket", None, Kind::One),
    flag("pidfd-socket", None, Kind::One),
    flag("ignore-paused", None, Kind::Bool),
    flag("cgroup", None, Kind::Many),
];

/// The flags and positional words of one command line section.
#[derive(Default)]
struct Scanned<'a> {
    /// (long name, value: None for a switch), in order.
    flags: Vec<(&'static str, Option<&'a str>)>,
    positional: Vec<&'a str>,
}

impl<'a> Scanned<'a> {
    fn switch(&self, long: &str) -> bool {
        self.flags.iter().any(|(l, _)| *l == long)
    }
    fn one(&self, long: &str) -> Option<String> {
        self.all(long).next().map(str::to_string)
    }
    fn path(&self, long: &str) -> Option<PathBuf> {
        self.all(long).next().map(PathBuf::from)
    }
    fn many(&self, long: &str) -> Vec<String> {
        self.all(long).map(str::to_string).collect()
    }
    fn all<'s>(&'s self, long: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.flags
            .iter()
            .filter(move |(l, _)| *l == long)
            .filter_map(|(_, v)| *v)
    }
}

/// A word that may be a value or an ID: clap would take it as one.
fn plain(w: &str) -> bool {
    !w.is_empty() && !w.starts_with('-')
}

/// Scan `words` against the flags of `groups`, taking up to
/// `max_positional` positional words: the next one ends the scan (the
/// command name after the globals; the ID of exec), and the index of the
/// first word not scanned is returned.
fn scan<'a>(
    words: &[&'a str],
    groups: &[&[Flag]],
    max_positional: usize,
) -> Option<(Scanned<'a>, usize)> {
    let find = |p: &dyn Fn(&Flag) -> bool| groups.iter().flat_map(|g| g.iter()).find(|f| p(f));
    let mut s = Scanned::default();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let (f, glued) = if let Some(long) = w.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            (find(&|f| f.long == name)?, value)
        } else if let Some(short) = w.strip_prefix('-') {
            let mut chars = short.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return None;
            };
            (find(&|f| f.short == Some(c))?, None)
        } else {
            if s.positional.len() == max_positional {
                return Some((s, i));
            }
            if w.is_empty() {
                return None;
            }
            s.positional.push(w);
            i += 1;
            continue;
        };
        // `--rootless` without `=` takes a following word only as clap decides.
        if f.long == "rootless" && glued.is_none() {
            return None;
        }
        let value = match (f.kind, glued) {
            (Kind::Bool, Some(_)) => return None,
            (Kind::Bool, None) => None,
            (_, Some(v)) => Some(v),
            (_, None) => {
                i += 1;
                Some(*words.get(i)?)
            }
        };
        if value.is_some_and(|v| !plain(v)) {
            return None;
        }
        if f.kind != Kind::Many && s.switch(f.long) {
            return None;
        }
        s.flags.push((f.long, value));
        i += 1;
    }
    Some((s, words.len()))
}

/// The `Cli` clap would make of `args`, for the plain command lines above;
/// None for anything else.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let words: Vec<&str> = args
        .get(1..)?
        .iter()
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let (globals, at) = scan(&words, &[GLOBAL], 0)?;
    let (&name, rest) = words.get(at..)?.split_first()?;
    let cmd = match name {
        "create" => {
            let (s, id) = with_id(rest, &[CREATE])?;
            Cmd::Create(create::Args {
                flags: create_flags(&s)?,
                id,
            })
        }
        "run" => {
            let (s, id) = with_id(rest, &[CREATE, RUN_ONLY])?;
            Cmd::Run(run::Args {
                flags: create_flags(&s)?,
                detach: s.switch("detach"),
                keep: s.switch("keep"),
                id,
            })
        }
        "start" => Cmd::Start(start::Args {
            id: with_id(rest, &[])?.1,
        }),
        "state" => Cmd::State(state::Args {
            id: with_id(rest, &[])?.1,
        }),
        "delete" => {
            let (s, id) = with_id(rest, &[DELETE])?;
            Cmd::Delete(delete::Args {
                force: s.switch("force"),
                id,
            })
        }
        "kill" => {
            let (s, end) = scan(rest, &[KILL], 2)?;
            let (id, signal) = match (end == rest.len(), s.positional.as_slice()) {
                (true, [id]) => (id, "SIGTERM"),
                (true, [id, signal]) => (id, *signal),
                _ => return None,
            };
            Cmd::Kill(kill::Args {
                all: s.switch("all"),
                id: id.to_string(),
                signal: signal.to_string(),
            })
        }
        "exec" => Cmd::Exec(exec_args(rest)?),
        _ => return None,
    };
    let format = globals.one("log-format");
    Some(Cli {
        root: globals
            .path("root")
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
        root_given: globals.switch("root"),
        log: globals.one("log"),
        log_format: format.unwrap_or_else(|| "text".to_string()),
        debug: globals.switch("debug"),
        systemd_cgroup: globals.switch("systemd-cgroup"),
        rootless: globals.one("rootless"),
        criu: globals.one("criu"),
        version: false,
        cmd: Some(cmd),
    })
}

/// The flags and the ID of a command that takes exactly one positional
/// word (the ID), anywhere among its flags.
fn with_id<'a>(rest: &[&'a str], groups: &[&[Flag]]) -> Option<(Scanned<'a>, String)> {
    let (s, end) = scan(rest, groups, 1)?;
    match s.positional.as_slice() {
        [id] if end == rest.len() => {
            let id = id.to_string();
            Some((s, id))
        }
        _ => None,
    }
}

fn create_flags(s: &Scanned) -> Option<create::CreateFlags> {
    Some(create::CreateFlags {
        bundle: s.path("bundle").unwrap_or_else(|| PathBuf::from(".")),
        pid_file: s.path("pid-file"),
        console_socket: s.path("console-socket"),
        pidfd_socket: s.path("pidfd-socket"),
        no_pivot: s.switch("no-pivot"),
        no_new_keyring: s.switch("no-new-keyring"),
        preserve_fds: number(s.one("preserve-fds"))?,
    })
}

/// A u32 as clap's value parser takes it (plain decimal digits here; other
/// spellings go to clap); absent: 0.
fn number(v: Option<String>) -> Option<u32> {
    match v {
        None => Some(0),
        Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => v.parse().ok(),
        Some(_) => None,
    }
}

/// exec: flags, the ID, then the command, all of whose words are the
/// container's (clap's trailing_var_arg). Flags after the ID, and a
/// flag-like first word of the command, go to clap.
fn exec_args(rest: &[&str]) -> Option<exec::Args> {
    let (s, at) = scan(rest, &[EXEC], 0)?;
    let (id, command) = rest.get(at..)?.split_first()?;
    if !plain(id) || command.first().is_some_and(|w| !plain(w)) {
        return None;
    }
    let gids = s
        .many("additional-gids")
        .into_iter()
        .map(|g| number(Some(g)))
        .collect::<Option<Vec<u32>>>()?;
    Some(exec::Args {
        cwd: s.one("cwd"),
        env: s.many("env"),
        tty: s.switch("tty"),
        user: s.one("user"),
        additional_gids: gids,
        process: s.path("process"),
        detach: s.switch("detach"),
        pid_file: s.path("pid-file"),
        apparmor: s.one("apparmor"),
        process_label: s.one("process-label"),
        no_new_privs: s.switch("no-new-privs"),
        cap: s.many("cap"),
        preserve_fds: number(s.one("preserve-fds"))?,
        console_socket: s.path("console-socket"),
        pidfd_socket: s.path("pidfd-socket"),
        ignore_paused: s.switch("ignore-paused"),
        cgroup: s.many("cgroup"),
        id: id.to_string(),
        command: command.iter().map(|w| w.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(line: &[&str]) -> Vec<OsString> {
        std::iter::once("skiff")
            .chain(line.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Whether the fast path takes `line`; where it does, clap must parse
    /// the same line to the same `Cli`.
    fn taken(line: &[&str]) -> bool {
        let Some(fast) = parse(&os(line)) else {
            return false;
        };
        let clap = super::super::parse_with_clap(os(line))
            .unwrap_or_else(|e| panic!("{line:?}: taken here, refused by clap: {e}"));
        assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{line:?}");
        true
    }

    const GLOBALS: &[&[&str]] = &[
        &[],
        &["--root", "/r"],
        &["--root=/r"],
        &["--log", "/l", "--log-format", "json"],
        &["--log=/l", "--log-format=json", "--debug"],
        &["--systemd-cgroup"],
        &["--rootless=false"],
        &["--criu", "/c"],
        &[
            "--debug",
            "--root",
            "/r",
            "--systemd-cgroup",
            "--rootless=auto",
        ],
    ];

    /// What containerd's shim, Docker, podman, CRI-O and people send.
    const TAKEN: &[&[&str]] = &[
        &["create", "--bundle", "/b", "--pid-file", "/p", "c1"],
        &["create", "c1", "--bundle=/b"],
        &["create", "c1"],
        &[
            "create",
            "-b",
            "/b",
            "c1",
            "--console-socket",
            "/s",
            "--no-pivot",
            "--no-new-keyring",
            "--preserve-fds",
            "3",
            "--pidfd-socket",
            "/f",
        ],
        &["run", "-d", "--bundle", "/b", "c1"],
        &["run", "--keep", "c1", "--detach", "--pid-file=/p"],
        &["run", "--bundle", "/b", "c1"],
        &["start", "c1"],
        &["state", "c1"],
        &["delete", "c1"],
        &["delete", "--force", "c1"],
        &["delete", "c1", "-f"],
        &["kill", "c1"],
        &["kill", "c1", "9"],
        &["kill", "--all", "c1", "KILL"],
        &["kill", "c1", "SIGKILL", "-a"],
        &["exec", "c1", "true"],
        &[
            "exec",
            "--detach",
            "--pid-file",
            "/p",
            "--process",
            "/j",
            "c1",
        ],
        &[
            "exec",
            "-t",
            "-e",
            "A=1",
            "--env",
            "B=2",
            "-u",
            "1:2",
            "--cwd",
            "/w",
            "-g",
            "5",
            "--additional-gids",
            "6",
            "c1",
            "sh",
            "-c",
            "echo --tty",
        ],
        &[
            "exec",
            "--cap",
            "CAP_X",
            "-c",
            "CAP_Y",
            "--no-new-privs",
            "--ignore-paused",
            "--cgroup",
            "a:b",
            "--cgroup=c",
            "--preserve-fds=2",
            "--console-socket",
            "/s",
            "--pidfd-socket",
            "/f",
            "--apparmor",
            "x",
            "--process-label",
            "y",
            "-p",
            "/j",
            "c1",
            "ls",
            "--",
            "-l",
        ],
    ];

    /// Lines clap refuses, reads in its own way, or answers with help.
    const REFUSED: &[&[&str]] = &[
        &["exec", "c1", "--tty", "sh"],
        &["exec", "c1", "-t"],
        &["exec", "--", "c1", "true"],
        &["exec", "-g", "x", "c1", "true"],
        &["kill", "c1", "-9"],
        &["run", "--bundle", "/b", "--bundle", "/c", "c1"],
        &["run", "-d", "-d", "c1"],
        &["run", "-dk", "c1"],
        &["create", "-b/b", "c1"],
        &["create", "--preserve-fds", "+3", "c1"],
        &["create", "--bundle", "-x", "c1"],
        &["create", "--bundle="],
        &["create", "c1", "c2"],
        &["create"],
        &["state"],
        &["state", "c1", "c2"],
        &["state", "--help"],
        &["--help"],
        &["-v"],
        &["--root", "/r", "state", "c1", "--debug"],
        &["-root", "/r", "state", "c1"],
        &["--rootless", "state", "c1"],
        &["--rootless", "false", "state", "c1"],
        &["--root=", "state", "c1"],
        &["delete", "c1", "--force=true"],
        &["list"],
        &["ps", "c1"],
        &[""],
        &["state", ""],
        &["run", "--", "c1"],
    ];

    #[test]
    fn engine_command_lines_are_taken_and_parse_as_clap_parses_them() {
        for g in GLOBALS {
            for line in TAKEN {
                let whole: Vec<&str> = g.iter().chain(line.iter()).copied().collect();
                assert!(taken(&whole), "not taken: {whole:?}");
            }
        }
    }

    #[test]
    fn other_command_lines_go_to_clap() {
        for line in REFUSED {
            assert!(!taken(line), "taken: {line:?}");
        }
        let bad = vec![OsString::from("skiff"), OsString::from("state"), {
            use std::os::unix::ffi::OsStringExt;
            OsString::from_vec(vec![0xff])
        }];
        assert!(parse(&bad).is_none());
    }

    /// Random lines from the words above: whatever the fast path takes,
    /// clap reads the same way (a fixed seed, so a failure reproduces).
    #[test]
    fn random_command_lines_taken_here_parse_as_clap_parses_them() {
        let mut pool: Vec<&str> = ["c1", "c2", "x", "9", "--", "-", "-x", "--bogus", "=", ""]
            .into_iter()
            .collect();
        for line in GLOBALS.iter().chain(TAKEN).chain(REFUSED) {
            pool.extend(line.iter().copied());
        }
        let commands = ["create", "run", "start", "state", "delete", "kill", "exec"];
        let mut seed: u64 = 0x5eed_5eed;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let mut count = 0;
        for _ in 0..4000 {
            let mut line: Vec<&str> = Vec::new();
            for _ in 0..next(3) {
                line.push(pool[next(pool.len())]);
            }
            line.push(commands[next(commands.len())]);
            for _ in 0..next(6) {
                line.push(pool[next(pool.len())]);
            }
            count += usize::from(taken(&line));
        }
        // The corpus must exercise the fast path, not only clap.
        assert!(count > 200, "only {count} of 4000 lines taken");
    }
}
