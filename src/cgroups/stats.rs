//! `events` data: runc's stats object (types/events.go) filled from v1 or v2
//! files, and OOM notification (v1 cgroup.event_control, v2 memory.events).

use super::files::{flat_keyed, read, read_u64};
use crate::error::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Serialize, Default, Debug)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: BTreeMap<String, u64>,
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Serialize, Default, Debug)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
    /// Pressure stall information (v2 cpu.pressure; runc >= 1.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// One `*.pressure` file: the "some" and "full" lines.
#[derive(Serialize, Default, Debug, PartialEq)]
pub struct Psi {
    pub some: PsiData,
    pub full: PsiData,
}

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

#[derive(Serialize, Default, Debug)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

/// runc's CPUSet: the lists are omitted when empty, the flags are always
/// printed (zero on v2, where runc reads no cpuset files).
#[derive(Serialize, Default, Debug)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

impl CpuSet {
    /// A v1 cpuset directory's lists and flags (cpuset.<name> files).
    fn v1(dir: &Path) -> CpuSet {
        let n = |f: &str| opt_u64(dir, &format!("cpuset.{f}"));
        CpuSet {
            cpus: parse_list(&read(dir, "cpuset.cpus").unwrap_or_default()),
            cpu_exclusive: n("cpu_exclusive"),
            mems: parse_list(&read(dir, "cpuset.mems").unwrap_or_default()),
            mem_hardwall: n("mem_hardwall"),
            mem_exclusive: n("mem_exclusive"),
            memory_migrate: n("memory_migrate"),
            memory_spread_page: n("memory_spread_page"),
            memory_spread_slab: n("memory_spread_slab"),
            memory_pressure: n("memory_pressure"),
            sched_load_balance: n("sched_load_balance"),
            sched_relax_domain_level: read(dir, "cpuset.sched_relax_domain_level")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
        }
    }
}

#[derive(Serialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Serialize, Default, Debug, Clone, Copy)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Default, Debug)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Serialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Serialize, Default, Debug, PartialEq, Eq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Serialize, Default, Debug)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// "0-2,5" -> [0, 1, 2, 5].
pub fn parse_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

fn nums(s: &str) -> Vec<u64> {
    s.split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn opt_u64(dir: &Path, file: &str) -> u64 {
    read_u64(dir, file).unwrap_or(0)
}

/// The hugepage sizes the kernel offers, named as cgroup files name them ("2MB").
pub fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let kb: u64 = n
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(size_name(kb * 1024))
        })
        .collect();
    v.sort();
    v
}

fn size_name(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024 && v.is_multiple_of(1024) && u < 3 {
        v /= 1024;
        u += 1;
    }
    format!("{v}{}", UNITS[u])
}

// ---------------------------------------------------------------- v1

/// The v1 directories stats read from, by controller.
pub struct V1Dirs<'a> {
    pub cpu: Option<&'a Path>,
    pub cpuacct: Option<&'a Path>,
    pub cpuset: Option<&'a Path>,
    pub memory: Option<&'a Path>,
    pub pids: Option<&'a Path>,
    pub blkio: Option<&'a Path>,
    pub hugetlb: Option<&'a Path>,
}

pub fn v1(d: &V1Dirs) -> Stats {
    let mut s = Stats::default();
    if let Some(dir) = d.cpuacct {
        let u = &mut s.cpu.usage;
        u.total = opt_u64(dir, "cpuacct.usage");
        u.percpu = nums(&read(dir, "cpuacct.usage_percpu").unwrap_or_default());
        u.percpu_kernel = nums(&read(dir, "cpuacct.usage_percpu_sys").unwrap_or_default());
        u.percpu_user = nums(&read(dir, "cpuacct.usage_percpu_user").unwrap_or_default());
        // cpuacct.stat counts USER_HZ ticks.
        let tick = 1_000_000_000 / clock_ticks();
        for (k, v) in flat_keyed(&read(dir, "cpuacct.stat").unwrap_or_default()) {
            match k {
                "user" => u.user = v * tick,
                "system" => u.kernel = v * tick,
                _ => {}
            }
        }
    }
    if let Some(dir) = d.cpu {
        for (k, v) in flat_keyed(&read(dir, "cpu.stat").unwrap_or_default()) {
            match k {
                "nr_periods" => s.cpu.throttling.periods = v,
                "nr_throttled" => s.cpu.throttling.throttled_periods = v,
                "throttled_time" => s.cpu.throttling.throttled_time = v,
                _ => {}
            }
        }
    }
    if let Some(dir) = d.cpuset {
        s.cpuset = CpuSet::v1(dir);
    }
    if let Some(dir) = d.memory {
        let m = &mut s.memory;
        m.raw = flat_keyed(&read(dir, "memory.stat").unwrap_or_default())
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
        let entry = |p: &str| MemoryEntry {
            limit: opt_u64(dir, &format!("{p}.limit_in_bytes")),
            usage: opt_u64(dir, &format!("{p}.usage_in_bytes")),
            max: opt_u64(dir, &format!("{p}.max_usage_in_bytes")),
            failcnt: opt_u64(dir, &format!("{p}.failcnt")),
        };
        m.usage = entry("memory");
        m.swap = entry("memory.memsw");
        m.kernel = entry("memory.kmem");
        m.kernel_tcp = entry("memory.kmem.tcp");
    }
    if let Some(dir) = d.pids {
        s.pids = pids(dir);
    }
    if let Some(dir) = d.blkio {
        s.blkio = v1_blkio(dir);
    }
    if let Some(dir) = d.hugetlb {
        for size in hugepage_sizes() {
            let p = format!("hugetlb.{size}");
            let h = Hugetlb {
                usage: opt_u64(dir, &format!("{p}.usage_in_bytes")),
                max: opt_u64(dir, &format!("{p}.max_usage_in_bytes")),
                failcnt: opt_u64(dir, &format!("{p}.failcnt")),
            };
            s.hugetlb.insert(size, h);
        }
    }
    s
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .map_or(100, |t| t as u64)
}

fn pids(dir: &Path) -> Pids {
    let limit = opt_u64(dir, "pids.max");
    Pids {
        current: opt_u64(dir, "pids.current"),
        limit: if limit == u64::MAX { 0 } else { limit },
    }
}

/// The CFQ files if the kernel has them, else BFQ's, else the throttle ones.
fn v1_blkio(dir: &Path) -> Blkio {
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        let bytes = dir.join(format!("{prefix}io_service_bytes_recursive"));
        if !bytes.exists() {
            continue;
        }
        return Blkio {
            io_service_bytes_recursive: v1_blkio_entries(
                &std::fs::read_to_string(bytes).unwrap_or_default(),
            ),
            io_serviced_recursive: v1_blkio_entries(
                &read(dir, &format!("{prefix}io_serviced_recursive")).unwrap_or_default(),
            ),
            psi: None,
        };
    }
    Blkio::default()
}

/// "8:0 Read 4096" lines; the "Total" line is dropped.
pub fn v1_blkio_entries(s: &str) -> Vec<BlkioEntry> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (ma, mi) = f[0].split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: f[1].to_string(),
                value: f[2].parse().ok()?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------- v2

pub fn v2(dir: &Path) -> Stats {
    let mut s = Stats::default();
    for (k, v) in flat_keyed(&read(dir, "cpu.stat").unwrap_or_default()) {
        match k {
            "usage_usec" => s.cpu.usage.total = v * 1000,
            "user_usec" => s.cpu.usage.user = v * 1000,
            "system_usec" => s.cpu.usage.kernel = v * 1000,
            "nr_periods" => s.cpu.throttling.periods = v,
            "nr_throttled" => s.cpu.throttling.throttled_periods = v,
            "throttled_usec" => s.cpu.throttling.throttled_time = v * 1000,
            _ => {}
        }
    }
    let m = &mut s.memory;
    m.raw = flat_keyed(&read(dir, "memory.stat").unwrap_or_default())
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    let events = read(dir, "memory.events").unwrap_or_default();
    let ev = |key: &str| {
        flat_keyed(&events)
            .find(|(k, _)| *k == key)
            .map_or(0, |x| x.1)
    };
    m.usage = MemoryEntry {
        limit: opt_u64(dir, "memory.max"),
        usage: opt_u64(dir, "memory.current"),
        max: opt_u64(dir, "memory.peak"),
        failcnt: ev("max"),
    };
    // v1 reports memory+swap; keep that meaning.
    let swap_limit = opt_u64(dir, "memory.swap.max");
    m.swap = MemoryEntry {
        limit: if swap_limit == u64::MAX {
            swap_limit
        } else {
            swap_limit.saturating_add(m.usage.limit)
        },
        usage: opt_u64(dir, "memory.swap.current") + m.usage.usage,
        max: 0,
        failcnt: 0,
    };
    s.pids = pids(dir);
    s.blkio = v2_io(&read(dir, "io.stat").unwrap_or_default());
    let psi = |f: &str| read(dir, f).ok().map(|t| parse_psi(&t));
    s.cpu.psi = psi("cpu.pressure");
    s.memory.psi = psi("memory.pressure");
    s.blkio.psi = psi("io.pressure");
    for size in hugepage_sizes() {
        let p = format!("hugetlb.{size}");
        if !dir.join(format!("{p}.current")).exists() {
            continue;
        }
        let evs = read(dir, &format!("{p}.events")).unwrap_or_default();
        // runc 1.4 reports the reservation usage where the kernel has it.
        let rsvd = format!("{p}.rsvd.current");
        let usage = if dir.join(&rsvd).exists() {
            opt_u64(dir, &rsvd)
        } else {
            opt_u64(dir, &format!("{p}.current"))
        };
        let h = Hugetlb {
            usage,
            max: 0,
            failcnt: flat_keyed(&evs)
                .find(|(k, _)| *k == "max")
                .map_or(0, |x| x.1),
        };
        s.hugetlb.insert(size, h);
    }
    s
}

/// A pressure file: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and a
/// "full ..." line (cpu.pressure had only "some" before Linux 5.13).
pub fn parse_psi(text: &str) -> Psi {
    let mut p = Psi::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let d = match f.next() {
            Some("some") => &mut p.some,
            Some("full") => &mut p.full,
            _ => continue,
        };
        for kv in f {
            match kv.split_once('=') {
                Some(("avg10", v)) => d.avg10 = v.parse().unwrap_or(0.0),
                Some(("avg60", v)) => d.avg60 = v.parse().unwrap_or(0.0),
                Some(("avg300", v)) => d.avg300 = v.parse().unwrap_or(0.0),
                Some(("total", v)) => d.total = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    p
}

/// io.stat "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..." in runc's v1 shape.
pub fn v2_io(s: &str) -> Blkio {
    let mut b = Blkio::default();
    for line in s.lines() {
        let mut f = line.split_whitespace();
        let Some((ma, mi)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    b
}

// ---------------------------------------------------------------- OOM

/// A pollable source of OOM notifications for one cgroup.
pub struct OomWatch {
    fd: OwnedFd,
    kind: OomKind,
}

enum OomKind {
    /// The memory.oom_control fd must stay open while registered.
    V1 {
        _control: std::fs::File,
        dir: PathBuf,
    },
    V2 {
        dir: PathBuf,
        last: u64,
    },
}

impl OomWatch {
    /// Register an eventfd for OOM events of the v1 memory cgroup `dir`.
    pub fn v1(dir: &Path) -> Result<OomWatch> {
        let efd = crate::sys::notify::eventfd().ctx(|| "eventfd")?;
        let control = std::fs::File::open(dir.join("memory.oom_control"))
            .ctx(|| format!("open {}/memory.oom_control", dir.display()))?;
        let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
        super::files::write(dir, "cgroup.event_control", &line)?;
        Ok(OomWatch {
            fd: efd,
            kind: OomKind::V1 {
                _control: control,
                dir: dir.to_path_buf(),
            },
        })
    }

    /// Watch memory.events of the v2 cgroup `dir` for a growing oom_kill count.
    pub fn v2(dir: &Path) -> Result<OomWatch> {
        let events = dir.join("memory.events");
        let fd = crate::sys::notify::inotify_modify(&events)
            .ctx(|| format!("watch {}", events.display()))?;
        Ok(OomWatch {
            fd,
            kind: OomKind::V2 {
                dir: dir.to_path_buf(),
                last: oom_kills(dir),
            },
        })
    }

    /// Wait up to `timeout`; the number of OOM events seen, or None once the
    /// cgroup is gone (the container was deleted).
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<u64>> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        let n = match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e).ctx(|| "poll OOM notifications"),
        };
        let ready = n > 0;
        match &mut self.kind {
            OomKind::V1 { dir, .. } => {
                let count = if ready {
                    crate::sys::notify::drain(self.fd.as_fd())
                } else {
                    0
                };
                // The eventfd also fires when the cgroup is removed.
                if !dir.join("cgroup.event_control").exists() {
                    return Ok(None);
                }
                Ok(Some(count))
            }
            OomKind::V2 { dir, last } => {
                if ready {
                    crate::sys::notify::drain(self.fd.as_fd());
                }
                if !dir.exists() {
                    return Ok(None);
                }
                let now = oom_kills(dir);
                let new = now.saturating_sub(*last);
                *last = now;
                Ok(Some(new))
            }
        }
    }
}

fn oom_kills(dir: &Path) -> u64 {
    let s = read(dir, "memory.events").unwrap_or_default();
    let n = flat_keyed(&s)
        .find(|(k, _)| *k == "oom_kill")
        .map_or(0, |x| x.1);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_names() {
        assert_eq!(parse_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_list(""), Vec::<u16>::new());
        assert_eq!(size_name(2 * 1024 * 1024), "2MB");
        assert_eq!(size_name(1024 * 1024 * 1024), "1GB");
        assert_eq!(size_name(64 * 1024), "64KB");
    }

    #[test]
    fn blkio_parsing() {
        let v1 = v1_blkio_entries("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(v1.len(), 2);
        assert_eq!(v1[0].op, "Read");
        assert_eq!(v1[0].value, 4096);
        let v2 = v2_io("254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\n");
        assert_eq!(v2.io_service_bytes_recursive.len(), 2);
        assert_eq!(v2.io_serviced_recursive[1].value, 2);
    }

    #[test]
    fn pressure_files() {
        let p = parse_psi(
            "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n",
        );
        assert_eq!(p.some.avg10, 1.5);
        assert_eq!(p.some.total, 12345);
        assert_eq!(p.full.total, 7);
        // runc's PSIData field names.
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(
            j["some"],
            serde_json::json!({"avg10": 1.5, "avg60": 0.25, "avg300": 0.0, "total": 12345})
        );
    }

    #[test]
    fn shape_matches_runc() {
        let j = serde_json::to_value(Stats::default()).unwrap();
        for k in ["cpu", "memory", "pids", "blkio", "hugetlb", "cpuset"] {
            assert!(j.get(k).is_some(), "{k}");
        }
        assert_eq!(j["blkio"], serde_json::json!({}));
        assert_eq!(
            j["memory"]["usage"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(j["network_interfaces"], serde_json::Value::Null);
        // runc's v2 cpuset: no lists, every flag zero.
        let keys: Vec<&str> = j["cpuset"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 9, "{keys:?}");
        assert_eq!(j["cpuset"]["sched_relax_domain_level"], 0);
    }
}
