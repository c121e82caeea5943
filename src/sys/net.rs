//! The loopback interface of a network namespace skiff creates.

use crate::error::{Context, Result};
use std::os::fd::AsRawFd;

/// Bring `lo` up in our (new) network namespace, as runc does: without it
/// 127.0.0.1 does not answer in `podman --network none`, pods, or `ctr run`
/// without CNI. Needs CAP_NET_ADMIN over the namespace, which init has.
pub fn loopback_up() -> Result<()> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(|| "socket for bringing lo up")?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value for it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the flags of the interface named in `req`
    // into `req.ifr_ifru`; `req` outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "ioctl SIOCGIFFLAGS lo");
    }
    // SAFETY: the union member written by SIOCGIFFLAGS is ifru_flags.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS only reads `req`, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "ioctl SIOCSIFFLAGS lo up");
    }
    Ok(())
}
