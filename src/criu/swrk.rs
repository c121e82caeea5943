//! One conversation with `criu swrk`: CRIU's RPC service on a SEQPACKET
//! socket. We spawn it with the server end as an inherited fd, send one
//! request, answer its notifications, and wait for it to exit, so a CRIU that
//! dies mid-way reads as EOF here rather than a hang.

use crate::bail;
use crate::error::{Context, Result};
use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use protobuf::Message;
use rust_criu::rust_criu_protobuf::rpc::{Criu_notify, Criu_req, Criu_req_type, Criu_resp};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};

/// What the caller does on each notification CRIU sends (a script name, the
/// pid where one applies, and an fd for "orphan-pts-master").
pub trait Notify {
    fn notify(&mut self, n: &Criu_notify, fd: Option<OwnedFd>) -> Result<()>;
}

/// Notifications that need nothing from us (a dump).
pub struct Ignore;

impl Notify for Ignore {
    fn notify(&mut self, n: &Criu_notify, _fd: Option<OwnedFd>) -> Result<()> {
        log::debug!("criu notify: {}", n.script());
        Ok(())
    }
}

/// Called with CRIU's pid before the request goes out.
pub type BeforeSend<'a> = &'a mut dyn FnMut(i32, &mut Criu_req) -> Result<()>;

/// How to run the `criu` binary for one request.
pub struct Swrk<'a> {
    /// Descriptors CRIU must inherit (images dir, work dir, namespace files):
    /// the request names them by number.
    pub inherit: Vec<RawFd>,
    /// Give CRIU our own stdio (restore: the restored process's pipes are
    /// matched against CRIU's fds 0-2); otherwise /dev/null.
    pub stdio: bool,
    /// Called with CRIU's pid before the request is sent (restore joins CRIU
    /// to the container's cgroup here, so the restored tree lands in it).
    pub before_send: Option<BeforeSend<'a>>,
}

static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Use this CRIU binary (runc's global --criu flag) instead of `criu` from PATH.
pub fn set_binary(path: &str) {
    let _ = BINARY.set(path.to_string());
}

/// CRIU's binary: --criu, else `criu` from PATH, as runc runs it.
pub fn binary() -> &'static str {
    BINARY.get().map(String::as_str).unwrap_or("criu")
}

/// Send `req`, answer notifications through `notify`, return the final answer.
pub fn call(mut req: Criu_req, sw: Swrk, notify: &mut dyn Notify) -> Result<Criu_resp> {
    let kind = req.type_();
    let (client, server) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "socketpair for criu swrk")?;
    // Only the descriptors named here cross into CRIU: ours are all CLOEXEC,
    // and we are single-threaded, so nothing else leaks in between.
    for fd in sw.inherit.iter().copied().chain([server.as_raw_fd()]) {
        crate::sys::clear_cloexec(fd).ctx(|| format!("pass fd {fd} to criu"))?;
    }
    let mut cmd = Command::new(binary());
    cmd.arg("swrk").arg(server.as_raw_fd().to_string());
    if !sw.stdio {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    let spawned = cmd.spawn();
    drop(server);
    let mut child = spawned.ctx(|| format!("run {} swrk (is CRIU installed?)", binary()))?;
    let pid = child.id() as i32;
    let answer = (|| {
        if let Some(f) = sw.before_send {
            f(pid, &mut req)?;
        }
        send(&client, &req)?;
        converse(&client, kind, notify)
    })();
    drop(client);
    // A pre-dump leaves CRIU waiting for the next request; closing the socket
    // ends it, and then its exit status says nothing.
    let status = child.wait().ctx(|| "wait for criu swrk")?;
    let resp = answer?;
    if !status.success() && kind != Criu_req_type::PRE_DUMP {
        bail!("criu failed: {status}");
    }
    Ok(resp)
}

fn send(sock: &OwnedFd, req: &Criu_req) -> Result<()> {
    let bytes = req.write_to_bytes().ctx(|| "encode criu request")?;
    let n = nix::unistd::write(sock, &bytes).ctx(|| "send request to criu")?;
    if n != bytes.len() {
        bail!("send request to criu: short write ({n} of {})", bytes.len());
    }
    Ok(())
}

fn converse(sock: &OwnedFd, kind: Criu_req_type, notify: &mut dyn Notify) -> Result<Criu_resp> {
    loop {
        let (resp, fd) = recv(sock)?;
        if !resp.success() {
            // Not cr_errmsg: it is CRIU's first complaint, often a harmless
            // one; the caller quotes the log's errors instead, as runc does.
            bail!(
                "criu failed: type {:?} errno {}",
                resp.type_(),
                resp.cr_errno()
            );
        }
        if resp.type_() != Criu_req_type::NOTIFY {
            if resp.type_() != kind {
                bail!("criu answered {:?} to a {kind:?} request", resp.type_());
            }
            return Ok(resp);
        }
        let n = resp.notify.clone().unwrap_or_default();
        let ok = notify.notify(&n, fd);
        let mut ack = Criu_req::new();
        ack.set_type(Criu_req_type::NOTIFY);
        ack.set_notify_success(ok.is_ok());
        send(sock, &ack)?;
        ok.ctx(|| format!("criu notification {:?}", n.script()))?;
    }
}

/// One message from CRIU and the fd it may carry (the orphan pts master).
fn recv(sock: &OwnedFd) -> Result<(Criu_resp, Option<OwnedFd>)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive from criu")?;
    let n = msg.bytes;
    if n == 0 {
        bail!("criu exited without an answer (unexpected EOF on the swrk socket)");
    }
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        bail!("criu answer larger than {} bytes", buf.len());
    }
    let mut fd = None;
    for c in msg.cmsgs().ctx(|| "criu control message")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                fd = Some(crate::sys::owned_fd(f));
            }
        }
    }
    let resp = Criu_resp::parse_from_bytes(&buf[..n]).ctx(|| "decode criu answer")?;
    Ok((resp, fd))
}
