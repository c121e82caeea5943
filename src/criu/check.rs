//! Why CRIU cannot work on this host, in CRIU's own words: when a request
//! fails, `criu check` tells whether the kernel and CRIU get along at all
//! (criu 3.17 on kernel 6.18: "vdso: Unexpected rt vDSO area bounds").

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `criu check` may take before we stop waiting (it takes well
/// under a second where it works).
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// None when `criu check` passes (the failure was about this container), or
/// a sentence saying CRIU cannot work here and quoting its errors.
pub fn host_problem() -> Option<String> {
    let mut child = match Command::new(super::swrk::binary())
        .arg("check")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Some(format!(
                "CRIU cannot work on this host: cannot run `{} check`: {e} (is CRIU installed and in PATH?)",
                super::swrk::binary()
            ))
        }
    };
    let end = Instant::now() + CHECK_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Some(format!(
                    "CRIU cannot work on this host: `criu check` did not finish in {}s",
                    CHECK_TIMEOUT.as_secs()
                ));
            }
        }
    };
    if status.success() {
        return None;
    }
    let mut out = String::new();
    for s in [
        child.stderr.take().map(drain),
        child.stdout.take().map(drain),
    ]
    .into_iter()
    .flatten()
    {
        out.push_str(&s);
    }
    Some(format!(
        "CRIU cannot work on this host: `criu check` failed ({status}): {}",
        reason(&out)
    ))
}

fn drain(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// The error lines of `criu check`'s output, joined; the first lines if none
/// says "Error".
pub fn reason(out: &str) -> String {
    let errors: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("Error"))
        .take(6)
        .collect();
    let lines = if errors.is_empty() {
        out.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(6)
            .collect()
    } else {
        errors
    };
    if lines.is_empty() {
        return "no output".into();
    }
    lines.join("; ")
}

/// The lines of a CRIU log that say "Error", with the few before each, as
/// runc quotes them after a failed request: CRIU's errno alone says little.
pub fn log_errors(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    let mut printed = 0usize;
    for (i, l) in lines.iter().enumerate() {
        if !l.contains("Error") {
            continue;
        }
        let from = i.saturating_sub(5).max(printed);
        for (j, line) in lines.iter().enumerate().take(i + 1).skip(from) {
            out.push(format!("{}:{line}", j + 1));
        }
        printed = i + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_keeps_the_error_lines() {
        let out = "Warn (criu/x.c:1): something\n\
                   Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n\
                   Error (criu/crtools.c:260): Could not initialize kernel features detection.\n";
        assert_eq!(
            reason(out),
            "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds; \
             Error (criu/crtools.c:260): Could not initialize kernel features detection."
        );
        assert_eq!(
            reason("Looks good but\nsomething\n"),
            "Looks good but; something"
        );
        assert_eq!(reason(""), "no output");
    }

    #[test]
    fn log_errors_quotes_context_once() {
        let log = (1..=10)
            .map(|i| {
                if i == 7 || i == 8 {
                    format!("Error {i}")
                } else {
                    format!("l{i}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let q = log_errors(&log);
        assert_eq!(q.first().map(String::as_str), Some("2:l2"));
        assert_eq!(q.last().map(String::as_str), Some("8:Error 8"));
        assert_eq!(q.len(), 7);
    }
}
