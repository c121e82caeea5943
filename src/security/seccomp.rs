//! Seccomp filters from `linux.seccomp` through libseccomp, and the notify
//! listener handshake (runtime-spec config-linux.md, "Seccomp" and "The
//! Container Process State").
//!
//! Init builds the filter early (so a bad profile fails `create` with a
//! message) and loads it as late as it can (process/setup.rs): with
//! noNewPrivileges right before execve; without it, before the capability
//! drop takes CAP_SYS_ADMIN away; and a profile with SCMP_ACT_NOTIFY before
//! init reports Ready, so the listener has the fd before `create` returns.
//! Nothing else is ever loaded: the user process runs under exactly the
//! configured filter.

use crate::bail;
use crate::error::{Context, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompFilterFlag as F, LinuxSeccompOperator,
    LinuxSyscall, Spec,
};
use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Syscall arguments are numbered 0..=5.
const MAX_ARG_INDEX: usize = 5;

/// Syscalls init itself makes after loading a notify filter and before the
/// listener has the fd (sending it to the parent): notifying them would leave
/// init waiting for an agent that cannot answer yet.
const NOT_NOTIFIABLE: &[&str] = &["sendmsg", "write"];

/// The action for `act` with the configured errno (EPERM when unset); an errno
/// on an action that has none is an error (runtime-spec: "MUST print an error
/// and fail").
fn action(act: A, errno: Option<u32>, what: &str) -> Result<ScmpAction> {
    let code = |e: Option<u32>| -> Result<u16> {
        let e = e.unwrap_or(libc::EPERM as u32);
        u16::try_from(e)
            .map_err(|_| crate::error::Error::new(format!("{what}: errnoRet {e} is out of range")))
    };
    if errno.is_some() && !matches!(act, A::ScmpActErrno | A::ScmpActTrace) {
        bail!("{what}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {act}");
    }
    Ok(match act {
        // runc's reading of SCMP_ACT_KILL, and the kernel's SECCOMP_RET_KILL.
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(i32::from(code(errno)?)),
        A::ScmpActTrace => ScmpAction::Trace(code(errno)?),
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActAllow => ScmpAction::Allow,
        A::ScmpActNotify => ScmpAction::Notify,
    })
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn compare(index: usize, op: LinuxSeccompOperator, value: u64, two: Option<u64>) -> ScmpArgCompare {
    use LinuxSeccompOperator as O;
    let (op, datum) = match op {
        O::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        O::ScmpCmpLt => (ScmpCompareOp::Less, value),
        O::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        O::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        O::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        O::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // value is the mask, valueTwo what the masked argument must equal.
        O::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), two.unwrap_or(0)),
    };
    // validate() keeps index within 0..=5.
    ScmpArgCompare::new(index as u32, op, datum)
}

/// The checks that need no libseccomp: what the runtime-spec says MUST fail.
pub fn validate(s: &LinuxSeccomp) -> Result<()> {
    let def = action(
        s.default_action(),
        s.default_errno_ret(),
        "seccomp defaultAction",
    )?;
    if def == ScmpAction::Notify {
        bail!("seccomp: SCMP_ACT_NOTIFY cannot be the default action (init could not report back)");
    }
    if s.listener_metadata().is_some() && s.listener_path().is_none() {
        bail!("seccomp: listenerMetadata requires listenerPath");
    }
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let what = format!("seccomp syscalls[{i}]");
        if sc.names().is_empty() {
            bail!("{what}: names must contain at least one syscall");
        }
        action(sc.action(), sc.errno_ret(), &what)?;
        for a in sc.args().iter().flatten() {
            if a.index() > MAX_ARG_INDEX {
                bail!(
                    "{what}: argument index {} is out of range (0-{MAX_ARG_INDEX})",
                    a.index()
                );
            }
        }
        if sc.action() == A::ScmpActNotify {
            if s.listener_path()
                .as_ref()
                .is_none_or(|p| p.as_os_str().is_empty())
            {
                bail!("{what}: SCMP_ACT_NOTIFY requires linux.seccomp.listenerPath");
            }
            if let Some(n) = sc
                .names()
                .iter()
                .find(|n| NOT_NOTIFIABLE.contains(&n.as_str()))
            {
                bail!("{what}: SCMP_ACT_NOTIFY cannot be used for {n}: init needs it to hand the notify fd over");
            }
        }
    }
    Ok(())
}

/// Whether any rule uses SCMP_ACT_NOTIFY (then the filter is loaded before
/// `create` returns, so its fd can reach the listener).
pub fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.syscalls()
        .iter()
        .flatten()
        .any(|sc| sc.action() == A::ScmpActNotify)
}

/// A compiled filter, ready to load.
pub struct Filter {
    ctx: ScmpFilterContext,
    notify: bool,
}

fn add_rules(ctx: &mut ScmpFilterContext, sc: &LinuxSyscall, def: ScmpAction) -> Result<()> {
    let act = action(sc.action(), sc.errno_ret(), "seccomp rule")?;
    // libseccomp refuses a rule whose action is the default one; it would change nothing.
    if act == def {
        return Ok(());
    }
    let args = sc.args().clone().unwrap_or_default();
    let conds: Vec<ScmpArgCompare> = args
        .iter()
        .map(|a| compare(a.index(), a.op(), a.value(), a.value_two()))
        .collect();
    // libseccomp ANDs the conditions of one rule and cannot compare one
    // argument twice; several conditions on the same argument mean "any of
    // these" in the profiles that use them (Docker's personality rules), so
    // each becomes a rule of its own.
    let mut seen = [0u8; MAX_ARG_INDEX + 1];
    for a in &args {
        if let Some(n) = seen.get_mut(a.index()) {
            *n += 1;
        }
    }
    let separate = seen.iter().any(|n| *n > 1);
    for name in sc.names() {
        // A syscall libseccomp does not know (newer than it, or of another
        // architecture only) cannot be called by the container either.
        let Ok(nr) = ScmpSyscall::from_name(name) else {
            log::debug!("seccomp: unknown syscall {name:?} ignored");
            continue;
        };
        let r = if conds.is_empty() {
            ctx.add_rule(act, nr).map(|_| ())
        } else if separate {
            conds
                .iter()
                .try_for_each(|c| ctx.add_rule_conditional(act, nr, &[*c]).map(|_| ()))
        } else {
            ctx.add_rule_conditional(act, nr, &conds).map(|_| ())
        };
        r.ctx(|| format!("seccomp: add rule for {name}"))?;
    }
    Ok(())
}

fn set_flag(ctx: &mut ScmpFilterContext, f: F, notify: bool) -> Result<()> {
    let r = match f {
        // Applied, though init has one thread: the filter is the same for
        // every thread either way. With a notify listener the kernel refuses
        // TSYNC unless libseccomp adds TSYNC_ESRCH, which older ones do not;
        // there a single thread makes the flag's effect hold regardless.
        F::SeccompFilterFlagTsync if notify => return Ok(()),
        F::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true).map(|_| ()),
        F::SeccompFilterFlagLog => ctx.set_ctl_log(true).map(|_| ()),
        F::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true).map(|_| ()),
        F::SeccompFilterFlagWaitKillableRecv => ctx.set_ctl_waitkill(true).map(|_| ()),
    };
    r.ctx(|| format!("seccomp flag {f}: not supported by this libseccomp or kernel"))
}

/// Compile `s` into a filter (nothing is loaded yet).
pub fn build(s: &LinuxSeccomp) -> Result<Filter> {
    validate(s)?;
    let notify = uses_notify(s);
    if notify && !libseccomp::check_api(6, ScmpVersion::from((2, 5, 0))).unwrap_or(false) {
        bail!("seccomp: SCMP_ACT_NOTIFY needs libseccomp >= 2.5.0 (API level 6) and Linux >= 5.7");
    }
    let def = action(
        s.default_action(),
        s.default_errno_ret(),
        "seccomp defaultAction",
    )?;
    let mut ctx = ScmpFilterContext::new(def).ctx(|| "seccomp: create filter")?;
    // Loading must not set no_new_privs behind the config's back: that is
    // process.noNewPrivileges' job (libseccomp sets it by default).
    ctx.set_ctl_nnp(false)
        .ctx(|| "seccomp: clear the no_new_privs attribute")?;
    for a in s.architectures().iter().flatten() {
        let a = arch(*a);
        if !ctx.is_arch_present(a).unwrap_or(false) {
            ctx.add_arch(a)
                .ctx(|| format!("seccomp: add architecture {a:?}"))?;
        }
    }
    for f in s.flags().iter().flatten() {
        set_flag(&mut ctx, *f, notify)?;
    }
    let rules = s.syscalls().clone().unwrap_or_default();
    // A binary tree of syscall numbers makes long profiles (Docker's has
    // hundreds of names) cheaper per syscall; older libseccomp lacks it.
    if rules.iter().map(|r| r.names().len()).sum::<usize>() > 32 {
        let _ = ctx.set_ctl_optimize(2);
    }
    for sc in &rules {
        add_rules(&mut ctx, sc, def)?;
    }
    Ok(Filter { ctx, notify })
}

impl Filter {
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// Install the filter on this thread; the notify fd when the profile has
    /// SCMP_ACT_NOTIFY rules.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        self.ctx.load().ctx(|| "seccomp: load filter")?;
        if !self.notify {
            return Ok(None);
        }
        let fd = self.ctx.get_notify_fd().ctx(|| "seccomp: get notify fd")?;
        Ok(Some(crate::sys::owned_fd(fd)))
    }
}

/// The runtime-spec's "container process state" for the listener.
pub fn process_state(spec: &Spec, state: &serde_json::Value) -> serde_json::Value {
    let metadata = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_metadata().clone());
    let mut v = serde_json::json!({
        "ociVersion": state.get("ociVersion").cloned().unwrap_or_else(|| spec.version().clone().into()),
        "fds": ["seccompFd"],
        "pid": state.get("pid").cloned().unwrap_or(serde_json::json!(0)),
        "state": state,
    });
    if let Some(m) = metadata {
        v["metadata"] = serde_json::json!(m);
    }
    v
}

/// Send the notify fd and the container process state to `listenerPath`:
/// one connection, the JSON as payload, the fd as SCM_RIGHTS on the first
/// sendmsg, then close.
pub fn send_to_listener(spec: &Spec, state_json: &str, fd: OwnedFd) -> Result<()> {
    let Some(path) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_path().clone())
    else {
        bail!("seccomp: a notify fd arrived but linux.seccomp.listenerPath is not set");
    };
    let state: serde_json::Value =
        serde_json::from_str(state_json).ctx(|| "seccomp: container state")?;
    let body = serde_json::to_vec(&process_state(spec, &state)).ctx(|| "seccomp: encode state")?;
    let what = || format!("seccomp: send notify fd to listener {}", path.display());
    let mut sock = UnixStream::connect(&path).ctx(what)?;
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&body)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx(what)?;
    sock.write_all(&body[sent..]).ctx(what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(flag: &str) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": [flag],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        }))
        .unwrap()
    }

    /// Each flag ends up as the libseccomp attribute that sets it at load.
    #[test]
    fn flags_become_filter_attributes() {
        let f = build(&profile("SECCOMP_FILTER_FLAG_TSYNC")).unwrap();
        assert!(f.ctx.get_ctl_tsync().unwrap(), "TSYNC not applied");
        let f = build(&profile("SECCOMP_FILTER_FLAG_LOG")).unwrap();
        assert!(f.ctx.get_ctl_log().unwrap(), "LOG not applied");
        let f = build(&profile("SECCOMP_FILTER_FLAG_SPEC_ALLOW")).unwrap();
        assert!(f.ctx.get_ctl_ssb().unwrap(), "SPEC_ALLOW not applied");
        // Needs libseccomp 2.6 (API 7): applied there, refused by name elsewhere.
        match build(&profile("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")) {
            Ok(f) => assert!(f.ctx.get_ctl_waitkill().unwrap()),
            Err(e) => assert!(
                e.message()
                    .contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
                "{}",
                e.message()
            ),
        }
    }
}
