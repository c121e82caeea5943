//! runc behaviours from issue 11 that runc 1.1.5 (the installed oracle) may
//! predate: where runc 1.2+ changed or added something, the expected value is
//! written here with a comment naming the runc version.

use crate::support::*;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

fn socket_path(rt: &Runtime, name: &str) -> PathBuf {
    rt.root().parent().expect("runtime dir").join(name)
}

// ---------------------------------------------------------------------------
// --pidfd-socket

/// Accept one connection on `l` and take runc's pidfd message from it: the
/// data (the init kind) and exactly one fd.
fn recv_pidfd(l: &UnixListener) -> (String, OwnedFd) {
    let (conn, _) = l.accept().expect("accept pidfd connection");
    let (data, mut fds) = recv_with_fds(&conn);
    assert_eq!(fds.len(), 1, "exactly one fd in the pidfd message");
    (text(&data), fds.remove(0))
}

/// The PID a pidfd names, from its fdinfo (`Pid:` line, Linux 5.10+).
fn pidfd_pid(fd: &OwnedFd) -> i32 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .expect("read fdinfo");
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"));
    line.trim().parse().expect("pid in fdinfo")
}

fn pidfd_kill(fd: &OwnedFd) {
    // SAFETY: pidfd_send_signal takes a descriptor we own, a signal number and
    // a null siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    assert_eq!(
        r,
        0,
        "pidfd_send_signal: {}",
        std::io::Error::last_os_error()
    );
}

/// A pidfd polls readable once its process has exited.
fn pidfd_exits_within(fd: &OwnedFd, max: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(max.as_millis() as i32).expect("timeout");
    matches!(poll(&mut p, ms), Ok(1))
}

/// runc 1.2 added `--pidfd-socket` to create, run and exec: runc connects to
/// the socket and sends one message whose data is "standard" (the container's
/// init) or "setns" (an exec'd process) with a pidfd of that process as the
/// one SCM_RIGHTS fd, before the process runs the user's program (runc 1.1.5
/// has no such flag, so the expectations are written here). The caller can
/// then signal and wait for exactly that process.
#[test]
fn pidfd_socket_sends_a_pidfd_of_init_and_of_exec() {
    if skip_unless_root() {
        return;
    }
    let b = Bundle::new().args(&["sleep", "1000"]);
    let rt = Runtime::skiff();
    let sock = socket_path(&rt, "pidfd.sock");
    let sock_s = sock.to_str().expect("utf-8");
    let l = UnixListener::bind(&sock).expect("bind pidfd socket");
    let id = rt.new_id();
    rt.create_with(&id, &b, &["--pidfd-socket", sock_s])
        .assert_success("create --pidfd-socket");
    let (kind, init_fd) = recv_pidfd(&l);
    assert_eq!(kind, "standard", "data sent with init's pidfd");
    let pid = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    assert_eq!(pidfd_pid(&init_fd), pid, "the pidfd names init");
    rt.start(&id).assert_success("start");

    rt.run(&["exec", "-d", "--pidfd-socket", sock_s, &id, "sleep", "999"])
        .assert_success("exec --pidfd-socket");
    let (kind, exec_fd) = recv_pidfd(&l);
    assert_eq!(kind, "setns", "data sent with an exec'd process's pidfd");
    let exec_pid = pidfd_pid(&exec_fd);
    let cmdline = std::fs::read(format!("/proc/{exec_pid}/cmdline")).expect("cmdline");
    assert_eq!(
        cmdline, b"sleep\0999\0",
        "the pidfd names the exec'd process"
    );
    pidfd_kill(&exec_fd);
    assert!(
        pidfd_exits_within(&exec_fd, Duration::from_secs(10)),
        "exec'd process killed through its pidfd"
    );
    pidfd_kill(&init_fd);
    rt.wait_for_status(&id, "stopped", Duration::from_secs(10));
    rt.delete(&id).assert_success("delete");
}

/// `run -d --pidfd-socket` sends init's pidfd too (runc 1.2); a socket
/// nobody listens on fails before any container exists.
#[test]
fn pidfd_socket_with_run_and_a_dead_socket() {
    if skip_unless_root() {
        return;
    }
    let b = Bundle::new().args(&["sleep", "1000"]);
    b.flush();
    let rt = Runtime::skiff();
    let sock = socket_path(&rt, "pidfd-run.sock");
    let sock_s = sock.to_str().expect("utf-8");
    let l = UnixListener::bind(&sock).expect("bind pidfd socket");
    let id = rt.new_id();
    rt.run(&[
        "run",
        "-d",
        "--pidfd-socket",
        sock_s,
        "--bundle",
        b.path_str(),
        &id,
    ])
    .assert_success("run -d --pidfd-socket");
    let (kind, fd) = recv_pidfd(&l);
    assert_eq!(kind, "standard");
    pidfd_kill(&fd);
    rt.wait_for_status(&id, "stopped", Duration::from_secs(10));
    rt.delete(&id).assert_success("delete");

    let gone = socket_path(&rt, "nobody.sock");
    let id2 = rt.new_id();
    let out = rt.create_with(&id2, &b, &["--pidfd-socket", gone.to_str().expect("utf-8")]);
    out.assert_code(1, "create with a pidfd socket nobody listens on");
    assert!(
        out.stderr_text().contains("nobody.sock"),
        "{}",
        out.stderr_text()
    );
    let st = rt.run(&["state", &id2]);
    assert!(
        !st.status.success(),
        "nothing left behind: {}",
        st.stdout_text()
    );
}
