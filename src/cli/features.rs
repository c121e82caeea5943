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
    println!("{doc}");
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
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": seccomp_actions(),
                "operators": SECCOMP_OPERATORS,
                "archs": seccomp_archs(),
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": mount_options().contains(&"idmap")}},
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": version,
            "org.opencontainers.runc.checkpoint.enabled": "false",
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
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        let archs = f["linux"]["seccomp"]["archs"].as_array().unwrap();
        assert!(archs.iter().any(|a| a == "SCMP_ARCH_X86_64"));
        assert!(f["linux"]["seccomp"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "SCMP_ACT_ERRNO"));
    }
}
