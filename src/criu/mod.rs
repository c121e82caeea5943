//! Checkpoint and restore through CRIU's RPC interface (`criu swrk`), as
//! runc's libcontainer drives it: the request options, the mounts CRIU must
//! treat as external, and the namespaces joined by path.

pub mod check;
pub mod externals;
pub mod swrk;

use crate::bail;
use crate::error::Result;
use rust_criu::rust_criu_protobuf::rpc::Criu_cg_mode;
use std::path::PathBuf;

/// What the user asked for with runc's checkpoint/restore flags.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    /// Relative to the image path (checked by the caller).
    pub parent_path: Option<String>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub status_fd: i32,
    pub page_server: Option<(String, i32)>,
    pub manage_cgroups_mode: Criu_cg_mode,
    /// CLONE_NEW* bits of namespaces CRIU creates empty.
    pub empty_ns: u32,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

/// `--manage-cgroups-mode`: runc's names (empty means CRIU's default).
pub fn cg_mode(s: &str) -> Result<Criu_cg_mode> {
    Ok(match s {
        "" => Criu_cg_mode::DEFAULT,
        "soft" => Criu_cg_mode::SOFT,
        "full" => Criu_cg_mode::FULL,
        "strict" => Criu_cg_mode::STRICT,
        "ignore" => Criu_cg_mode::IGNORE,
        _ => bail!("invalid manage-cgroups-mode value {s:?}: use soft, full, strict or ignore"),
    })
}

/// `--page-server ADDRESS:PORT` (an IPv6 address in brackets).
pub fn page_server(s: &str) -> Result<(String, i32)> {
    const USAGE: &str = "Use --page-server ADDRESS:PORT to specify page server";
    let Some((addr, port)) = s.rsplit_once(':') else {
        bail!("{USAGE}");
    };
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    if addr.is_empty() || port.is_empty() || addr.contains(':') && !s.starts_with('[') {
        bail!("{USAGE}");
    }
    match port.parse::<u16>() {
        Ok(p) => Ok((addr.to_string(), i32::from(p))),
        Err(_) => bail!("Invalid port number {port:?}"),
    }
}

/// `--empty-ns`: runc knows only "network"; CRIU always gets the network
/// namespace empty (runc does not manage network devices), so the mask
/// starts with CLONE_NEWNET whatever is given.
pub fn empty_ns(names: &[String]) -> Result<u32> {
    let mut mask = libc::CLONE_NEWNET as u32;
    for n in names {
        match n.as_str() {
            "network" => mask |= libc::CLONE_NEWNET as u32,
            other => bail!("namespace {other:?} is not supported"),
        }
    }
    Ok(mask)
}

/// runc's key for a namespace CRIU treats as external: "extRoot" + the
/// capitalised namespace name + "NS" (extRootNetNS, extRootPidNS).
pub fn ns_key(name: &str) -> String {
    let mut c = name.chars();
    let cap: String = c
        .next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default();
    format!("extRoot{cap}NS")
}

/// The CRIU configuration file runc asks for: the `org.criu.config`
/// annotation if set (empty: none at all), else /etc/criu/runc.conf.
pub fn config_file(annotations: &std::collections::BTreeMap<String, String>) -> Option<String> {
    match annotations.get("org.criu.config") {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None => Some("/etc/criu/runc.conf".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_modes() {
        assert_eq!(cg_mode("").unwrap(), Criu_cg_mode::DEFAULT);
        assert_eq!(cg_mode("soft").unwrap(), Criu_cg_mode::SOFT);
        assert_eq!(cg_mode("strict").unwrap(), Criu_cg_mode::STRICT);
        assert!(cg_mode("hard")
            .unwrap_err()
            .message()
            .contains("manage-cgroups-mode"));
    }

    #[test]
    fn page_server_addresses() {
        assert_eq!(page_server("10.0.0.1:27").unwrap(), ("10.0.0.1".into(), 27));
        assert_eq!(page_server("[::1]:27").unwrap(), ("::1".into(), 27));
        assert!(page_server("10.0.0.1").is_err());
        assert!(page_server(":27").is_err());
        assert!(page_server("h:port")
            .unwrap_err()
            .message()
            .contains("Invalid port"));
    }

    #[test]
    fn empty_ns_always_has_network() {
        assert_eq!(empty_ns(&[]).unwrap(), libc::CLONE_NEWNET as u32);
        assert_eq!(
            empty_ns(&["network".into()]).unwrap(),
            libc::CLONE_NEWNET as u32
        );
        assert!(empty_ns(&["pid".into()]).is_err());
    }

    #[test]
    fn keys_and_config() {
        assert_eq!(ns_key("net"), "extRootNetNS");
        assert_eq!(ns_key("pid"), "extRootPidNS");
        let mut a = std::collections::BTreeMap::new();
        assert_eq!(config_file(&a).as_deref(), Some("/etc/criu/runc.conf"));
        a.insert("org.criu.config".into(), String::new());
        assert_eq!(config_file(&a), None);
        a.insert("org.criu.config".into(), "/x.conf".into());
        assert_eq!(config_file(&a).as_deref(), Some("/x.conf"));
    }
}
