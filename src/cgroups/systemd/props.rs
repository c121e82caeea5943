//! The systemd unit properties of a container: the ones that make the
//! transient scope (as runc's systemd driver sets them) and the resource
//! properties systemd knows, converted from linux.resources the way runc's
//! driver converts them. Pure data, so it is tested without systemd.

use super::super::config::{DevKind, DeviceRule, Resources, ACC_MKNOD, ACC_READ, ACC_WRITE};
use super::super::convert;

#[derive(Clone, Debug, PartialEq)]
pub enum Prop {
    Bool(bool),
    U64(u64),
    Str(String),
    Strs(Vec<String>),
    U32s(Vec<u32>),
    /// A bitmask, byte 0 holding bits 0-7 ("ay", AllowedCPUs).
    Bytes(Vec<u8>),
    /// DeviceAllow's a(ss): (path or "char-<group>", "rwm").
    Devices(Vec<(String, String)>),
}

pub type Props = Vec<(&'static str, Prop)>;

/// What StartTransientUnit gets: the unit's place, its process, delegation
/// and accounting (runc: "the same behaviour as the fs implementation").
pub fn unit(unit: &str, slice: &str, pid: u32, id: &str) -> Props {
    let mut p: Props = vec![("Description", Prop::Str(format!("skiff container {id}")))];
    if unit.ends_with(".slice") {
        // A slice is placed under its parent by name; Wants= pulls the parent in.
        p.push(("Wants", Prop::Strs(vec![slice.to_string()])));
    } else {
        p.push(("Slice", Prop::Str(slice.to_string())));
        p.push(("Delegate", Prop::Bool(true)));
        p.push(("PIDs", Prop::U32s(vec![pid])));
    }
    for a in [
        "MemoryAccounting",
        "CPUAccounting",
        "IOAccounting",
        "TasksAccounting",
    ] {
        p.push((a, Prop::Bool(true)));
    }
    p.push(("DefaultDependencies", Prop::Bool(false)));
    p
}

/// systemd's "infinity" for the u64 limits.
const INFINITY: u64 = u64::MAX;

fn bytes_or_infinity(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(INFINITY)
}

/// The resource properties for a unified (v2) host.
pub fn resources_v2(r: &Resources) -> Props {
    let mut p = Props::new();
    let m = &r.memory;
    if let Some(l) = m.limit {
        p.push(("MemoryMax", Prop::U64(bytes_or_infinity(l))));
    }
    if let Some(v) = m.reservation {
        p.push(("MemoryLow", Prop::U64(bytes_or_infinity(v))));
    }
    // An impossible swap value is refused by the file writes that follow.
    if let Ok(Some(s)) = convert::swap_to_v2(m.swap, m.limit) {
        let v = if s == "max" {
            INFINITY
        } else {
            s.parse().unwrap_or(INFINITY)
        };
        p.push(("MemorySwapMax", Prop::U64(v)));
    }
    if let Some(s) = r.cpu.shares {
        p.push(("CPUWeight", Prop::U64(convert::shares_to_weight(s))));
    }
    cpu_quota(r, &mut p);
    cpusets(r, &mut p);
    tasks(r, &mut p);
    if let Some(w) = r.blkio.weight {
        p.push(("IOWeight", Prop::U64(convert::blkio_to_io_weight(w))));
    }
    if let Some(rules) = &r.devices {
        devices(rules, &mut p);
    }
    p
}

/// The resource properties for a v1 (or hybrid) host, in systemd's v1 names.
pub fn resources_v1(r: &Resources) -> Props {
    let mut p = Props::new();
    if let Some(l) = r.memory.limit {
        p.push(("MemoryLimit", Prop::U64(bytes_or_infinity(l))));
    }
    if let Some(s) = r.cpu.shares {
        p.push(("CPUShares", Prop::U64(s)));
    }
    cpu_quota(r, &mut p);
    cpusets(r, &mut p);
    tasks(r, &mut p);
    if let Some(w) = r.blkio.weight {
        p.push(("BlockIOWeight", Prop::U64(u64::from(w))));
    }
    if let Some(rules) = &r.devices {
        devices(rules, &mut p);
    }
    p
}

fn tasks(r: &Resources, p: &mut Props) {
    if let Some(t) = r.pids {
        p.push(("TasksMax", Prop::U64(t.unwrap_or(INFINITY))));
    }
}

/// CPUQuotaPerSecUSec is the quota scaled to one second, rounded up to 10 ms
/// (systemd's granularity; runc rounds the same way so the two agree).
fn cpu_quota(r: &Resources, p: &mut Props) {
    let (quota, period) = (r.cpu.quota, r.cpu.period);
    if let Some(per) = period {
        p.push(("CPUQuotaPeriodUSec", Prop::U64(per)));
    }
    if quota.is_none() && period.is_none() {
        return;
    }
    let mut per_sec = INFINITY;
    if let Some(q) = quota.and_then(|q| u64::try_from(q).ok()).filter(|q| *q > 0) {
        let per = period.filter(|p| *p > 0).unwrap_or(100_000);
        per_sec = q.saturating_mul(1_000_000) / per;
        if !per_sec.is_multiple_of(10_000) {
            per_sec = (per_sec / 10_000 + 1) * 10_000;
        }
    }
    p.push(("CPUQuotaPerSecUSec", Prop::U64(per_sec)));
}

fn cpusets(r: &Resources, p: &mut Props) {
    if let Some(b) = r.cpu.cpus.as_deref().and_then(range_to_bits) {
        p.push(("AllowedCPUs", Prop::Bytes(b)));
    }
    if let Some(b) = r.cpu.mems.as_deref().and_then(range_to_bits) {
        p.push(("AllowedMemoryNodes", Prop::Bytes(b)));
    }
}

/// "0-3,8" as a little-endian bitmask; None for a malformed list (the cpuset
/// file write that follows reports it).
pub fn range_to_bits(list: &str) -> Option<Vec<u8>> {
    let mut bits: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let a = part.parse::<usize>().ok()?;
                (a, a)
            }
        };
        if a > b || b >= 1 << 16 {
            return None;
        }
        for i in a..=b {
            if bits.len() <= i / 8 {
                bits.resize(i / 8 + 1, 0);
            }
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    (!bits.is_empty()).then_some(bits)
}

/// DevicePolicy and DeviceAllow from the ordered rules. systemd has only an
/// allow list: a rule set that ends in "allow all" (a deny list) becomes
/// policy "auto" and is enforced by our own device program alone.
fn devices(rules: &[DeviceRule], p: &mut Props) {
    let mut allow_all = true;
    let mut list: Vec<DeviceRule> = Vec::new();
    for r in rules {
        let everything = r.kind == DevKind::All && r.major.is_none() && r.minor.is_none();
        if everything && r.access == ACC_MKNOD | ACC_READ | ACC_WRITE {
            allow_all = r.allow;
            list.clear();
        } else if r.allow {
            list.push(*r);
        } else {
            list.retain(|x| !(x.kind == r.kind && x.major == r.major && x.minor == r.minor));
        }
    }
    if allow_all {
        p.push(("DevicePolicy", Prop::Str("auto".into())));
        p.push(("DeviceAllow", Prop::Devices(Vec::new())));
        return;
    }
    let groups = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let entries = list
        .iter()
        .flat_map(|r| allow_entries(r, &groups))
        .collect();
    p.push(("DevicePolicy", Prop::Str("strict".into())));
    // An empty list first resets what an earlier call set.
    p.push(("DeviceAllow", Prop::Devices(Vec::new())));
    p.push(("DeviceAllow", Prop::Devices(entries)));
}

/// systemd's spelling of one allow rule: a node, "char-<group>" for a whole
/// major (its name in /proc/devices), "char-*" for every major.
fn allow_entries(r: &DeviceRule, proc_devices: &str) -> Vec<(String, String)> {
    let mut acc = String::new();
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if r.access & bit != 0 {
            acc.push(c);
        }
    }
    let kinds: &[&str] = match r.kind {
        DevKind::All => &["char", "block"],
        DevKind::Char => &["char"],
        DevKind::Block => &["block"],
    };
    kinds
        .iter()
        .filter_map(|k| {
            let name = match (r.major, r.minor) {
                (None, _) => format!("{k}-*"),
                (Some(ma), Some(mi)) => format!("/dev/{k}/{ma}:{mi}"),
                (Some(ma), None) => format!("{k}-{}", group_name(proc_devices, k, ma)?),
            };
            Some((name, acc.clone()))
        })
        .collect()
}

/// The name of major `major` in /proc/devices' "Character devices:" or
/// "Block devices:" section.
fn group_name(proc_devices: &str, kind: &str, major: u32) -> Option<String> {
    let head = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    proc_devices
        .split("\n\n")
        .find(|sec| sec.trim_start().starts_with(head))?
        .lines()
        .skip(1)
        .find_map(|l| {
            let (n, name) = l.trim().split_once(' ')?;
            (n.parse::<u32>().ok()? == major).then(|| name.trim().to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::config::ACC_ALL;

    fn res(j: serde_json::Value) -> Resources {
        Resources::from_spec(&serde_json::from_value(j).unwrap()).unwrap()
    }

    fn get<'a>(p: &'a Props, k: &str) -> Option<&'a Prop> {
        p.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v)
    }

    #[test]
    fn scope_properties_as_runc() {
        let p = unit("skiff-x.scope", "system.slice", 42, "x");
        assert_eq!(get(&p, "Slice"), Some(&Prop::Str("system.slice".into())));
        assert_eq!(get(&p, "Delegate"), Some(&Prop::Bool(true)));
        assert_eq!(get(&p, "PIDs"), Some(&Prop::U32s(vec![42])));
        assert_eq!(get(&p, "DefaultDependencies"), Some(&Prop::Bool(false)));
        let s = unit("a-b.slice", "a.slice", 42, "x");
        assert_eq!(get(&s, "Wants"), Some(&Prop::Strs(vec!["a.slice".into()])));
        assert_eq!(get(&s, "PIDs"), None);
    }

    #[test]
    fn resources_convert_as_runc() {
        let p = resources_v2(&res(serde_json::json!({
            "memory": {"limit": 104857600, "swap": 209715200, "reservation": 1000},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-2,9", "mems": "0"},
            "pids": {"limit": 64},
            "blockIO": {"weight": 1000}
        })));
        assert_eq!(get(&p, "MemoryMax"), Some(&Prop::U64(104_857_600)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Prop::U64(104_857_600)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Prop::U64(1000)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Prop::U64(100)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Prop::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Prop::U64(100_000)));
        assert_eq!(
            get(&p, "AllowedCPUs"),
            Some(&Prop::Bytes(vec![0b111, 0b10]))
        );
        assert_eq!(get(&p, "AllowedMemoryNodes"), Some(&Prop::Bytes(vec![1])));
        assert_eq!(get(&p, "TasksMax"), Some(&Prop::U64(64)));
        assert_eq!(get(&p, "IOWeight"), Some(&Prop::U64(10_000)));
        let u = resources_v2(&res(serde_json::json!({
            "memory": {"limit": -1}, "cpu": {"quota": 33333}, "pids": {"limit": -1}
        })));
        assert_eq!(get(&u, "MemoryMax"), Some(&Prop::U64(u64::MAX)));
        assert_eq!(get(&u, "TasksMax"), Some(&Prop::U64(u64::MAX)));
        // 333330 µs/s rounds up to systemd's 10 ms steps.
        assert_eq!(get(&u, "CPUQuotaPerSecUSec"), Some(&Prop::U64(340_000)));
        let z = resources_v2(&res(serde_json::json!({"pids": {"limit": 0}})));
        assert_eq!(get(&z, "TasksMax"), Some(&Prop::U64(1)), "runc 1.4");
    }

    #[test]
    fn device_rules_become_an_allow_list() {
        let proc_devices = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n";
        let dev = |allow, kind, major, minor, access| DeviceRule {
            allow,
            kind,
            major,
            minor,
            access,
        };
        let rules = [
            dev(false, DevKind::All, None, None, ACC_ALL),
            dev(true, DevKind::Char, Some(1), Some(3), ACC_ALL),
            dev(true, DevKind::Char, Some(136), None, ACC_READ | ACC_WRITE),
            dev(true, DevKind::Block, None, None, ACC_MKNOD),
        ];
        let e: Vec<_> = rules[1..]
            .iter()
            .flat_map(|r| allow_entries(r, proc_devices))
            .collect();
        assert_eq!(
            e,
            [
                ("/dev/char/1:3".to_string(), "rwm".to_string()),
                ("char-pts".into(), "rw".into()),
                ("block-*".into(), "m".into())
            ]
        );
        let mut p = Props::new();
        devices(&rules, &mut p);
        assert_eq!(get(&p, "DevicePolicy"), Some(&Prop::Str("strict".into())));
        let mut open = Props::new();
        devices(&[dev(true, DevKind::All, None, None, ACC_ALL)], &mut open);
        assert_eq!(get(&open, "DevicePolicy"), Some(&Prop::Str("auto".into())));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(range_to_bits("0"), Some(vec![1]));
        assert_eq!(range_to_bits("8-9"), Some(vec![0, 3]));
        assert_eq!(range_to_bits("3-1"), None);
        assert_eq!(range_to_bits("x"), None);
    }
}
