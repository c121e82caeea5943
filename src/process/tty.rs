//! Terminals: the console socket protocol (pty created inside the container,
//! master sent to the caller with SCM_RIGHTS, as containerd, conmon and
//! Docker expect), stdio ownership, and the foreground proxy of `run -t` /
//! `exec -t`, where skiff itself is the console socket's other end.

use super::init::InitConfig;
use crate::bail;
use crate::error::{Context, Result};
use crate::rootfs::fdmount;
use crate::rootfs::safe_path::Root;
use crate::sys::{self, tty as systty};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Process;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// What runc puts in the data part of the console message (the master's name);
/// callers only need at least one byte, but some log it.
const MASTER_NAME: &[u8] = b"/dev/ptmx";

/// In init, after pivot_root (or after joining the mount namespace for exec):
/// make a pty on the container's devpts, hand its master to the caller, and
/// make its peer our controlling terminal and stdio.
pub fn setup_console(cfg: &InitConfig, process: &Process) -> Result<()> {
    let Some(sock) = cfg.console_fd else {
        bail!("terminal: true requires a console socket (--console-socket)");
    };
    let sock = sys::owned_fd(sock);
    let master = open_ptmx()?;
    systty::unlockpt(&master)?;
    let peer = systty::open_peer(&master)?;
    if let Some(size) = process.console_size() {
        let ws = systty::WinSize {
            rows: size.height() as u16,
            cols: size.width() as u16,
        };
        if ws.rows > 0 && ws.cols > 0 {
            systty::set_winsize(peer.as_raw_fd(), ws)?;
        }
    }
    if cfg.clear_onlcr {
        clear_onlcr(&peer)?;
    }
    if !cfg.exec {
        mount_console(&peer)?;
    }
    send_master(&sock, &master)?;
    drop(master);
    drop(sock);
    systty::set_controlling_terminal(peer.as_raw_fd())?;
    for target in 0..3 {
        systty::dup_onto(peer.as_raw_fd(), target)?;
    }
    Ok(())
}

/// For our own foreground terminal (`run -t`, `exec -t`) ONLCR is cleared, as
/// runc's terminal handling does with the master it receives: a program's
/// "\n" reaches the caller as "\n", not "\r\n", so a tty container's output
/// compares equal to the same program's without a tty. A caller's console
/// socket gets the pty as the kernel makes it (Docker's `-t` shows "\r\n").
fn clear_onlcr(peer: &OwnedFd) -> Result<()> {
    use nix::sys::termios::{tcgetattr, tcsetattr, OutputFlags, SetArg};
    let mut t = tcgetattr(peer).ctx(|| "tcgetattr on the console pty")?;
    t.output_flags.remove(OutputFlags::ONLCR);
    tcsetattr(peer, SetArg::TCSANOW, &t).ctx(|| "tcsetattr (clear ONLCR) on the console pty")
}

/// The container's own ptmx: /dev/pts/ptmx of its devpts instance (new
/// instance, so ptys are not shared with the host); /dev/ptmx if there is no
/// such node (a /dev/pts bind of the host's, say).
fn open_ptmx() -> Result<OwnedFd> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    match nix::fcntl::open("/dev/pts/ptmx", flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) => {
            nix::fcntl::open("/dev/ptmx", flags - OFlag::O_NOFOLLOW, Mode::empty())
                .ctx(|| "open /dev/ptmx in the container")
        }
        Err(e) => Err(e).ctx(|| "open /dev/pts/ptmx in the container"),
    }
}

/// Bind the pty peer over /dev/console, through fds on both ends. What is at
/// /dev/console is never followed (CVE-2025-52565): a symlink there (from the
/// image, with /dev not a tmpfs) is refused, as runc 1.2.8/1.3.3/1.4 refuse it
/// (their O_NOFOLLOW open fails with ELOOP); a missing one is created.
fn mount_console(peer: &OwnedFd) -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    let dev = root.mkdir_all(Path::new("/dev"), 0o755)?;
    let dev = nix::fcntl::openat(
        dev.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /dev in the container")?;
    let target = console_target(&dev)?;
    fdmount::bind_fd(
        peer.as_fd(),
        target.as_fd(),
        false,
        nix::mount::MsFlags::empty(),
        nix::mount::MsFlags::empty(),
        "bind the console pty onto /dev/console",
    )
    .map(drop)
}

/// An O_PATH handle on /dev/console that is a regular file or a char device,
/// opened under the /dev fd without following anything.
fn console_target(dev: &OwnedFd) -> Result<OwnedFd> {
    let path = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::openat(dev.as_fd(), "console", path, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            let create = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW;
            match nix::fcntl::openat(
                dev.as_fd(),
                "console",
                create | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o666),
            ) {
                Ok(_) | Err(Errno::EEXIST) => {}
                Err(e) => bail!("create /dev/console in the container: {e}"),
            }
            nix::fcntl::openat(dev.as_fd(), "console", path, Mode::empty())
                .ctx(|| "open /dev/console in the container")?
        }
        Err(e) => bail!("open /dev/console in the container: {e}"),
    };
    let st = nix::sys::stat::fstat(&fd).ctx(|| "stat /dev/console in the container")?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFCHR => Ok(fd),
        libc::S_IFLNK => bail!(
            "/dev/console in the container is a symlink: refusing to mount the console \
             through it (CVE-2025-52565)"
        ),
        other => bail!(
            "/dev/console in the container is not a file or a char device (mode {other:o}): \
             refusing to mount the console over it"
        ),
    }
}

/// Hand a pty master to the caller's console socket (restore: CRIU gives us
/// the master of the restored terminal, as init does on create).
pub fn send_master_to(path: &Path, master: &OwnedFd) -> Result<()> {
    let sock = connect_console_socket(path)?;
    send_master(&sock, master)
}

/// One message: the master's name as data and exactly one fd as SCM_RIGHTS.
fn send_master(sock: &OwnedFd, master: &OwnedFd) -> Result<()> {
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(MASTER_NAME)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .ctx(|| "send the pty master over the console socket")?;
    Ok(())
}

/// Give the process user its stdio (a pty peer, or pipes from a shim) so it can
/// reopen /dev/stdout and the like; /dev/null and fds we may not chown (an
/// unmapped owner in a user namespace, a read-only /dev) are left alone.
pub fn fix_stdio_owner(uid: u32) -> Result<()> {
    let null = nix::sys::stat::stat("/dev/null").ok();
    for fd in 0..3 {
        let b = sys::borrow_fd(fd);
        let Ok(st) = nix::sys::stat::fstat(b) else {
            continue;
        };
        let is_null = null.is_some_and(|n| {
            (st.st_mode & libc::S_IFMT) == libc::S_IFCHR && st.st_rdev == n.st_rdev
        });
        if st.st_uid == uid || is_null {
            continue;
        }
        match nix::unistd::fchown(
            b,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(st.st_gid)),
        ) {
            Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
            Err(e) => bail!("chown stdio fd {fd} to uid {uid}: {e}"),
        }
    }
    Ok(())
}

/// Connect to the caller's console socket; init sends the pty master over it.
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path)
        .ctx(|| format!("connect to console socket {}", path.display()))?;
    Ok(s.into())
}

/// The console socket skiff listens on itself when it runs a terminal in the
/// foreground: a private directory in /tmp holding one socket, removed on drop.
pub struct ConsoleListener {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleListener {
    pub fn new() -> Result<ConsoleListener> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("skiff-console-{}-{nanos}", std::process::id()));
        nix::unistd::mkdir(&dir, Mode::from_bits_truncate(0o700))
            .ctx(|| format!("mkdir {}", dir.display()))?;
        let path = dir.join("sock");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e).ctx(|| format!("listen on {}", path.display()));
            }
        };
        Ok(ConsoleListener {
            dir,
            path,
            listener,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master init sent (init has connected and sent it before create
    /// returned, so this does not block for long).
    pub fn recv_master(&self) -> Result<OwnedFd> {
        let (conn, _) = self
            .listener
            .accept()
            .ctx(|| "accept on the console socket")?;
        recv_fd(conn.as_fd()).ctx(|| "receive the pty master")
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Read one message carrying exactly one fd (the console socket protocol).
pub fn recv_fd(sock: std::os::fd::BorrowedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "recvmsg")?;
    let mut got = None;
    for c in msg.cmsgs().ctx(|| "control message")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                got = Some(sys::owned_fd(f));
            }
        }
    }
    match got {
        Some(fd) => Ok(fd),
        None => bail!("no file descriptor in the console message"),
    }
}

/// The window size to give a foreground terminal: our own terminal's.
pub fn stdin_winsize() -> Option<systty::WinSize> {
    systty::get_winsize(0).filter(|w| w.rows > 0 && w.cols > 0)
}

/// Puts our terminal in raw mode while the container owns the keyboard, and
/// restores it on drop.
struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = sys::borrow_fd(0);
        let Ok(saved) = tcgetattr(stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                sys::borrow_fd(0),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

fn write_all(fd: std::os::fd::BorrowedFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut p = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(100u16));
            }
            Err(_) => return false,
        }
    }
    true
}

/// Copy whatever the master has now to stdout; false once it is closed.
fn pump_master(master: &OwnedFd, buf: &mut [u8]) -> bool {
    loop {
        match nix::unistd::read(master, buf) {
            Ok(0) | Err(Errno::EIO) => return false,
            Ok(n) => {
                let _ = write_all(sys::borrow_fd(1), &buf[..n]);
            }
            Err(Errno::EAGAIN) => return true,
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}

/// Foreground terminal: copy stdin to the pty master and the master to stdout,
/// keep the window size in step (SIGWINCH), forward the other signals in `set`
/// (which the caller has blocked) to `pid`, and return its exit status once it
/// exits (128+signal when killed).
pub fn proxy(master: OwnedFd, pid: i32, set: &SigSet) -> Result<i32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx(|| "signalfd")?;
    nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .ctx(|| "make the pty master non-blocking")?;
    let _raw = if nix::unistd::isatty(sys::borrow_fd(0)).unwrap_or(false) {
        if let Some(ws) = stdin_winsize() {
            let _ = systty::set_winsize(master.as_raw_fd(), ws);
        }
        Some(RawMode::enter())
    } else {
        None
    };
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdin_open = true;
    let mut master_open = true;
    loop {
        let stdin = sys::borrow_fd(0);
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if master_open {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => bail!("poll terminal: {e}"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut i = 1;
        if master_open {
            if ready[i] {
                master_open = pump_master(&master, &mut buf);
            }
            i += 1;
        }
        if stdin_open && ready[i] {
            match nix::unistd::read(stdin, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => {
                    let _ = write_all(master.as_fd(), &buf[..n]);
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == Signal::SIGWINCH as i32 {
                    if let Some(ws) = stdin_winsize() {
                        let _ = systty::set_winsize(master.as_raw_fd(), ws);
                    }
                } else if sig != Signal::SIGCHLD as i32 {
                    let _ = sys::kill_raw(pid, sig);
                }
            }
            if let Some(code) = reap(pid) {
                // Output the process wrote just before exiting.
                if master_open {
                    pump_master(&master, &mut buf);
                }
                return Ok(code);
            }
        }
    }
}

/// Reap exited children; the exit status of `pid` once it is among them.
pub fn reap(pid: i32) -> Option<i32> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => return Some(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => return Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
