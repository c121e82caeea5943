//! `features`: the runtime-spec features document (features.md), built from
//! what this binary really handles: mount options are checked against the
//! option parser, seccomp actions and architectures against the linked
//! libseccomp, so the answer cannot drift from the code.

use crate::container::Globals;
use crate::error::{Context, Result};
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_g: &Globals, _a: Args) -> Result<i32> {
    let doc = serde_json::to_string_pretty(&features()).ctx(|| "encode features")?;
    super::out::line(&doc)?;
    Ok(0)
}

/// Every option name runc or the runtime-spec knows; only those our parser
/// turns into flags (rather than passing them on as filesystem data) are listed.
const MOUNT_OPTION_CANDIDATES: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

fn mount_options() -> Vec<&'static str> {
    MOUNT_OPTION_CANDIDATES
        .iter()
        .copied()
        .filter(|o| {
            crate::rootfs::options::parse(&[o.to_string()])
                .data
                .is_empty()
        })
        .collect()
}

fn capabilities() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// The architectures the linked libseccomp can put in a filter.
fn seccomp_archs() -> Vec<&'static str> {
    use libseccomp::{ScmpAction, ScmpArch, ScmpFilterContext};
    use std::str::FromStr;
    SECCOMP_ARCHS
        .iter()
        .copied()
        .filter(|name| {
            let Ok(arch) = ScmpArch::from_str(name) else {
                return false;
            };
            let Ok(mut ctx) = ScmpFilterContext::new(ScmpAction::Allow) else {
                return false;
            };
            if arch == ScmpArch::native() {
                return true;
            }
            // One filter holds one byte order: take the native arch out first,
            // so big-endian archs are judged on their own.
            ctx.remove_arch(ScmpArch::native()).is_ok() && ctx.add_arch(arch).is_ok()
        })
        .collect()
}

/// SCMP_ACT_NOTIFY needs API level 6 (kernel and libseccomp support for the
/// notify fd), KILL_PROCESS and LOG level 3.
fn seccomp_actions() -> Vec<&'static str> {
    let api = libseccomp::get_api();
    SECCOMP_ACTIONS
        .iter()
        .copied()
        .filter(|a| match *a {
            "SCMP_ACT_NOTIFY" => api >= 6,
            "SCMP_ACT_KILL_PROCESS" | "SCMP_ACT_LOG" => api >= 3,
            _ => true,
        })
        .collect()
}

const SECCOMP_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The flags a profile may name that this libseccomp (and its view of the
/// kernel) accepts: each is tried on a real filter through the same code
/// that builds the container's filter, so the list cannot claim more.
fn seccomp_supported_flags() -> Vec<&'static str> {
    SECCOMP_FLAGS
        .iter()
        .copied()
        .filter(|f| {
            let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [f]});
            serde_json::from_value(profile)
                .ok()
                .is_some_and(|p| crate::security::seccomp::build(&p).is_ok())
        })
        .collect()
}

/// Every mode and flag `linux.memoryPolicy` takes, by what the config parser
/// and security::mempolicy accept (runc 1.4 lists them sorted).
fn memory_policy() -> Value {
    let accepted = |mode: &str, flags: &[&str]| {
        let nodes = if mode == "MPOL_DEFAULT" || mode == "MPOL_LOCAL" {
            ""
        } else {
            "0"
        };
        let v = json!({"mode": mode, "nodes": nodes, "flags": flags});
        serde_json::from_value::<oci_spec::runtime::LinuxMemoryPolicy>(v)
            .ok()
            .is_some_and(|p| crate::security::mempolicy::validate(&p).is_ok())
    };
    let modes: Vec<&str> = [
        "MPOL_BIND",
        "MPOL_DEFAULT",
        "MPOL_INTERLEAVE",
        "MPOL_LOCAL",
        "MPOL_PREFERRED",
        "MPOL_PREFERRED_MANY",
        "MPOL_WEIGHTED_INTERLEAVE",
    ]
    .into_iter()
    .filter(|m| accepted(m, &[]))
    .collect();
    let flags: Vec<&str> = [
        "MPOL_F_NUMA_BALANCING",
        "MPOL_F_RELATIVE_NODES",
        "MPOL_F_STATIC_NODES",
    ]
    .into_iter()
    .filter(|f| accepted("MPOL_BIND", &[f]))
    .collect();
    json!({"modes": modes, "flags": flags})
}

/// Annotations skiff acts on that could change the container's security
/// (runc lists "bundle", "org.systemd.property." and "org.criu.config"):
/// checkpoint and restore hand "org.criu.config" to CRIU as its config file.
const POTENTIALLY_UNSAFE_ANNOTATIONS: &[&str] = &["org.criu.config"];

pub fn features() -> Value {
    let version = libseccomp::ScmpVersion::current()
        .map(|v| v.to_string())
        .unwrap_or_default();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::container::state::OCI_VERSION,
        "hooks": [
            "prestart", "createRuntime", "createContainer", "startContainer", "poststart",
            "poststop"
        ],
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": capabilities(),
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": seccomp_actions(),
                "operators": SECCOMP_OPERATORS,
                "archs": seccomp_archs(),
                "knownFlags": SECCOMP_FLAGS,
                "supportedFlags": seccomp_supported_flags(),
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            // resctrl groups at create (src/intelrdt.rs), as runc 1.4+; a
            // host without resctrl refuses the config, as runc does.
            "intelRdt": {"enabled": true, "schemata": true, "monitoring": true},
            "memoryPolicy": memory_policy(),
            // Moved into the container's netns at create (src/netdev.rs), as runc 1.4+.
            "netDevices": {"enabled": true},
            // Idmapped bind mounts are made (rootfs/idmap.rs), as runc 1.2+ reports.
            "mountExtensions": {"idmap": {"enabled": true}},
        },
        "potentiallyUnsafeConfigAnnotations": POTENTIALLY_UNSAFE_ANNOTATIONS,
        "annotations": {
            "io.github.seccomp.libseccomp.version": version,
            // checkpoint/restore through CRIU's RPC (criu swrk); whether CRIU
            // works on this host is for `criu check` to say.
            "org.opencontainers.runc.checkpoint.enabled": "true",
            "org.skiff.version": env!("CARGO_PKG_VERSION"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_has_the_spec_fields() {
        let f = features();
        assert_eq!(f["ociVersionMin"], "1.0.0");
        assert_eq!(f["hooks"].as_array().unwrap().len(), 6);
        let opts: Vec<&str> = f["mountOptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for o in ["bind", "rbind", "ro", "nosuid", "rprivate", "tmpcopyup"] {
            assert!(opts.contains(&o), "{o} missing from {opts:?}");
        }
        assert!(!opts.contains(&"acl"), "acl is filesystem data, not a flag");
        let caps = f["linux"]["capabilities"].as_array().unwrap();
        assert_eq!(caps[0], "CAP_CHOWN");
        // A user's --systemd-cgroup runs in its own systemd instance
        // (cgroups/systemd/dbus.rs, the VM lane's rootless test); runc says true.
        assert_eq!(f["linux"]["cgroup"]["systemdUser"], true);
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        let archs = f["linux"]["seccomp"]["archs"].as_array().unwrap();
        assert!(archs.iter().any(|a| a == "SCMP_ARCH_X86_64"));
        let sec = &f["linux"]["seccomp"];
        assert_eq!(sec["knownFlags"].as_array().unwrap().len(), 4);
        assert!(sec["supportedFlags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "SECCOMP_FILTER_FLAG_LOG"));
        let mp = &f["linux"]["memoryPolicy"];
        assert_eq!(mp["modes"].as_array().unwrap().len(), 7, "{mp}");
        assert_eq!(mp["flags"].as_array().unwrap().len(), 3, "{mp}");
        assert!(f["linux"]["seccomp"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "SCMP_ACT_ERRNO"));
    }
}
