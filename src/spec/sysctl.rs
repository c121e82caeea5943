//! `linux.sysctl` keys: which namespace each needs (runc's validator rules)
//! and the /proc/sys file it names. sysctl.d(5) lets a key use `/` as its
//! separator, and then a `.` is part of a name (`net/ipv4/conf/eth0.100/rp_filter`);
//! runc accepts both spellings, so we do too.

use crate::bail;
use crate::error::Result;
use crate::namespaces;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType as T};
use std::os::unix::fs::MetadataExt;

/// The key in its dotted spelling: when the first separator is `/`, dots and
/// slashes trade places (sysctl(8)).
pub fn dotted(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

/// The file under /proc for a key, relative to /proc (`sys/net/ipv4/...`).
/// Every component must be a plain name: no empty, `.` or `..` component can
/// climb out of /proc/sys.
pub fn proc_path(key: &str) -> Result<String> {
    let d = dotted(key);
    let mut path = String::from("sys");
    for part in d.split('.') {
        let name = part.replace('/', ".");
        if name.is_empty() || name == "." || name == ".." {
            bail!("sysctl {key:?} is not a valid name");
        }
        path.push('/');
        path.push_str(&name);
    }
    Ok(path)
}

const IPC: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// runc's rules (validator.go `sysctl`, same words as runc 1.1.5): ipc keys
/// need a new IPC namespace, net.* a network namespace that is not the
/// runtime's own, kernel.domainname a UTS namespace, kernel.hostname is
/// refused for the `hostname` field; everything else is host-wide.
/// (runc 1.2+ also allows user.* with a user namespace; 1.1.5 refuses it.)
pub fn validate(key: &str, nss: &[LinuxNamespace]) -> Result<()> {
    proc_path(key)?;
    let s = dotted(key);
    if IPC.contains(&s.as_str()) || s.starts_with("fs.mqueue.") {
        if !namespaces::has(nss, T::Ipc) {
            bail!("sysctl {s:?} is not allowed in the hosts ipc namespace");
        }
        return Ok(());
    }
    if s.starts_with("net.") {
        if host_netns(nss)? {
            bail!("sysctl {s:?} not allowed in host network namespace");
        }
        return Ok(());
    }
    if namespaces::has(nss, T::Uts) {
        match s.as_str() {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                bail!("sysctl {s:?} is not allowed as it conflicts with the OCI \"hostname\" field")
            }
            _ => {}
        }
    }
    bail!("sysctl {s:?} is not in a separate kernel namespace")
}

/// No network namespace, or a path to the one the runtime itself is in
/// ("host" meaning "current", as runc reads it).
fn host_netns(nss: &[LinuxNamespace]) -> Result<bool> {
    let Some(ns) = nss.iter().find(|n| n.typ() == T::Network) else {
        return Ok(true);
    };
    let Some(path) = ns.path().as_ref().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(false);
    };
    let stat = |p: &std::path::Path| -> Result<(u64, u64)> {
        match std::fs::metadata(p) {
            Ok(m) => Ok((m.dev(), m.ino())),
            Err(e) => bail!("invalid netns path: stat {}: {e}", p.display()),
        }
    };
    Ok(stat(path)? == stat(std::path::Path::new("/proc/self/ns/net"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nss(v: serde_json::Value) -> Vec<LinuxNamespace> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn slash_spelling() {
        assert_eq!(dotted("net/ipv4/ip_forward"), "net.ipv4.ip_forward");
        assert_eq!(
            dotted("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
        assert_eq!(
            proc_path("net/ipv4/conf/eno2.100/rp_filter").unwrap(),
            "sys/net/ipv4/conf/eno2.100/rp_filter"
        );
        assert_eq!(proc_path("kernel.shmmax").unwrap(), "sys/kernel/shmmax");
        for bad in ["net..x", "net/../x", "net.x/../y", "", "net.", "net/./x"] {
            assert!(proc_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespace_rules() {
        let ipc = nss(serde_json::json!([{"type": "ipc"}]));
        assert!(validate("kernel.shmmax", &ipc).is_ok());
        assert!(validate("fs.mqueue.queues_max", &ipc).is_ok());
        assert!(validate("net.ipv4.ip_forward", &ipc).is_err());
        assert!(validate("kernel.panic", &ipc).is_err());
        let net = nss(serde_json::json!([{"type": "network"}]));
        assert!(validate("net/ipv4/ip_forward", &net).is_ok());
        let uts = nss(serde_json::json!([{"type": "uts"}]));
        assert!(validate("kernel.domainname", &uts).is_ok());
        let e = validate("kernel.hostname", &uts).unwrap_err();
        assert!(e.message().contains("conflicts"), "{}", e.message());
        let hostnet = nss(serde_json::json!([{"type": "network", "path": "/proc/self/ns/net"}]));
        assert!(validate("net.ipv4.ip_forward", &hostnet).is_err());
    }
}
