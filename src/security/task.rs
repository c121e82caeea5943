//! Per-process kernel settings from the config: `linux.personality`,
//! `process.scheduler`, `process.ioPriority` and `process.execCPUAffinity`.
//! `validate` holds the rules that must fail `create` (runc's validator has
//! the same ones); the setters run in init, before the capability drop takes
//! away what they need (CAP_SYS_NICE for real-time policies, for example).

use crate::bail;
use crate::error::{Context, Result};
use crate::sys::task::{self as sys, SchedAttr};
use nix::sched::CpuSet;
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag as SF, LinuxSchedulerPolicy as P, Process, Scheduler,
};

fn policy_number(p: P) -> u32 {
    match p {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    }
}

fn flag_bits(f: SF) -> u64 {
    match f {
        SF::SchedResetOnFork => 0x01,
        SF::SchedFlagReclaim => 0x02,
        SF::SchedFlagDLOverrun => 0x04,
        SF::SchedFlagKeepPolicy => 0x08,
        SF::SchedFlagKeepParams => 0x10,
        SF::SchedFlagUtilClampMin => 0x20,
        SF::SchedFlagUtilClampMax => 0x40,
    }
}

/// The runtime-spec's spellings of the scheduler flags. The oci-spec crate
/// (0.10) names two of them differently ("SCHED_RESET_ON_FORK", and
/// "SCHED_FLAG_D_L_OVERRUN" from its derived case conversion) and so refused
/// the spec's own names.
const SPEC_FLAGS: [(&str, SF); 7] = [
    ("SCHED_FLAG_RESET_ON_FORK", SF::SchedResetOnFork),
    ("SCHED_FLAG_RECLAIM", SF::SchedFlagReclaim),
    ("SCHED_FLAG_DL_OVERRUN", SF::SchedFlagDLOverrun),
    ("SCHED_FLAG_KEEP_POLICY", SF::SchedFlagKeepPolicy),
    ("SCHED_FLAG_KEEP_PARAMS", SF::SchedFlagKeepParams),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", SF::SchedFlagUtilClampMin),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", SF::SchedFlagUtilClampMax),
];

/// Rewrite a JSON `scheduler` object's flags from the runtime-spec's names to
/// the ones the spec types read, before parsing. Any other name is refused
/// in runc's (1.2+) words, the crate's own variants included, as runc knows
/// only the spec's names. Returns whether anything was rewritten.
pub fn spec_flags_to_crate(sched: &mut serde_json::Value) -> Result<bool> {
    let Some(serde_json::Value::Array(flags)) = sched.get_mut("flags") else {
        return Ok(false);
    };
    let mut changed = false;
    for f in flags.iter_mut() {
        let Some(name) = f.as_str() else {
            continue; // not a string: the spec types' own error names it
        };
        let Some((_, flag)) = SPEC_FLAGS.iter().find(|(n, _)| *n == name) else {
            bail!("process.scheduler: invalid scheduler flag: {name}");
        };
        let crate_name = serde_json::to_value(flag).ctx(|| "encode scheduler flag")?;
        changed |= *f != crate_name;
        *f = crate_name;
    }
    Ok(changed)
}

fn validate_scheduler(s: &Scheduler) -> Result<()> {
    let p = *s.policy();
    let nice = s.nice().unwrap_or(0);
    if matches!(p, P::SchedOther | P::SchedBatch) && !(-20..=19).contains(&nice) {
        bail!("scheduler.nice {nice} is out of range (-20 to 19) for {p}");
    }
    let prio = s.priority().unwrap_or(0);
    if prio != 0 && !matches!(p, P::SchedFifo | P::SchedRr) {
        bail!("scheduler.priority can only be set for SCHED_FIFO or SCHED_RR, not {p}");
    }
    let dl = [s.runtime(), s.deadline(), s.period()];
    if p != P::SchedDeadline && dl.iter().any(|v| v.unwrap_or(0) != 0) {
        bail!("scheduler runtime/deadline/period can only be set for SCHED_DEADLINE, not {p}");
    }
    if p == P::SchedIso {
        bail!("scheduler.policy SCHED_ISO is not implemented by Linux");
    }
    Ok(())
}

fn validate_ioprio(io: &LinuxIOPriority) -> Result<()> {
    if !(0..=7).contains(&io.priority()) {
        bail!(
            "ioPriority.priority {} is out of range (0 to 7)",
            io.priority()
        );
    }
    Ok(())
}

/// A CPU list like `0-3,7` as a CpuSet.
pub fn parse_cpus(list: &str) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    for part in list.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let parse = |s: &str| -> Result<usize> {
            s.trim()
                .parse::<usize>()
                .ctx(|| format!("CPU list {list:?}: {s:?} is not a CPU number"))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b {
            bail!("CPU list {list:?}: range {a}-{b} is reversed");
        }
        if b >= CpuSet::count() {
            bail!(
                "CPU list {list:?}: CPU {b} is beyond the {} supported",
                CpuSet::count()
            );
        }
        for cpu in a..=b {
            set.set(cpu).ctx(|| format!("CPU list {list:?}"))?;
        }
    }
    Ok(set)
}

/// Checks that must fail `create`/`exec` before anything starts.
pub fn validate(process: &Process, personality: Option<&LinuxPersonality>) -> Result<()> {
    if let Some(s) = process.scheduler() {
        validate_scheduler(s)?;
    }
    if let Some(io) = process.io_priority() {
        validate_ioprio(io)?;
    }
    if let Some(a) = process.exec_cpu_affinity() {
        for l in [a.initial(), a.cpu_affinity_final()].into_iter().flatten() {
            if !l.is_empty() {
                parse_cpus(l).ctx(|| "process.execCPUAffinity")?;
            }
        }
    }
    if let Some(p) = personality {
        if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
            log::warn!(
                "linux.personality.flags are not supported and are ignored: {:?}",
                p.flags()
            );
        }
    }
    Ok(())
}

/// personality(2) with the configured execution domain (flags: none are
/// defined by the runtime-spec; they are ignored with a warning by `validate`).
pub fn set_personality(p: &LinuxPersonality) -> Result<()> {
    let domain = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    sys::personality(domain).ctx(|| format!("personality {}", p.domain()))?;
    Ok(())
}

/// sched_setattr(2) with the configured policy.
pub fn set_scheduler(s: &Scheduler) -> Result<()> {
    validate_scheduler(s)?;
    let mut a = SchedAttr {
        policy: policy_number(*s.policy()),
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    for f in s.flags().iter().flatten() {
        a.flags |= flag_bits(*f);
    }
    sys::sched_setattr(&a).ctx(|| format!("sched_setattr {}", s.policy()))
}

/// ioprio_set(2) for the process (children inherit it).
pub fn set_io_priority(io: &LinuxIOPriority) -> Result<()> {
    validate_ioprio(io)?;
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    sys::ioprio_set(class, io.priority() as u32)
        .ctx(|| format!("ioprio_set {} {}", io.class(), io.priority()))
}

fn set_affinity(set: &CpuSet, what: &str) -> Result<()> {
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set)
        .ctx(|| format!("set {what} CPU affinity"))
}

/// execCPUAffinity.initial for a process joining a container: the CPUs the
/// runtime's child runs on until it is in the container's cgroup.
pub fn initial_affinity(process: &Process) -> Result<Option<CpuSet>> {
    match process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().clone())
    {
        Some(l) if !l.is_empty() => Ok(Some(parse_cpus(&l)?)),
        _ => Ok(None),
    }
}

/// execCPUAffinity.final once in the cgroup. Without any execCPUAffinity the
/// process gets every CPU its cgroup allows, not whatever the caller of
/// `exec` was pinned to (runc does the same).
pub fn set_final_affinity(process: &Process) -> Result<()> {
    let aff = process.exec_cpu_affinity().as_ref();
    let fin = aff.and_then(|a| a.cpu_affinity_final().clone());
    let init = aff.and_then(|a| a.initial().clone());
    match (
        fin.filter(|f| !f.is_empty()),
        init.filter(|i| !i.is_empty()),
    ) {
        (Some(f), _) => set_affinity(&parse_cpus(&f)?, "final"),
        (None, Some(_)) => Ok(()),
        (None, None) => {
            reset_affinity();
            Ok(())
        }
    }
}

/// Every CPU: the kernel masks the set with the cgroup's cpuset and isolated
/// CPUs, so the process gets what its cgroup allows rather than whatever the
/// runtime's caller was pinned to (runc 1.2+ for init and exec; runc 1.1.5
/// let the container inherit it). The runtime-spec makes execCPUAffinity
/// "not applicable to the container's init process", and runc ignores it
/// there too. A failure only leaves the inherited affinity: no reason to fail.
pub fn reset_affinity() {
    let mut all = CpuSet::new();
    for cpu in 0..CpuSet::count() {
        let _ = all.set(cpu);
    }
    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &all);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(v: serde_json::Value) -> Scheduler {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn cpu_lists() {
        let s = parse_cpus("0-2,5").unwrap();
        for (cpu, want) in [(0, true), (2, true), (3, false), (5, true)] {
            assert_eq!(s.is_set(cpu).unwrap(), want);
        }
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("x").is_err());
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus("99999999").is_err());
    }

    #[test]
    fn spec_flag_names_are_read_and_others_refused() {
        let names: Vec<&str> = SPEC_FLAGS.iter().map(|(n, _)| *n).collect();
        let mut v = serde_json::json!({"policy": "SCHED_OTHER", "flags": names});
        assert!(spec_flags_to_crate(&mut v).unwrap());
        let s = sched(v);
        let bits: u64 = s.flags().clone().unwrap().into_iter().map(flag_bits).sum();
        assert_eq!(bits, 0x7f);
        for bad in ["SCHED_RESET_ON_FORK", "SCHED_FLAG_D_L_OVERRUN", "nope"] {
            let mut v = serde_json::json!({"policy": "SCHED_OTHER", "flags": [bad]});
            let e = spec_flags_to_crate(&mut v).unwrap_err().to_string();
            assert!(e.contains(&format!("invalid scheduler flag: {bad}")), "{e}");
        }
    }

    #[test]
    fn scheduler_rules() {
        assert!(validate_scheduler(&sched(
            serde_json::json!({"policy": "SCHED_OTHER", "nice": 5})
        ))
        .is_ok());
        assert!(validate_scheduler(&sched(
            serde_json::json!({"policy": "SCHED_OTHER", "nice": 40})
        ))
        .is_err());
        assert!(validate_scheduler(&sched(
            serde_json::json!({"policy": "SCHED_OTHER", "priority": 3})
        ))
        .is_err());
        assert!(validate_scheduler(&sched(
            serde_json::json!({"policy": "SCHED_FIFO", "priority": 3})
        ))
        .is_ok());
        assert!(validate_scheduler(&sched(serde_json::json!({"policy": "SCHED_ISO"}))).is_err());
        assert!(validate_scheduler(&sched(
            serde_json::json!({"policy": "SCHED_BATCH", "runtime": 5})
        ))
        .is_err());
    }
}
