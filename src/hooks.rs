//! Running runtime-spec hooks: the container state on stdin, the hook's own args
//! and env, and its timeout. Output is captured and folded into the error.

use crate::bail;
use crate::error::{Context, Result};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
}

/// The hooks of one kind from config.json.
pub fn of_kind(hooks: Option<&oci_spec::runtime::Hooks>, kind: Kind) -> Vec<Hook> {
    let Some(h) = hooks else { return Vec::new() };
    #[allow(deprecated)]
    let list = match kind {
        Kind::Prestart => h.prestart(),
        Kind::CreateRuntime => h.create_runtime(),
        Kind::CreateContainer => h.create_container(),
        Kind::StartContainer => h.start_container(),
        Kind::Poststart => h.poststart(),
        Kind::Poststop => h.poststop(),
    };
    list.clone().unwrap_or_default()
}

/// Run every hook in order; the first failure stops the rest. A hook without
/// `env` gets an empty environment.
pub fn run_all(hooks: &[Hook], kind: Kind, state_json: &str) -> Result<()> {
    run_all_with_env(hooks, kind, state_json, &[])
}

/// As `run_all`, a hook without `env` getting `default_env` (startContainer
/// hooks get the container process's environment, as runc and youki do).
/// Failures are worded as runc 1.2+ words them: `error running <kind> hook #N: ...`.
pub fn run_all_with_env(
    hooks: &[Hook],
    kind: Kind,
    state_json: &str,
    default_env: &[String],
) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        log::debug!("running {} hook #{i}: {}", kind.name(), h.path().display());
        run_one(h, state_json, default_env).map_err(|e| {
            crate::error::Error::new(format!(
                "error running {} hook #{i}: {}: {e}",
                kind.name(),
                h.path().display()
            ))
        })?;
    }
    Ok(())
}

/// The most of a hook's output kept for the error: its end explains the failure.
const KEEP: usize = 4096;

fn run_one(h: &Hook, state_json: &str, default_env: &[String]) -> Result<()> {
    let mut cmd = Command::new(h.path());
    // args[0] is the hook's argv[0]; the path is what is executed.
    if let Some((first, rest)) = h.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(first);
        cmd.args(rest);
    }
    cmd.env_clear();
    let env = h.env().clone().unwrap_or_else(|| default_env.to_vec());
    for kv in env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // stdout and stderr share one pipe, read between checks of the hook's exit:
    // no reader thread, since a hook runs inside init too, which must stay
    // single-threaded, and a thread waiting for EOF would wait for every
    // background process the hook left holding the pipe.
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    let err_w = out_w.try_clone().ctx(|| "dup pipe")?;
    fcntl(&out_r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).ctx(|| "set O_NONBLOCK")?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    let mut child = cmd.spawn().ctx(|| "start")?;
    // Our copies of the write ends live in `cmd`: drop them so EOF can come.
    drop(cmd);
    // The timeout covers the whole hook, feeding it the state included: a hook
    // that never reads stdin must not hang us on a state bigger than a pipe.
    // One too large for the clock is no timeout.
    let timeout = h.timeout().filter(|t| *t > 0);
    let deadline = deadline(h.timeout());
    let mut feed = match child.stdin.take() {
        Some(stdin) => Some(StdinFeed::new(stdin, state_json.as_bytes()).ctx(|| "stdin")?),
        None => None,
    };
    let mut out = Output::new(std::fs::File::from(out_r));
    let mut nap = Duration::from_micros(200);
    let status = loop {
        if feed.as_mut().is_some_and(|f| f.pump()) {
            // All written, or the hook closed its end: EOF (or nothing) now.
            feed = None;
        }
        out.read_available();
        if let Some(st) = child.try_wait().ctx(|| "wait")? {
            break st;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", timeout.unwrap_or(0));
        }
        wait_for_io(feed.as_ref(), &out, nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    // What the hook wrote before it exited is in the pipe now; a background
    // process it left may hold the pipe open for ever, so drain briefly only.
    out.drain(Duration::from_millis(50));
    if status.success() {
        return Ok(());
    }
    let status = go_status(&status);
    let output = out.text();
    if output.is_empty() {
        bail!("{status}")
    } else {
        bail!("{status}, output: {output}")
    }
}

/// When a hook with this `timeout` (seconds) is killed: none for zero,
/// negative, or one too large for the clock.
pub fn deadline(timeout: Option<i64>) -> Option<Instant> {
    let t = u64::try_from(timeout?).ok().filter(|t| *t > 0)?;
    Instant::now().checked_add(Duration::from_secs(t))
}

/// An exit status as runc (Go) prints it: "exit status 3", "signal: killed".
fn go_status(st: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => match nix::sys::signal::Signal::try_from(s) {
            Ok(sig) => format!("signal: {}", sig.as_str()),
            Err(_) => format!("signal: {s}"),
        },
        _ => st.to_string(),
    }
}

/// Sleep until the hook's output or its stdin pipe is ready, `max` at most.
fn wait_for_io(feed: Option<&StdinFeed>, out: &Output, max: Duration) {
    let ms = u16::try_from(max.as_millis()).unwrap_or(u16::MAX);
    let mut fds = Vec::with_capacity(2);
    if let Some(f) = feed {
        fds.push(PollFd::new(f.pipe.as_fd(), PollFlags::POLLOUT));
    }
    if out.open {
        fds.push(PollFd::new(out.pipe.as_fd(), PollFlags::POLLIN));
    }
    if fds.is_empty() {
        std::thread::sleep(max);
    } else {
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

/// The read end of the hook's output pipe (non-blocking) and the tail read so far.
struct Output {
    pipe: std::fs::File,
    buf: Vec<u8>,
    open: bool,
}

impl Output {
    fn new(pipe: std::fs::File) -> Output {
        Output {
            pipe,
            buf: Vec::new(),
            open: true,
        }
    }

    /// Read what is in the pipe now; false when nothing more is there yet.
    fn read_available(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        while self.open {
            match self.pipe.read(&mut chunk) {
                Ok(0) => self.open = false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if self.buf.len() > 2 * KEEP {
                        self.buf.drain(..self.buf.len() - KEEP);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Read until EOF or until the pipe stays empty for `grace`.
    fn drain(&mut self, grace: Duration) {
        let end = Instant::now() + grace;
        while self.open && Instant::now() < end {
            self.read_available();
            if self.open {
                let left = end.saturating_duration_since(Instant::now());
                let mut fds = [PollFd::new(self.pipe.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                if !matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0) {
                    return;
                }
            }
        }
    }

    /// The output's end, at most KEEP bytes, trimmed.
    fn text(&self) -> String {
        let s = String::from_utf8_lossy(&self.buf);
        let t = s.trim();
        let mut cut = t.len().saturating_sub(KEEP);
        while !t.is_char_boundary(cut) {
            cut += 1;
        }
        t[cut..].to_string()
    }
}

/// The state written to a hook's stdin without blocking, a pipe-full at a time
/// between checks of the hook's exit and deadline.
struct StdinFeed<'a> {
    pipe: ChildStdin,
    rest: &'a [u8],
}

impl<'a> StdinFeed<'a> {
    fn new(pipe: ChildStdin, data: &'a [u8]) -> Result<StdinFeed<'a>> {
        fcntl(&pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).ctx(|| "set O_NONBLOCK")?;
        Ok(StdinFeed { pipe, rest: data })
    }

    /// Write what the pipe takes now; true when done (everything written, or
    /// the hook closed its end: a hook that ignores stdin is not a failure).
    fn pump(&mut self) -> bool {
        while !self.rest.is_empty() {
            match self.pipe.write(self.rest) {
                Ok(0) => return true,
                Ok(n) => self.rest = &self.rest[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn sh(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default().path("/bin/sh").args(vec![
            "sh".to_string(),
            "-c".to_string(),
            script.to_string(),
        ]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn state_arrives_on_stdin() {
        let d = std::env::temp_dir().join(format!("skiff-hook-{}", std::process::id()));
        let h = sh(&format!("cat > {}", d.display()), None);
        run_all(&[h], Kind::Prestart, "{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&d).unwrap(), "{\"id\":\"x\"}");
        std::fs::remove_file(&d).unwrap();
    }

    #[test]
    fn failure_names_hook_and_output() {
        let e = run_all(&[sh("echo boom >&2; exit 4", None)], Kind::Poststart, "{}").unwrap_err();
        assert!(e.message().contains("poststart hook #0"), "{e}");
        assert!(e.message().contains("boom"), "{e}");
    }

    #[test]
    fn timeout_covers_a_hook_that_never_reads_its_state() {
        // More state than a pipe holds (big annotations), and a hook that never
        // reads it: the write must not block past the hook's timeout.
        let state = format!("{{\"id\":\"x\",\"pad\":\"{}\"}}", "a".repeat(200 * 1024));
        let t = Instant::now();
        let e = run_all(&[sh("sleep 30", Some(1))], Kind::Prestart, &state).unwrap_err();
        assert!(e.message().contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[test]
    fn big_state_arrives_whole() {
        let d = std::env::temp_dir().join(format!("skiff-hook-big-{}", std::process::id()));
        let state = format!("{{\"pad\":\"{}\"}}", "b".repeat(300 * 1024));
        let h = sh(&format!("sleep 0.2; cat > {}", d.display()), Some(10));
        run_all(&[h], Kind::CreateRuntime, &state).unwrap();
        assert_eq!(std::fs::read_to_string(&d).unwrap(), state);
        std::fs::remove_file(&d).unwrap();
    }

    #[test]
    fn a_hook_flooding_stderr_does_not_stall() {
        // More than a pipe's worth on stderr while stdout stays open.
        let h = sh("head -c 300000 /dev/zero | tr '\\0' x >&2; exit 3", Some(5));
        let t = Instant::now();
        let e = run_all(&[h], Kind::Poststop, "{}").unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(
            e.message().contains("exit status 3"),
            "{}",
            &e.message()[..80]
        );
        assert!(e.message().len() < 5000, "the output is cut to its end");
    }

    #[test]
    fn a_background_child_holding_the_pipe_does_not_hang() {
        let t = Instant::now();
        run_all(&[sh("sleep 3 &", None)], Kind::CreateContainer, "{}").unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[test]
    fn huge_timeout_is_no_timeout() {
        run_all(&[sh("true", Some(i64::MAX))], Kind::Prestart, "{}").unwrap();
    }

    #[test]
    fn failure_is_worded_as_runc() {
        let e = run_all(
            &[sh("exit 0", None), sh("exit 2", None)],
            Kind::Prestart,
            "{}",
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "error running prestart hook #1: /bin/sh: exit status 2"
        );
    }

    #[test]
    fn timeout_kills() {
        let t = Instant::now();
        let e = run_all(&[sh("sleep 5", Some(1))], Kind::Prestart, "{}").unwrap_err();
        assert!(e.message().contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(4));
    }
}
