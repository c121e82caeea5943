//! runc's CLI library accepts Go-style single-dash long flags (`-bundle x`,
//! `-no-subreaper`), and callers such as go-runc send them. We rewrite those to
//! `--name` before clap sees them, but only up to the container ID: what follows
//! it in `exec ID cmd -flag` belongs to the container's command.

use clap::Command;
use std::collections::HashMap;
use std::ffi::OsString;

/// long flag name -> whether it takes a value, for the global flags and one subcommand.
fn long_flags(cmd: &Command) -> HashMap<String, bool> {
    let mut m = HashMap::new();
    for a in cmd.get_arguments() {
        if let Some(l) = a.get_long() {
            m.insert(l.to_string(), a.get_action().takes_values());
        }
        for al in a.get_all_aliases().unwrap_or_default() {
            m.insert(al.to_string(), a.get_action().takes_values());
        }
    }
    m
}

pub fn normalize(args: Vec<OsString>, root: &Command) -> Vec<OsString> {
    // Only a single-dash word of two or more characters can be rewritten:
    // without one, the flags need not be looked at (nor a subcommand built).
    let go_style = |a: &OsString| {
        a.to_str()
            .and_then(|s| s.strip_prefix('-'))
            .is_some_and(|r| r.len() > 1 && !r.starts_with('-'))
    };
    if !args.iter().skip(1).any(go_style) {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    let mut flags = long_flags(root);
    let mut sub: Option<String> = None;
    let mut expect_value = false;
    let mut done = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || done {
            out.push(a);
            continue;
        }
        let Some(s) = a.to_str().map(str::to_string) else {
            out.push(a);
            continue;
        };
        if expect_value {
            expect_value = false;
            out.push(a);
            continue;
        }
        if s == "--" {
            done = true;
            out.push(a);
            continue;
        }
        if let Some(rest) = s.strip_prefix('-') {
            let (name, has_eq) = match rest.split_once('=') {
                Some((n, _)) => (n, true),
                None => (rest, false),
            };
            let name = name.trim_start_matches('-');
            if let Some(takes) = flags.get(name) {
                expect_value = *takes && !has_eq;
                if !s.starts_with("--") && name.len() > 1 {
                    out.push(OsString::from(format!("-{s}")));
                    continue;
                }
            }
            out.push(a);
            continue;
        }
        // A positional: the subcommand first, then the container ID.
        if sub.is_none() {
            if let Some(sc) = root.find_subcommand(&s) {
                // Subcommands are deferred (cli::Cmd): build a copy of this
                // one to see its flags; clap builds its own when it parses.
                let mut sc = sc.clone();
                sc.build();
                flags.extend(long_flags(&sc));
                sub = Some(s.clone());
            }
        } else if matches!(sub.as_deref(), Some("exec") | Some("ps") | Some("kill")) {
            done = true;
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn norm(v: &[&str]) -> Vec<String> {
        let args = v.iter().map(OsString::from).collect();
        normalize(args, &crate::cli::Cli::command())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double() {
        assert_eq!(
            norm(&[
                "skiff",
                "-root",
                "/r",
                "create",
                "-bundle",
                "/b",
                "-pid-file=/p",
                "c1"
            ]),
            [
                "skiff",
                "--root",
                "/r",
                "create",
                "--bundle",
                "/b",
                "--pid-file=/p",
                "c1"
            ]
        );
    }

    #[test]
    fn short_flags_and_container_commands_untouched() {
        assert_eq!(
            norm(&["skiff", "exec", "-t", "c1", "foo", "-user", "x", "-env"]),
            ["skiff", "exec", "-t", "c1", "foo", "-user", "x", "-env"]
        );
        assert_eq!(
            norm(&["skiff", "kill", "c1", "-9"]),
            ["skiff", "kill", "c1", "-9"]
        );
    }
}
