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

/// Run every hook in order; the first failure stops the rest.
pub fn run_all(hooks: &[Hook], kind: Kind, state_json: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json)
            .ctx(|| format!("{} hook #{} ({})", kind.name(), i, h.path().display()))?;
    }
    Ok(())
}

fn run_one(h: &Hook, state_json: &str) -> Result<()> {
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first);
            cmd.args(rest);
        }
    }
    cmd.env_clear();
    for kv in h.env().clone().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // stdout and stderr share one pipe, read by one thread: two pipes read one
    // after the other would stall a hook that fills the second first.
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe")?;
    let err_w = out_w.try_clone().ctx(|| "dup pipe")?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    let mut child = cmd.spawn().ctx(|| "start")?;
    // Our copies of the write ends live in `cmd`: drop them so EOF can come.
    drop(cmd);
    // The timeout covers the whole hook, feeding it the state included: a hook
    // that never reads stdin must not hang us on a state bigger than a pipe.
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut feed = match child.stdin.take() {
        Some(stdin) => Some(StdinFeed::new(stdin, state_json.as_bytes()).ctx(|| "stdin")?),
        None => None,
    };
    let mut out = std::fs::File::from(out_r);
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut nap = Duration::from_micros(200);
    let status = loop {
        if feed.as_mut().is_some_and(|f| f.pump()) {
            // All written, or the hook closed its end: EOF (or nothing) now.
            feed = None;
        }
        if let Some(st) = child.try_wait().ctx(|| "wait")? {
            break st;
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                let _ = child.kill();
                let _ = child.wait();
                bail!("timed out after {}s", h.timeout().unwrap_or(0));
            }
        }
        match &feed {
            Some(f) => f.wait_writable(nap),
            None => std::thread::sleep(nap),
        }
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    // Output is only of interest on failure; a hook that leaves a child holding
    // its pipes must not hang us, so give the reader a moment only.
    let output = wait_reader(reader, Duration::from_millis(200));
    let mut output = output.trim();
    // The end of a long output is what explains the failure; keep the log line sane.
    const KEEP: usize = 4096;
    if output.len() > KEEP {
        let mut cut = output.len() - KEEP;
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        output = &output[cut..];
    }
    if output.is_empty() {
        bail!("{status}")
    } else {
        bail!("{status}, output: {output}")
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

    /// Sleep until the pipe has room again, `max` at most.
    fn wait_writable(&self, max: Duration) {
        let ms = u16::try_from(max.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.pipe.as_fd(), PollFlags::POLLOUT)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

fn wait_reader(h: std::thread::JoinHandle<String>, max: Duration) -> String {
    let end = Instant::now() + max;
    while !h.is_finished() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    if h.is_finished() {
        h.join().unwrap_or_default()
    } else {
        String::new()
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
            e.message().contains("exit status: 3"),
            "{}",
            &e.message()[..80]
        );
        assert!(e.message().len() < 5000, "the output is cut to its end");
    }

    #[test]
    fn timeout_kills() {
        let t = Instant::now();
        let e = run_all(&[sh("sleep 5", Some(1))], Kind::Prestart, "{}").unwrap_err();
        assert!(e.message().contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(4));
    }
}
