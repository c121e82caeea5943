//! The typed protocol between `create`/`exec` (parent) and `skiff init` (child).
//! Frames are a 4-byte little-endian length and a JSON body over a stream socketpair;
//! file descriptors ride along as SCM_RIGHTS on the frame that announces them.

use crate::bail;
use crate::error::{Context, Result};
use crate::process::init::InitConfig;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Parent -> init.
#[derive(Serialize, Deserialize, Debug)]
pub enum ToInit {
    Config(Box<InitConfig>),
    /// uid/gid maps are written; init may become root in its user namespace.
    MapsWritten,
    /// Stage 2 is in the container's cgroups with their limits set (sent after
    /// Pid: stage 1 never enters them, so the container's memory limit does
    /// not pay for init's start-up and fork).
    CgroupsApplied,
    /// The parent wrote the time namespace offsets.
    TimeOffsetsWritten,
    /// prestart and createRuntime hooks ran.
    HooksDone,
    /// A failure on the parent's side: init must stop.
    Abort(String),
}

/// Init -> parent.
#[derive(Serialize, Deserialize, Debug)]
pub enum FromInit {
    /// A new user namespace exists: write its uid/gid maps.
    NeedMaps,
    /// A new time namespace exists: write its offsets before anything enters.
    NeedTimeOffsets,
    /// Host PID of the process that will become the container process, and
    /// whether it was born in the container's cgroup (else the parent moves it).
    Pid(i32, bool),
    /// Mounts are done; run prestart and createRuntime hooks now.
    RunHooks,
    /// A seccomp notify fd follows as SCM_RIGHTS.
    SeccompFd,
    /// `--debug`: init's steps and their times in microseconds (before Ready).
    Timing(Vec<(String, u64)>),
    /// Set up and waiting for `start` (create) or about to execve (exec).
    Ready,
    /// A step failed; the message names the step, path and errno.
    Error(String),
}

pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| "socketpair for init sync")?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// # Safety contract
    /// `fd` must be an open socket owned by nobody else (init gets it by inheritance).
    pub fn from_raw(fd: RawFd) -> Channel {
        Channel {
            fd: crate::sys::owned_fd(fd),
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd<T: Serialize>(&self, msg: &T, fd: Option<RawFd>) -> Result<()> {
        let body = serde_json::to_vec(msg).ctx(|| "encode sync message")?;
        let len = (body.len() as u32).to_le_bytes();
        let iov = [IoSlice::new(&len), IoSlice::new(&body)];
        let fds;
        let cmsgs: Vec<ControlMessage> = match fd {
            Some(f) => {
                fds = [f];
                vec![ControlMessage::ScmRights(&fds)]
            }
            None => vec![],
        };
        let total = len.len() + body.len();
        let mut sent = sendmsg::<()>(self.raw(), &iov, &cmsgs, MsgFlags::empty(), None)
            .ctx(|| "send sync message")?;
        // The rest, if the socket buffer split the frame (large configs).
        let all: Vec<u8> = [len.as_slice(), body.as_slice()].concat();
        while sent < total {
            let n = nix::unistd::write(&self.fd, &all[sent..]).ctx(|| "send sync message")?;
            sent += n;
        }
        Ok(())
    }

    /// Receive one frame; `Ok(None)` on EOF (the peer exited).
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        Ok(self.recv_with_fd()?.map(|(m, _)| m))
    }

    pub fn recv_with_fd<T: for<'de> Deserialize<'de>>(
        &self,
    ) -> Result<Option<(T, Option<OwnedFd>)>> {
        let mut len = [0u8; 4];
        let mut got_fd = None;
        let mut have = 0;
        while have < 4 {
            let mut cmsg = nix::cmsg_space!([RawFd; 1]);
            let mut iov = [IoSliceMut::new(&mut len[have..])];
            let msg = recvmsg::<()>(
                self.raw(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .ctx(|| "receive sync message")?;
            let n = msg.bytes;
            if let Ok(cm) = msg.cmsgs() {
                for c in cm {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for f in fds {
                            // The kernel just installed this fd for us: nobody else owns it.
                            got_fd = Some(crate::sys::owned_fd(f));
                        }
                    }
                }
            }
            if n == 0 {
                if have == 0 {
                    return Ok(None);
                }
                bail!("sync message truncated");
            }
            have += n;
        }
        let size = u32::from_le_bytes(len) as usize;
        if size > 64 << 20 {
            bail!("sync message too large ({size} bytes)");
        }
        let mut body = vec![0u8; size];
        let mut off = 0;
        while off < size {
            let n = nix::unistd::read(&self.fd, &mut body[off..]).ctx(|| "receive sync message")?;
            if n == 0 {
                bail!("sync message truncated");
            }
            off += n;
        }
        let msg = serde_json::from_slice(&body).ctx(|| "decode sync message")?;
        Ok(Some((msg, got_fd)))
    }
}
