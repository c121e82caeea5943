use crate::container::{Container, Globals};
use crate::error::{Context, Result};
use std::os::unix::fs::MetadataExt;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn run(g: &Globals, a: Args, root_given: bool) -> Result<i32> {
    // A root that does not exist yet is an empty list only when it is the
    // default one (nothing created yet); a `--root` the caller named and that
    // is missing is an error (runc 1.2+; 1.1.5 created it and listed nothing).
    if root_given && !g.root.exists() {
        crate::bail!("open {}: no such file or directory", g.root.display());
    }
    let ids = g.store().list()?;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let states: Vec<_> = ids
        .iter()
        .filter_map(|id| Container::load(g, id).ok())
        .map(|c| {
            let mut s = c.state.to_oci(c.status);
            // runc's list shows who owns the state dir (`state` leaves it empty).
            if let Ok(m) = std::fs::metadata(g.store().dir(&s.id)) {
                s.owner = owner_name(&passwd, m.uid());
            }
            s
        })
        .collect();
    if a.quiet {
        for s in &states {
            super::out::line(&s.id)?;
        }
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => {
            // runc prints null for no containers (a nil Go slice).
            if states.is_empty() {
                super::out::line("null")?;
            } else {
                super::out::line(&serde_json::to_string(&states).ctx(|| "encode list")?)?;
            }
        }
        "table" => {
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.clone(),
                        s.created.clone(),
                        s.owner.clone(),
                    ]
                })
                .collect();
            super::out::raw(&table(
                &["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                &rows,
            ))?;
        }
        f => crate::bail!("invalid format option {f:?}: use table or json"),
    }
    Ok(0)
}

/// The user name for `uid` from /etc/passwd text, or `#<uid>` as runc shows
/// an unknown one. A small parser: the static binary has no NSS.
fn owner_name(passwd: &str, uid: u32) -> String {
    passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse::<u32>().ok()?;
            (id == uid && !name.is_empty()).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// runc's tabwriter layout: columns padded to the widest cell plus three.
fn table(head: &[&str; 6], rows: &[[String; 6]]) -> String {
    let mut out = String::new();
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<width$}", c, width = w[i] + 3));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(|s| s.as_str()).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_from_passwd() {
        let pw = "# comment\nroot:x:0:0:root:/root:/bin/bash\n\nbad line\n\
                  daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n:x:7:7::/:/bin/sh\n\
                  alice:x:1000:1000:Alice,,,:/home/alice:/bin/sh\n";
        assert_eq!(owner_name(pw, 0), "root");
        assert_eq!(owner_name(pw, 1), "daemon");
        assert_eq!(owner_name(pw, 1000), "alice");
        assert_eq!(owner_name(pw, 7), "#7", "empty name");
        assert_eq!(owner_name(pw, 4242), "#4242");
        assert_eq!(owner_name("", 0), "#0");
    }
}
