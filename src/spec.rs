//! Loading and validating config.json, and the default spec `skiff spec` writes.

use crate::bail;
use crate::error::{Context, Result};
use crate::namespaces;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

pub mod sysctl;
mod version;

/// Read `<bundle>/config.json`; errors name the file and the JSON position.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => bail!("load config {}: {e}", path.display()),
    };
    let spec = parse(&data).ctx(|| format!("parse config {}", path.display()))?;
    validate(&spec).ctx(|| format!("invalid config {}", path.display()))?;
    Ok(spec)
}

/// Parse config.json, after `spec_fixups`. The bytes are read once, into a
/// JSON value the fixups work on and the spec is then taken from; where
/// nothing needed fixing, an error comes from parsing the bytes again, so it
/// keeps serde's line and column.
pub fn parse(data: &[u8]) -> Result<Spec> {
    let json_err = |e: serde_json::Error| crate::error::Error::new(e.to_string());
    let mut v = serde_json::from_slice::<serde_json::Value>(data).map_err(json_err)?;
    let changed = match v.get_mut("process") {
        Some(p) => process_fixups(p)?,
        None => false,
    };
    match serde_json::from_value(v) {
        Ok(spec) => Ok(spec),
        Err(e) if changed => Err(json_err(e)),
        Err(_) => serde_json::from_slice(data).map_err(json_err),
    }
}

/// What the spec types cannot read as the runtime-spec and runc mean it,
/// fixed in a JSON process object (config.json's, or exec's process.json)
/// before it is parsed; returns whether anything changed:
/// - capability names that are not exactly a capability's name make the
///   types refuse the file or (`cap_kill`) read as another, but runc (1.1+,
///   runtime-spec 1.1+) ignores them with a warning: they are taken out;
/// - scheduler flags spelled as the runtime-spec spells them.
pub fn process_fixups(process: &mut serde_json::Value) -> Result<bool> {
    use crate::security::{capabilities, task};
    let gone = process
        .get_mut("capabilities")
        .map(capabilities::strip_unknown)
        .unwrap_or_default();
    if !gone.is_empty() {
        log::warn!("{}", capabilities::unknown_warning(&gone));
    }
    let sched = match process.get_mut("scheduler") {
        Some(s) => task::spec_flags_to_crate(s)?,
        None => false,
    };
    Ok(!gone.is_empty() || sched)
}

/// The absolute rootfs path (root.path is relative to the bundle when relative).
pub fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let Some(root) = spec.root() else {
        bail!("root must be set");
    };
    let p = root.path();
    let abs = if p.is_absolute() {
        p.clone()
    } else {
        bundle.join(p)
    };
    std::fs::canonicalize(&abs).ctx(|| format!("rootfs {}", abs.display()))
}

/// What the runtime-spec says MUST be rejected, with the field named.
pub fn validate(spec: &Spec) -> Result<()> {
    if spec.version().is_empty() {
        bail!("ociVersion must be set");
    }
    version::check(spec.version())?;
    if spec.root().is_none() {
        bail!("root must be set");
    }
    let Some(process) = spec.process() else {
        bail!("process must be set");
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("process.args must not be empty");
    }
    if !process.cwd().is_absolute() {
        bail!("process.cwd {:?} must be an absolute path", process.cwd());
    }
    validate_user(process.user())?;
    validate_env(process.env().as_deref().unwrap_or_default())?;
    validate_hook_timeouts(spec.hooks().as_ref())?;
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if m.destination().as_os_str().is_empty() {
            bail!("mounts: destination must be set");
        }
    }
    crate::rootfs::idmap::check(spec)?;
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    namespaces::plan(&nss)?;
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !namespaces::has(&nss, LinuxNamespaceType::Uts)
    {
        bail!("hostname requires a UTS namespace");
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !namespaces::has(&nss, LinuxNamespaceType::Uts)
    {
        bail!("domainname requires a UTS namespace");
    }
    if let Some(linux) = spec.linux() {
        // runc's validator: masking and read-only paths would change the host.
        let restricts = linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty())
            || linux
                .readonly_paths()
                .as_ref()
                .is_some_and(|p| !p.is_empty());
        if restricts && !namespaces::has(&nss, LinuxNamespaceType::Mount) {
            bail!("linux.maskedPaths/readonlyPaths: unable to restrict sys entries without a private MNT namespace");
        }
        crate::rootfs::devices::check_spec(linux.devices().as_deref().unwrap_or_default())?;
        let has_user = namespaces::has(&nss, LinuxNamespaceType::User);
        let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if maps && !has_user {
            bail!("uid/gid mappings require a user namespace");
        }
        if let Some(sysctl) = linux.sysctl() {
            for key in sysctl.keys() {
                sysctl::validate(key, &nss)?;
            }
        }
        validate_time_offsets(linux, &nss)?;
        validate_unsupported(linux, &nss)?;
    }
    if let Some(rl) = process.rlimits() {
        for r in rl {
            if r.soft() > r.hard() {
                bail!(
                    "rlimit {:?}: soft limit {} exceeds hard limit {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                );
            }
        }
    }
    Ok(())
}

/// Each entry `NAME=value` with a name, as runc's init checks them (it
/// refuses the container rather than pass execve a malformed environment).
fn validate_env(env: &[String]) -> Result<()> {
    for kv in env {
        match kv.split_once('=') {
            None => bail!("process.env: invalid environment variable: {kv:?}"),
            Some(("", _)) => bail!("process.env: environment variable name can't be empty: {kv:?}"),
            Some(_) => {}
        }
    }
    Ok(())
}

/// runtime-spec (config.md, hooks): "timeout ... MUST be greater than zero".
/// runc 1.1.5 runs such a hook with no time at all and fails it.
fn validate_hook_timeouts(hooks: Option<&oci_spec::runtime::Hooks>) -> Result<()> {
    use crate::hooks::Kind;
    let kinds = [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
        Kind::Poststart,
        Kind::Poststop,
    ];
    for kind in kinds {
        for (i, h) in crate::hooks::of_kind(hooks, kind).iter().enumerate() {
            if let Some(t) = h.timeout().filter(|t| *t <= 0) {
                bail!(
                    "hooks.{}[{i}].timeout: {t} must be greater than zero",
                    kind.name()
                );
            }
        }
    }
    Ok(())
}

/// runc 1.2+'s rules (1.1.5 has no time namespace support): offsets need a
/// new time namespace; a joined one already has its clocks, so offsets for
/// it are refused rather than dropped.
fn validate_time_offsets(
    linux: &oci_spec::runtime::Linux,
    nss: &[oci_spec::runtime::LinuxNamespace],
) -> Result<()> {
    let offsets = linux.time_offsets().is_some();
    match nss.iter().find(|n| n.typ() == LinuxNamespaceType::Time) {
        None if offsets => bail!(
            "linux.timeOffsets: time namespace offsets specified, but time namespace isn't enabled in the config"
        ),
        Some(n) if offsets && n.path().as_ref().is_some_and(|p| !p.as_os_str().is_empty()) => bail!(
            "linux.timeOffsets: time namespace enabled, but both namespace path and time offsets specified -- you may only provide one"
        ),
        _ => Ok(()),
    }
}

/// Fields skiff cannot honour here: refused by name, never dropped.
fn validate_unsupported(
    linux: &oci_spec::runtime::Linux,
    nss: &[oci_spec::runtime::LinuxNamespace],
) -> Result<()> {
    // runc 1.4+ refuses intelRdt when resctrl is not there (1.1.5 names the
    // schema field first); the group is made at create (launch).
    if let Some(r) = linux.intel_rdt() {
        let root = crate::intelrdt::detect();
        crate::intelrdt::validate(r, root.as_deref().map_err(String::as_str))?;
    }
    if let Some(devs) = linux.net_devices() {
        crate::netdev::validate(devs, nss)?;
    }
    Ok(())
}

/// IDs beyond 2^31-1 are refused as runc refuses them: (uid_t)-1 would make
/// setresuid(-1) keep the current (root) identity instead of switching.
pub fn validate_user(u: &oci_spec::runtime::User) -> Result<()> {
    const MAX: u32 = i32::MAX as u32;
    let gids = u.additional_gids().clone().unwrap_or_default();
    if u.uid() > MAX || u.gid() > MAX || gids.iter().any(|g| *g > MAX) {
        bail!(
            "process.user: uids and gids must be in range 0-{MAX} (uid {}, gid {}, additionalGids {:?})",
            u.uid(),
            u.gid(),
            gids
        );
    }
    Ok(())
}

/// The config.json `skiff spec` writes: the same container runc's `spec` describes.
pub fn default_spec(rootless: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "ociVersion": crate::container::state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "skiff",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let linux = &mut v["linux"];
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = serde_json::json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "cgroup"}, {"type": "user"}
        ]);
        linux.as_object_mut().map(|o| o.remove("resources"));
        if let Some(mounts) = v["mounts"].as_array_mut() {
            mounts.retain(|m| m["destination"] != "/sys" && m["destination"] != "/sys/fs/cgroup");
            mounts.push(
                serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
            );
            for m in mounts.iter_mut() {
                if m["destination"] == "/dev/pts" {
                    m["options"] = serde_json::json!([
                        "nosuid",
                        "noexec",
                        "newinstance",
                        "ptmxmode=0666",
                        "mode=0620"
                    ]);
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_and_validates() {
        for rootless in [false, true] {
            let spec: Spec = serde_json::from_value(default_spec(rootless)).unwrap();
            validate(&spec).unwrap();
        }
    }

    #[test]
    fn hostname_without_uts_is_refused() {
        let mut v = default_spec(false);
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
        let spec: Spec = serde_json::from_value(v).unwrap();
        assert!(validate(&spec).unwrap_err().message().contains("UTS"));
    }

    #[test]
    fn out_of_range_ids_refused() {
        for (uid, gid) in [
            (4_294_967_295u32, 0u32),
            (0, 4_294_967_295),
            (2_147_483_648, 0),
        ] {
            let mut v = default_spec(false);
            v["process"]["user"] = serde_json::json!({"uid": uid, "gid": gid});
            let spec: Spec = serde_json::from_value(v).unwrap();
            assert!(
                validate(&spec).unwrap_err().message().contains("range"),
                "{uid} {gid}"
            );
        }
    }

    #[test]
    fn empty_args_refused() {
        let mut v = default_spec(false);
        v["process"]["args"] = serde_json::json!([]);
        let spec: Spec = serde_json::from_value(v).unwrap();
        assert!(validate(&spec)
            .unwrap_err()
            .message()
            .contains("process.args"));
    }

    #[test]
    fn time_offsets_need_a_new_time_namespace() {
        let offs = serde_json::json!({"monotonic": {"secs": 1}});
        for (nss, ok) in [
            (serde_json::json!([{"type": "mount"}]), false),
            (
                serde_json::json!([{"type": "time", "path": "/proc/self/ns/time"}]),
                false,
            ),
            // With a mount namespace: the default config masks paths.
            (
                serde_json::json!([{"type": "mount"}, {"type": "time"}]),
                true,
            ),
        ] {
            let mut v = default_spec(false);
            v["linux"]["namespaces"] = nss.clone();
            v["linux"]["timeOffsets"] = offs.clone();
            v.as_object_mut().map(|o| o.remove("hostname"));
            let spec: Spec = serde_json::from_value(v).unwrap();
            assert_eq!(validate(&spec).is_ok(), ok, "{nss}");
        }
    }

    /// Each change to the default config and whether validate accepts it.
    fn accepts(edit: impl Fn(&mut serde_json::Value)) -> std::result::Result<(), String> {
        let mut v = default_spec(false);
        edit(&mut v);
        let spec: Spec = serde_json::from_value(v).map_err(|e| e.to_string())?;
        validate(&spec).map_err(|e| e.message().to_string())
    }

    #[test]
    fn env_entries_need_a_name_and_an_equals_sign() {
        assert!(accepts(|v| v["process"]["env"] = serde_json::json!(["A=", "B=1=2"])).is_ok());
        let e = accepts(|v| v["process"]["env"] = serde_json::json!(["JUSTNAME"])).unwrap_err();
        assert!(
            e.contains("invalid environment variable: \"JUSTNAME\""),
            "{e}"
        );
        let e = accepts(|v| v["process"]["env"] = serde_json::json!(["=x"])).unwrap_err();
        assert!(e.contains("name can't be empty"), "{e}");
    }

    #[test]
    fn hook_timeouts_must_be_positive() {
        let hook = |t: i64| serde_json::json!({"poststop": [{"path": "/bin/true", "timeout": t}]});
        assert!(accepts(|v| v["hooks"] = hook(1)).is_ok());
        for t in [0, -5] {
            let e = accepts(|v| v["hooks"] = hook(t)).unwrap_err();
            assert!(e.contains("hooks.poststop[0].timeout"), "{e}");
        }
    }

    #[test]
    fn masked_paths_need_a_mount_namespace() {
        let e = accepts(|v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "uts"}])
        })
        .unwrap_err();
        assert!(e.contains("without a private MNT namespace"), "{e}");
        assert!(accepts(|v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "uts"}]);
            v["linux"]["maskedPaths"] = serde_json::json!([]);
            v["linux"]["readonlyPaths"] = serde_json::json!([]);
        })
        .is_ok());
    }
}
