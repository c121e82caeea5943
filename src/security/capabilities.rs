//! Capability sets from `process.capabilities`.
//!
//! The runtime-spec (config.md, "capabilities"): a value that cannot be mapped
//! to a kernel capability or cannot be granted MUST be logged as a warning, and
//! the runtime SHOULD NOT fail. So a capability past the kernel's last one, or
//! one missing from the bounding set we run with (CAP_SYS_RESOURCE on hosts
//! that dropped it), or one the kernel's set rules make impossible (effective
//! outside permitted, ambient outside permitted and inheritable) is left out,
//! and `plan` says why. A name that is no capability at all, like "CAP_TEST",
//! is taken out of the JSON before it is parsed (`strip_unknown`) and warned
//! about in runc's words (runc 1.1+: "ignoring unknown or unavailable
//! capabilities: [CAP_TEST]"). Ambient capabilities that cannot be raised are
//! dropped silently, as runc drops them.
//!
//! Order around the uid switch (process/setup.rs):
//! `drop_bounding` (needs CAP_SETPCAP, so before anything is dropped) ->
//! `keep_caps_across_setuid` -> setresuid -> `apply` (inheritable, effective,
//! permitted, then ambient, which must be a subset of the other two).

use crate::error::{Context, Result};
use crate::sys::task;
use caps::{CapSet, Capability as K};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// The kernel number of each capability the spec can name.
pub fn number(c: Capability) -> u32 {
    kernel_cap(c).index() as u32
}

fn kernel_cap(c: Capability) -> K {
    use Capability as C;
    match c {
        C::AuditControl => K::CAP_AUDIT_CONTROL,
        C::AuditRead => K::CAP_AUDIT_READ,
        C::AuditWrite => K::CAP_AUDIT_WRITE,
        C::BlockSuspend => K::CAP_BLOCK_SUSPEND,
        C::Bpf => K::CAP_BPF,
        C::CheckpointRestore => K::CAP_CHECKPOINT_RESTORE,
        C::Chown => K::CAP_CHOWN,
        C::DacOverride => K::CAP_DAC_OVERRIDE,
        C::DacReadSearch => K::CAP_DAC_READ_SEARCH,
        C::Fowner => K::CAP_FOWNER,
        C::Fsetid => K::CAP_FSETID,
        C::IpcLock => K::CAP_IPC_LOCK,
        C::IpcOwner => K::CAP_IPC_OWNER,
        C::Kill => K::CAP_KILL,
        C::Lease => K::CAP_LEASE,
        C::LinuxImmutable => K::CAP_LINUX_IMMUTABLE,
        C::MacAdmin => K::CAP_MAC_ADMIN,
        C::MacOverride => K::CAP_MAC_OVERRIDE,
        C::Mknod => K::CAP_MKNOD,
        C::NetAdmin => K::CAP_NET_ADMIN,
        C::NetBindService => K::CAP_NET_BIND_SERVICE,
        C::NetBroadcast => K::CAP_NET_BROADCAST,
        C::NetRaw => K::CAP_NET_RAW,
        C::Perfmon => K::CAP_PERFMON,
        C::Setgid => K::CAP_SETGID,
        C::Setfcap => K::CAP_SETFCAP,
        C::Setpcap => K::CAP_SETPCAP,
        C::Setuid => K::CAP_SETUID,
        C::SysAdmin => K::CAP_SYS_ADMIN,
        C::SysBoot => K::CAP_SYS_BOOT,
        C::SysChroot => K::CAP_SYS_CHROOT,
        C::SysModule => K::CAP_SYS_MODULE,
        C::SysNice => K::CAP_SYS_NICE,
        C::SysPacct => K::CAP_SYS_PACCT,
        C::SysPtrace => K::CAP_SYS_PTRACE,
        C::SysRawio => K::CAP_SYS_RAWIO,
        C::SysResource => K::CAP_SYS_RESOURCE,
        C::SysTime => K::CAP_SYS_TIME,
        C::SysTtyConfig => K::CAP_SYS_TTY_CONFIG,
        C::Syslog => K::CAP_SYSLOG,
        C::WakeAlarm => K::CAP_WAKE_ALARM,
    }
}

/// The five sets to install, as bit masks by capability number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    /// The kernel's highest capability number.
    pub last_cap: u32,
}

/// What this process could grant: its own bounding set and last capability.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    pub grantable: u64,
    pub last_cap: u32,
}

impl Host {
    /// Probe the bounding set with PR_CAPBSET_READ (which also finds the last
    /// capability: the kernel answers EINVAL past it), without trusting any file.
    pub fn probe() -> Host {
        let mut grantable = 0u64;
        let mut last_cap = 0;
        for n in 0..64u32 {
            match task::capbset_read(n) {
                Some(has) => {
                    last_cap = n;
                    if has {
                        grantable |= 1 << n;
                    }
                }
                None => break,
            }
        }
        Host {
            grantable,
            last_cap,
        }
    }

    /// A process entering a user namespace gets every capability in it, its
    /// bounding set included: predict that for the parent's warnings.
    pub fn in_new_userns(self) -> Host {
        Host {
            grantable: mask_upto(self.last_cap),
            last_cap: self.last_cap,
        }
    }
}

fn mask_upto(last: u32) -> u64 {
    if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

fn name(n: u32) -> String {
    caps::all()
        .into_iter()
        .find(|k| u32::from(k.index()) == n)
        .map(|k| k.to_string())
        .unwrap_or_else(|| format!("capability {n}"))
}

fn names(mask: u64) -> String {
    let v: Vec<String> = (0..64).filter(|n| mask & (1 << n) != 0).map(name).collect();
    v.join(", ")
}

/// One configured set, keeping what the host can grant; warnings say what not.
/// Capabilities past the kernel's last one go into `unknown` (one warning for
/// all sets, as runc gives).
fn filter(
    set: &Option<Capabilities>,
    what: &str,
    host: Host,
    unknown: &mut u64,
    warnings: &mut Vec<String>,
) -> u64 {
    let mut mask = 0u64;
    let mut missing = 0u64;
    for c in set.iter().flatten() {
        let n = number(*c);
        if n > host.last_cap {
            *unknown |= 1 << n;
        } else if host.grantable & (1 << n) == 0 {
            missing |= 1 << n;
        } else {
            mask |= 1 << n;
        }
    }
    if missing != 0 {
        warnings.push(format!(
            "{what} capabilities not in the runtime's bounding set, cannot be granted, ignored: {}",
            names(missing)
        ));
    }
    mask
}

/// The sets to install for `c` on `host`, and a warning for each capability
/// that had to be left out.
pub fn plan(c: &LinuxCapabilities, host: Host) -> (Plan, Vec<String>) {
    let mut w = Vec::new();
    let mut unknown = 0u64;
    let bounding = filter(c.bounding(), "bounding", host, &mut unknown, &mut w);
    let mut inheritable = filter(c.inheritable(), "inheritable", host, &mut unknown, &mut w);
    let permitted = filter(c.permitted(), "permitted", host, &mut unknown, &mut w);
    let mut effective = filter(c.effective(), "effective", host, &mut unknown, &mut w);
    let mut ambient = filter(c.ambient(), "ambient", host, &mut unknown, &mut w);
    if unknown != 0 {
        let mut v: Vec<String> = (0..64)
            .filter(|n| unknown & (1 << n) != 0)
            .map(name)
            .collect();
        v.sort();
        w.insert(0, unknown_warning(&v));
    }
    // capset(2): a new inheritable capability must be in the bounding set.
    let extra = inheritable & !bounding;
    if extra != 0 {
        w.push(format!(
            "inheritable capabilities outside the bounding set, ignored: {}",
            names(extra)
        ));
        inheritable &= bounding;
    }
    // capset(2): effective must be a subset of permitted.
    let extra = effective & !permitted;
    if extra != 0 {
        w.push(format!(
            "effective capabilities not in the permitted set, ignored: {}",
            names(extra)
        ));
        effective &= permitted;
    }
    // PR_CAP_AMBIENT_RAISE: only what is both permitted and inheritable; the
    // rest is dropped without a word, as runc drops it (it ignores the raise's
    // EPERM), since configs routinely list ambient caps that cannot be had.
    ambient &= permitted & inheritable;
    let p = Plan {
        bounding,
        effective,
        permitted,
        inheritable,
        ambient,
        last_cap: host.last_cap,
    };
    (p, w)
}

/// runc's warning for capability names it cannot map (sorted, deduplicated).
pub fn unknown_warning(sorted: &[String]) -> String {
    format!(
        "ignoring unknown or unavailable capabilities: [{}]",
        sorted.join(" ")
    )
}

/// The capability `name` spells exactly (runc's map has only `CAP_...` in
/// capitals; the spec types would also read `kill` or `cap_kill`).
pub fn exact(name: &str) -> Option<Capability> {
    let c: Capability = serde_json::from_value(serde_json::Value::String(name.into())).ok()?;
    let back = serde_json::to_value(c).ok()?;
    (back.as_str() == Some(name)).then_some(c)
}

/// Remove from a JSON `capabilities` object every name that is no capability
/// (runtime-spec 1.1+: a runtime SHOULD NOT fail on them), returning the
/// names taken out, sorted and deduplicated, for `unknown_warning`.
pub fn strip_unknown(caps: &mut serde_json::Value) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let Some(obj) = caps.as_object_mut() else {
        return Vec::new();
    };
    for set in [
        "bounding",
        "effective",
        "inheritable",
        "permitted",
        "ambient",
    ] {
        if let Some(serde_json::Value::Array(list)) = obj.get_mut(set) {
            list.retain(|v| match v.as_str() {
                Some(n) if exact(n).is_none() => {
                    out.insert(n.to_string());
                    false
                }
                _ => true,
            });
        }
    }
    out.into_iter().collect()
}

/// The plan for this process as it is now (in init, after any user namespace
/// was entered); the warnings were already logged by the parent.
/// Every set empty: what a process without `capabilities` gets.
pub fn empty() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(Default::default()));
    c.set_effective(Some(Default::default()));
    c.set_permitted(Some(Default::default()));
    c.set_inheritable(Some(Default::default()));
    c.set_ambient(Some(Default::default()));
    c
}

pub fn plan_here(c: &LinuxCapabilities) -> Plan {
    plan(c, Host::probe()).0
}

/// Drop from the bounding set every capability not in the plan. Runs while we
/// still hold CAP_SETPCAP, before the uid switch.
pub fn drop_bounding(p: &Plan) -> Result<()> {
    for n in 0..=p.last_cap {
        if p.bounding & (1 << n) != 0 {
            continue;
        }
        if task::capbset_read(n) == Some(true) {
            task::capbset_drop(n).ctx(|| format!("drop {} from the bounding set", name(n)))?;
        }
    }
    Ok(())
}

/// PR_SET_KEEPCAPS, so the permitted set survives setresuid away from uid 0
/// (execve clears the flag again).
pub fn keep_caps_across_setuid() -> Result<()> {
    task::set_keepcaps(true).ctx(|| "prctl(PR_SET_KEEPCAPS)")
}

fn to_set(mask: u64) -> caps::CapsHashSet {
    caps::all()
        .into_iter()
        .filter(|k| mask & k.bitmask() != 0)
        .collect()
}

/// Install the plan after the uid switch. Each capset keeps the kernel's
/// rules at every step: inheritable first (within the bounding set), then
/// effective (within the still-larger permitted set), then permitted (which
/// contains the new effective), then ambient.
pub fn apply(p: &Plan) -> Result<()> {
    caps::set(None, CapSet::Inheritable, &to_set(p.inheritable))
        .ctx(|| format!("set inheritable capabilities [{}]", names(p.inheritable)))?;
    caps::set(None, CapSet::Effective, &to_set(p.effective))
        .ctx(|| format!("set effective capabilities [{}]", names(p.effective)))?;
    caps::set(None, CapSet::Permitted, &to_set(p.permitted))
        .ctx(|| format!("set permitted capabilities [{}]", names(p.permitted)))?;
    caps::clear(None, CapSet::Ambient).ctx(|| "clear ambient capabilities")?;
    for k in to_set(p.ambient) {
        caps::raise(None, CapSet::Ambient, k).ctx(|| format!("raise ambient {k}"))?;
    }
    Ok(())
}

/// The parent's check before starting init: log what cannot be granted.
pub fn warn_ungrantable(c: &LinuxCapabilities, userns: bool) {
    let host = Host::probe();
    let host = if userns { host.in_new_userns() } else { host };
    for w in plan(c, host).1 {
        log::warn!("{w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(v: serde_json::Value) -> LinuxCapabilities {
        serde_json::from_value(v).unwrap()
    }

    const ALL_BUT_RESOURCE: Host = Host {
        grantable: ((1u64 << 41) - 1) & !(1 << 24),
        last_cap: 40,
    };

    #[test]
    fn numbers_match_the_kernel() {
        assert_eq!(number(Capability::Chown), 0);
        assert_eq!(number(Capability::SysAdmin), 21);
        assert_eq!(number(Capability::SysResource), 24);
        assert_eq!(number(Capability::CheckpointRestore), 40);
        assert_eq!(name(24), "CAP_SYS_RESOURCE");
    }

    #[test]
    fn ungrantable_capabilities_warn_and_are_left_out() {
        let c = caps(serde_json::json!({
            "bounding": ["CAP_KILL", "CAP_SYS_RESOURCE"],
            "permitted": ["CAP_KILL", "CAP_SYS_RESOURCE"],
            "effective": ["CAP_KILL"],
        }));
        let (p, w) = plan(&c, ALL_BUT_RESOURCE);
        assert_eq!(p.bounding, 1 << 5);
        assert_eq!(p.permitted, 1 << 5);
        assert_eq!(p.effective, 1 << 5);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("CAP_SYS_RESOURCE") && w[0].contains("bounding"));
    }

    #[test]
    fn capabilities_past_the_last_one_are_unknown() {
        let c = caps(serde_json::json!({"bounding": ["CAP_CHECKPOINT_RESTORE", "CAP_KILL"]}));
        let host = Host {
            grantable: u64::MAX,
            last_cap: 37,
        };
        let (p, w) = plan(&c, host);
        assert_eq!(p.bounding, 1 << 5);
        assert_eq!(
            w[0],
            "ignoring unknown or unavailable capabilities: [CAP_CHECKPOINT_RESTORE]"
        );
    }

    #[test]
    fn kernel_set_rules_are_kept() {
        let c = caps(serde_json::json!({
            "bounding": ["CAP_KILL"],
            "inheritable": ["CAP_KILL", "CAP_CHOWN"],
            "permitted": ["CAP_KILL"],
            "effective": ["CAP_KILL", "CAP_NET_RAW"],
            "ambient": ["CAP_KILL", "CAP_CHOWN"],
        }));
        let (p, w) = plan(&c, ALL_BUT_RESOURCE);
        assert_eq!(p.inheritable, 1 << 5);
        assert_eq!(p.effective, 1 << 5);
        assert_eq!(p.ambient, 1 << 5);
        // Ambient CAP_CHOWN is dropped without a warning, as runc does.
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn userns_grants_everything_the_kernel_knows() {
        let h = ALL_BUT_RESOURCE.in_new_userns();
        assert_eq!(h.grantable, (1u64 << 41) - 1);
    }

    #[test]
    fn unknown_names_are_stripped_and_named() {
        let mut v = serde_json::json!({
            "bounding": ["CAP_KILL", "CAP_FOO", "cap_kill"],
            "ambient": ["CAP_BAR", "CAP_FOO"],
            "effective": "not a list"
        });
        let gone = strip_unknown(&mut v);
        assert_eq!(gone, ["CAP_BAR", "CAP_FOO", "cap_kill"]);
        assert_eq!(v["bounding"], serde_json::json!(["CAP_KILL"]));
        assert_eq!(v["ambient"], serde_json::json!([]));
        assert_eq!(
            unknown_warning(&gone),
            "ignoring unknown or unavailable capabilities: [CAP_BAR CAP_FOO cap_kill]"
        );
    }

    #[test]
    fn spec_types_refuse_unknown_names_hence_strip_unknown() {
        let r: std::result::Result<LinuxCapabilities, _> =
            serde_json::from_value(serde_json::json!({"bounding": ["CAP_TEST"]}));
        assert!(r.unwrap_err().to_string().contains("CAP_TEST"));
    }
}
