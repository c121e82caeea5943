//! A small rtnetlink client (netlink(7), rtnetlink(7)) over a raw socket: only
//! the requests moving a network device into a container needs. Messages are
//! built and parsed as bytes, so this module needs no `unsafe`.

use crate::bail;
use crate::error::{Context, Result};
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

// Values from the kernel's uapi headers (linux/netlink.h, linux/rtnetlink.h,
// linux/if_link.h, linux/if_addr.h); they are ABI and never change.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
/// ifa_flags: configured by hand, not learned (SLAAC, DHCP lifetimes).
pub const IFA_F_PERMANENT: u32 = 0x80;
/// ifa_scope: global (host, link and site scopes are local to a namespace).
pub const RT_SCOPE_UNIVERSE: u8 = 0;
const IFF_UP: u32 = 0x1;
const NLMSG_HDRLEN: usize = 16;

/// One address of an interface, as RTM_GETADDR reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// AF_INET or AF_INET6.
    pub family: u8,
    pub prefix_len: u8,
    pub flags: u32,
    pub scope: u8,
    pub index: u32,
    /// 4 or 16 bytes: IFA_LOCAL when present (IPv4), else IFA_ADDRESS.
    pub addr: Vec<u8>,
}

impl std::fmt::Display for IfAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip: Option<std::net::IpAddr> = match self.addr.len() {
            4 => <[u8; 4]>::try_from(self.addr.as_slice())
                .ok()
                .map(Into::into),
            16 => <[u8; 16]>::try_from(self.addr.as_slice())
                .ok()
                .map(Into::into),
            _ => None,
        };
        match ip {
            Some(ip) => write!(f, "{ip}/{}", self.prefix_len),
            None => write!(f, "{:?}/{}", self.addr, self.prefix_len),
        }
    }
}

/// A NETLINK_ROUTE socket; it talks to the network namespace it was made in.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> Result<Rtnl> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .ctx(|| "socket(AF_NETLINK, NETLINK_ROUTE)")?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).ctx(|| "bind netlink socket")?;
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Set the link up or down (RTM_NEWLINK changing IFF_UP only).
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<()> {
        let flags = if up { IFF_UP } else { 0 };
        let body = ifinfomsg(index, flags, IFF_UP);
        self.request(RTM_NEWLINK, NLM_F_ACK, &body)
    }

    /// Move the link into the network namespace `ns_fd` under `new_name`, in
    /// one request so the name never collides in between (as runc does).
    pub fn move_to_netns(&mut self, index: u32, new_name: &str, ns_fd: RawFd) -> Result<()> {
        let mut body = ifinfomsg(index, 0, 0);
        let mut name = new_name.as_bytes().to_vec();
        name.push(0);
        push_attr(&mut body, IFLA_IFNAME, &name);
        push_attr(&mut body, IFLA_NET_NS_FD, &(ns_fd as u32).to_ne_bytes());
        self.request(RTM_NEWLINK, NLM_F_ACK, &body)
    }

    /// Every address of every interface (filter by `index` yourself: dumps
    /// ignore the index unless the socket asks for strict checking).
    pub fn addresses(&mut self) -> Result<Vec<IfAddr>> {
        let body = ifaddrmsg(0, 0, 0);
        let seq = self.send(RTM_GETADDR, NLM_F_DUMP, &body)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())
                .ctx(|| "recv netlink address dump")?;
            for (typ, msg_seq, payload) in messages(&buf[..n])? {
                if msg_seq != seq {
                    continue;
                }
                match typ {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => check_ack(payload).ctx(|| "netlink address dump")?,
                    RTM_NEWADDR => out.extend(parse_addr(payload)),
                    _ => {}
                }
            }
        }
    }

    /// Add `a` to the interface `index` (the scope and flags are the kernel's
    /// defaults: global, permanent).
    pub fn add_address(&mut self, index: u32, a: &IfAddr) -> Result<()> {
        let mut body = ifaddrmsg(a.family, a.prefix_len, index);
        push_attr(&mut body, IFA_LOCAL, &a.addr);
        push_attr(&mut body, IFA_ADDRESS, &a.addr);
        if let Some(b) = broadcast_of(a) {
            push_attr(&mut body, IFA_BROADCAST, &b);
        }
        self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &body)
    }

    fn send(&mut self, typ: u16, flags: u16, body: &[u8]) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let msg = nlmsg(typ, NLM_F_REQUEST | flags, self.seq, body);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty()).ctx(|| "send netlink request")?;
        Ok(self.seq)
    }

    /// Send a request and wait for its acknowledgement (errno or success).
    fn request(&mut self, typ: u16, flags: u16, body: &[u8]) -> Result<()> {
        let seq = self.send(typ, flags, body)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())
                .ctx(|| "recv netlink ack")?;
            for (t, s, payload) in messages(&buf[..n])? {
                if t == NLMSG_ERROR && s == seq {
                    return check_ack(payload);
                }
            }
        }
    }
}

/// An IPv4 address with a prefix shorter than /31 gets the broadcast address
/// `ip address add` would give it.
fn broadcast_of(a: &IfAddr) -> Option<[u8; 4]> {
    let v4 = <[u8; 4]>::try_from(a.addr.as_slice()).ok()?;
    if a.family != libc::AF_INET as u8 || a.prefix_len >= 31 {
        return None;
    }
    let host = u32::MAX.checked_shr(u32::from(a.prefix_len)).unwrap_or(0);
    Some((u32::from_be_bytes(v4) | host).to_be_bytes())
}

fn nlmsg(typ: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = (NLMSG_HDRLEN + body.len()) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&typ.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m
}

/// struct ifinfomsg: family, pad, type, index, flags, change.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

/// struct ifaddrmsg: family, prefixlen, flags, scope, index.
fn ifaddrmsg(family: u8, prefix_len: u8, index: u32) -> Vec<u8> {
    let mut b = vec![family, prefix_len, 0, RT_SCOPE_UNIVERSE];
    b.extend_from_slice(&index.to_ne_bytes());
    b
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn push_attr(b: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = (4 + data.len()) as u16;
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&typ.to_ne_bytes());
    b.extend_from_slice(data);
    b.resize(align4(b.len()), 0);
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Split a datagram into (type, seq, payload) messages, bounds-checked.
fn messages(buf: &[u8]) -> Result<Vec<(u16, u32, &[u8])>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            bail!("netlink: malformed message of length {len} at offset {at}");
        }
        let typ = u16_at(buf, at + 4).unwrap_or(0);
        let seq = u32_at(buf, at + 8).unwrap_or(0);
        out.push((typ, seq, &buf[at + NLMSG_HDRLEN..at + len]));
        at += align4(len);
    }
    Ok(out)
}

/// NLMSG_ERROR carries a negative errno, or 0 for an acknowledgement.
fn check_ack(payload: &[u8]) -> Result<()> {
    let Some(code) = u32_at(payload, 0).map(|c| c as i32) else {
        bail!("netlink: truncated error message");
    };
    if code == 0 {
        return Ok(());
    }
    Err(std::io::Error::from_raw_os_error(-code)).ctx(|| "netlink")
}

/// (type, data) of each attribute after a fixed header of `skip` bytes.
fn attrs(payload: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = skip;
    while let (Some(len), Some(typ)) = (u16_at(payload, at), u16_at(payload, at + 2)) {
        let len = len as usize;
        if len < 4 || at + len > payload.len() {
            break;
        }
        out.push((typ, &payload[at + 4..at + len]));
        at += align4(len);
    }
    out
}

fn parse_addr(payload: &[u8]) -> Option<IfAddr> {
    let hdr = payload.get(..8)?;
    let mut a = IfAddr {
        family: hdr[0],
        prefix_len: hdr[1],
        flags: u32::from(hdr[2]),
        scope: hdr[3],
        index: u32_at(hdr, 4)?,
        addr: Vec::new(),
    };
    let mut address = None;
    for (typ, data) in attrs(payload, 8) {
        match typ {
            IFA_LOCAL => a.addr = data.to_vec(),
            IFA_ADDRESS => address = Some(data.to_vec()),
            // The 32-bit flags supersede the 8-bit field when present.
            IFA_FLAGS => a.flags = u32_at(data, 0).unwrap_or(a.flags),
            _ => {}
        }
    }
    if a.addr.is_empty() {
        a.addr = address?;
    }
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr_msg(family: u8, plen: u8, flags8: u8, scope: u8, index: u32) -> Vec<u8> {
        let mut b = vec![family, plen, flags8, scope];
        b.extend_from_slice(&index.to_ne_bytes());
        b
    }

    #[test]
    fn parses_an_ipv4_address_with_extended_flags() {
        let mut p = addr_msg(2, 24, 0, 0, 7);
        push_attr(&mut p, IFA_ADDRESS, &[10, 0, 0, 9]);
        push_attr(&mut p, IFA_LOCAL, &[10, 0, 0, 1]);
        push_attr(&mut p, IFA_FLAGS, &0x280u32.to_ne_bytes());
        let a = parse_addr(&p).expect("parsed");
        assert_eq!(a.addr, vec![10, 0, 0, 1], "IFA_LOCAL wins");
        assert_eq!((a.index, a.prefix_len, a.flags), (7, 24, 0x280));
        assert_eq!(a.to_string(), "10.0.0.1/24");
    }

    #[test]
    fn parses_an_ipv6_address_without_local() {
        let mut p = addr_msg(10, 64, 0x80, 0, 3);
        let v6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        push_attr(&mut p, IFA_ADDRESS, &v6);
        let a = parse_addr(&p).expect("parsed");
        assert_eq!(a.addr, v6.to_vec());
        assert_eq!(a.flags, IFA_F_PERMANENT);
        assert_eq!(a.to_string(), "fd00::1/64");
    }

    #[test]
    fn truncated_input_never_panics() {
        let mut p = addr_msg(2, 24, 0, 0, 7);
        push_attr(&mut p, IFA_LOCAL, &[10, 0, 0, 1]);
        for cut in 0..p.len() {
            let _ = parse_addr(&p[..cut]);
            let _ = messages(&p[..cut]);
            let _ = check_ack(&p[..cut]);
        }
        assert!(parse_addr(&p[..4]).is_none());
    }

    #[test]
    fn splits_messages_and_reads_errors() {
        let mut buf = nlmsg(NLMSG_ERROR, 0, 5, &(-19i32).to_ne_bytes());
        buf.extend(nlmsg(NLMSG_DONE, 0, 6, &[0, 0, 0, 0]));
        let m = messages(&buf).expect("split");
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].0, m[0].1), (NLMSG_ERROR, 5));
        let e = check_ack(m[0].2).expect_err("ENODEV");
        assert!(e.message().contains("No such device"), "{e}");
        assert!(check_ack(&0i32.to_ne_bytes()).is_ok());
        let mut bad = buf.clone();
        bad[0] = 200;
        assert!(messages(&bad).is_err());
    }

    #[test]
    fn broadcast_as_ip_computes_it() {
        let a = |plen| IfAddr {
            family: 2,
            prefix_len: plen,
            flags: 0,
            scope: 0,
            index: 1,
            addr: vec![192, 168, 7, 5],
        };
        assert_eq!(broadcast_of(&a(24)), Some([192, 168, 7, 255]));
        assert_eq!(broadcast_of(&a(0)), Some([255, 255, 255, 255]));
        assert_eq!(broadcast_of(&a(31)), None);
        assert_eq!(broadcast_of(&a(32)), None);
    }
}
