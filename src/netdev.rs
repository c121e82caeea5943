//! `linux.netDevices`: move host network interfaces into the container's
//! network namespace, as runc 1.4 does. The parent does it (it is in the
//! runtime's namespace, where the devices are) once init is in the
//! container's namespace. Nothing is moved back on delete, as in runc: the
//! owner of the namespace decides the device's fate, and when a namespace
//! skiff made is destroyed the kernel returns physical devices to the initial
//! namespace and deletes virtual ones (runtime-spec, "Namespace lifecycle and
//! container termination").

use crate::bail;
use crate::error::{Context, Result};
use crate::namespaces;
use crate::sys::rtnl::{IfAddr, Rtnl, IFA_F_PERMANENT, RT_SCOPE_UNIVERSE};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, LinuxNetDevice};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The kernel's dev_valid_name(): at most IFNAMSIZ-1 bytes, not "." or "..",
/// no '/', ':' or whitespace. (runc 1.4 checks the same characters but lets a
/// 16-byte name through to fail at the move; refusing it here is kinder.)
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// runc 1.4's validator: a network namespace in the config (new or joined by
/// path), not rootless, and valid names on both sides.
pub fn validate(devs: &HashMap<String, LinuxNetDevice>, nss: &[LinuxNamespace]) -> Result<()> {
    if devs.is_empty() {
        return Ok(());
    }
    if !namespaces::has(nss, LinuxNamespaceType::Network) {
        bail!("linux.netDevices: unable to move network devices without a NET namespace");
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("linux.netDevices: network devices are not supported for rootless containers");
    }
    for (name, dev) in sorted(devs) {
        if !valid_name(name) {
            bail!("linux.netDevices: invalid network device name {name:?}");
        }
        if let Some(n) = dev.name().as_deref().filter(|n| !n.is_empty()) {
            if !valid_name(n) {
                bail!("linux.netDevices: invalid network device name {n:?}");
            }
        }
    }
    Ok(())
}

fn sorted(devs: &HashMap<String, LinuxNetDevice>) -> Vec<(&String, &LinuxNetDevice)> {
    let mut v: Vec<_> = devs.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// Move every device into the network namespace of `pid`. On failure the
/// caller kills init: a namespace we made then dies and the kernel disposes of
/// what was already moved (runc relies on the same).
pub fn move_all(devs: &HashMap<String, LinuxNetDevice>, pid: i32) -> Result<()> {
    if devs.is_empty() {
        return Ok(());
    }
    let ns_path = format!("/proc/{pid}/ns/net");
    let ns: OwnedFd = std::fs::File::open(&ns_path)
        .ctx(|| format!("linux.netDevices: open {ns_path}"))?
        .into();
    for (name, dev) in sorted(devs) {
        let new_name = dev.name().as_deref().filter(|n| !n.is_empty());
        move_one(name, new_name.unwrap_or(name), &ns)
            .ctx(|| format!("linux.netDevices: move netDevice {name} to namespace {ns_path}"))?;
        log::debug!("network device {name} moved into {ns_path}");
    }
    Ok(())
}

/// Down, remember its addresses, move and rename in one request, then in the
/// container's namespace: the permanent global addresses back, and up.
fn move_one(name: &str, new_name: &str, ns: &OwnedFd) -> Result<()> {
    let index = nix::net::if_::if_nametoindex(name)
        .ctx(|| format!("link not found for interface {name} on runtime namespace"))?;
    let mut nl = Rtnl::open()?;
    nl.set_up(index, false).ctx(|| "fail to set link down")?;
    // The kernel drops a device's addresses when it changes namespace.
    let addrs: Vec<IfAddr> = nl
        .addresses()
        .ctx(|| "fail to get ip addresses")?
        .into_iter()
        .filter(|a| a.index == index && keep(a))
        .collect();
    nl.move_to_netns(index, new_name, ns.as_raw_fd())
        .ctx(|| "fail to move network device")?;
    in_netns(ns, || {
        let index = nix::net::if_::if_nametoindex(new_name).ctx(|| {
            format!("link not found for interface {new_name} in the container's namespace")
        })?;
        let mut nl = Rtnl::open()?;
        for a in &addrs {
            nl.add_address(index, a)
                .ctx(|| format!("fail to set up address {a}"))?;
        }
        nl.set_up(index, true)
            .ctx(|| format!("fail to set up interface {new_name}"))
    })
}

/// runc keeps only addresses set by hand (IFA_F_PERMANENT) with global
/// scope: learned ones have lifetimes tied to the old namespace, and host or
/// link scope ones mean nothing in the new one.
fn keep(a: &IfAddr) -> bool {
    a.flags & IFA_F_PERMANENT != 0 && a.scope == RT_SCOPE_UNIVERSE
}

/// Run `f` on a thread that joined the network namespace `ns`: a netlink
/// socket belongs to the namespace it was made in, and setns on a thread of
/// its own leaves the rest of this process where it was. The thread ends
/// with `f`.
fn in_netns<T: Send>(ns: &OwnedFd, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let ns = ns.as_fd();
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .ctx(|| "setns into the container's network namespace")?;
            f()
        })
        .join()
        .unwrap_or_else(|_| bail!("network namespace thread panicked"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kernels_rules() {
        for ok in [
            "eth0",
            "dummy0",
            "a",
            "ctr_dummy0",
            "x.y",
            "123456789012345",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a\nb",
            "1234567890123456",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    fn devs(pairs: &[(&str, Option<&str>)]) -> HashMap<String, LinuxNetDevice> {
        pairs
            .iter()
            .map(|(k, v)| {
                let mut d = LinuxNetDevice::default();
                d.set_name(v.map(str::to_string));
                (k.to_string(), d)
            })
            .collect()
    }

    fn netns(path: Option<&str>) -> Vec<LinuxNamespace> {
        let mut n = LinuxNamespace::default();
        n.set_typ(LinuxNamespaceType::Network);
        n.set_path(path.map(Into::into));
        vec![n]
    }

    #[test]
    fn validation_needs_a_netns_and_valid_names() {
        let d = devs(&[("dummy0", Some("eth1"))]);
        let e = validate(&d, &[]).expect_err("no netns");
        assert!(e.message().contains("without a NET namespace"), "{e}");
        // A namespace joined by path is allowed (runc 1.4's tests do that).
        if nix::unistd::geteuid().is_root() {
            validate(&d, &netns(None)).expect("new netns");
            validate(&d, &netns(Some("/run/netns/x"))).expect("joined netns");
            let e = validate(&devs(&[("dummy0", Some("a/b"))]), &netns(None)).expect_err("bad");
            assert!(e.message().contains("invalid network device name \"a/b\""));
            let e = validate(&devs(&[("..", None)]), &netns(None)).expect_err("bad");
            assert!(e.message().contains("\"..\""), "{e}");
        }
        validate(&HashMap::new(), &[]).expect("nothing asked");
    }

    #[test]
    fn keeps_permanent_global_addresses_only() {
        let a = |flags, scope| IfAddr {
            family: 2,
            prefix_len: 32,
            flags,
            scope,
            index: 1,
            addr: vec![169, 254, 169, 77],
        };
        assert!(keep(&a(IFA_F_PERMANENT, 0)));
        assert!(!keep(&a(0, 0)), "dynamic");
        assert!(!keep(&a(IFA_F_PERMANENT, 254)), "host scope");
        assert!(!keep(&a(IFA_F_PERMANENT, 253)), "link scope");
    }
}
