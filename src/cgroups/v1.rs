//! The cgroup v1 manager: one directory per mounted hierarchy (plus, on a
//! hybrid host, the controller-less cgroup2 tree that systemd-style tools read).

use super::config::{DeviceRule, Resources, ThrottleKind};
use super::devices_v1::Emulator;
use super::files::{self, field_error, set};
use super::stats::{self, OomWatch, V1Dirs};
use super::{CgroupMount, FreezerState, Manager};
use crate::bail;
use crate::error::{Context, Result};
use oci_spec::runtime::LinuxResources;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Dir {
    /// Controllers as /proc/self/cgroup names the hierarchy ("cpu,cpuacct", "name=systemd").
    pub key: String,
    pub path: PathBuf,
    /// The entry under /sys/fs/cgroup that shows it ("systemd" for name=systemd).
    pub name: String,
}

pub struct V1 {
    dirs: Vec<Dir>,
    unified: Option<PathBuf>,
    persisted: String,
}

impl V1 {
    pub fn new(dirs: Vec<Dir>, unified: Option<PathBuf>, persisted: String) -> V1 {
        V1 {
            dirs,
            unified,
            persisted,
        }
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.key.split(',').any(|c| c == controller))
            .map(|d| d.path.as_path())
    }

    /// The directory of a controller a setting needs, or an error naming both.
    fn need(&self, controller: &str, field: &str) -> Result<&Path> {
        self.dir(controller).ok_or_else(|| {
            field_error(
                field,
                format!("the {controller} cgroup controller is not mounted on this host"),
            )
        })
    }

    fn set_resources(&self, r: &Resources) -> Result<()> {
        if let Some(rules) = &r.devices {
            set_devices(self.need("devices", "devices")?, rules)?;
        }
        self.set_cpuset(r)?;
        self.set_memory(r)?;
        self.set_cpu(r)?;
        if let Some(p) = r.pids {
            let d = self.need("pids", "pids.limit")?;
            let v = p.map_or_else(|| "max".to_string(), |l| l.to_string());
            set(d, "pids.max", &v, "pids.limit")?;
        }
        self.set_blkio(r)?;
        for h in &r.hugepages {
            let d = self.need("hugetlb", "hugepageLimits")?;
            let f = format!("hugetlb.{}.limit_in_bytes", h.size);
            set(d, &f, &h.limit.to_string(), "hugepageLimits")?;
            let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", h.size);
            if d.join(&rsvd).exists() {
                set(d, &rsvd, &h.limit.to_string(), "hugepageLimits")?;
            }
        }
        if let Some(id) = r.net_classid {
            let d = self.need("net_cls", "network.classID")?;
            set(d, "net_cls.classid", &id.to_string(), "network.classID")?;
        }
        for (iface, prio) in &r.net_prio {
            let d = self.need("net_prio", "network.priorities")?;
            set(
                d,
                "net_prio.ifpriomap",
                &format!("{iface} {prio}"),
                "network.priorities",
            )?;
        }
        for x in &r.rdma {
            let d = self.need("rdma", "rdma")?;
            set(d, "rdma.max", &x.line(), "rdma")?;
        }
        if !r.unified.is_empty() {
            let keys: Vec<&str> = r.unified.iter().map(|(k, _)| k.as_str()).collect();
            bail!(
                "linux.resources.unified: cannot be used on cgroup v1 (this host has {}; keys {})",
                if self.unified.is_some() {
                    "a hybrid layout with no controllers on cgroup2"
                } else {
                    "only cgroup v1"
                },
                keys.join(", ")
            );
        }
        Ok(())
    }

    fn set_cpuset(&self, r: &Resources) -> Result<()> {
        for (v, file, field) in [
            (&r.cpu.cpus, "cpuset.cpus", "cpu.cpus"),
            (&r.cpu.mems, "cpuset.mems", "cpu.mems"),
        ] {
            if let Some(v) = v {
                set(self.need("cpuset", field)?, file, v, field)?;
            }
        }
        Ok(())
    }

    fn set_memory(&self, r: &Resources) -> Result<()> {
        let m = &r.memory;
        let any = m.limit.is_some()
            || m.swap.is_some()
            || m.reservation.is_some()
            || m.swappiness.is_some()
            || m.kernel_tcp.is_some()
            || m.kernel.is_some()
            || m.disable_oom_killer
            || m.use_hierarchy.is_some();
        if !any {
            return Ok(());
        }
        let d = self.need("memory", "memory")?;
        let has_swap = d.join("memory.memsw.limit_in_bytes").exists();
        let mut swap = m.swap;
        // Unlimited memory without a swap setting: unlimited swap too, or the
        // old memory+swap limit would sit below the new memory limit.
        if m.limit == Some(-1) && swap.is_none() && has_swap {
            swap = Some(-1);
        }
        if swap.is_some() && !has_swap {
            bail!("linux.resources.memory.swap: swap accounting is not enabled in this kernel (no memory.memsw.limit_in_bytes)");
        }
        // The kernel keeps limit <= memsw at every step: raise memsw first when growing.
        let swap_first = match (m.limit, swap) {
            (Some(_), Some(s)) => {
                let cur = files::read_u64(d, "memory.limit_in_bytes")?;
                s == -1 || (s as u64) > cur
            }
            _ => false,
        };
        if swap_first {
            write_swap(d, swap)?;
        }
        if let Some(l) = m.limit {
            write_limit(d, l)?;
        }
        if !swap_first {
            write_swap(d, swap)?;
        }
        if let Some(v) = m.reservation {
            set(
                d,
                "memory.soft_limit_in_bytes",
                &v.to_string(),
                "memory.reservation",
            )?;
        }
        if m.disable_oom_killer {
            set(d, "memory.oom_control", "1", "memory.disableOOMKiller")?;
        }
        if let Some(k) = m.kernel_tcp {
            if d.join("memory.kmem.tcp.limit_in_bytes").exists() {
                set(
                    d,
                    "memory.kmem.tcp.limit_in_bytes",
                    &k.to_string(),
                    "memory.kernelTCP",
                )?;
            } else {
                log::warn!("{}", super::config::KMEM_IGNORED);
            }
        }
        if let Some(k) = m.kernel {
            if !set_kmem(d, k) {
                log::warn!("{}", super::config::KMEM_IGNORED);
            }
        }
        if let Some(s) = m.swappiness {
            set(d, "memory.swappiness", &s.to_string(), "memory.swappiness")?;
        }
        if let Some(h) = m.use_hierarchy {
            let want = if h { "1" } else { "0" };
            // Kernels >= 5.16 only accept 1: skip a write that changes nothing.
            if files::read(d, "memory.use_hierarchy")?.trim() != want {
                set(d, "memory.use_hierarchy", want, "memory.useHierarchy")?;
            }
        }
        Ok(())
    }

    fn set_cpu(&self, r: &Resources) -> Result<()> {
        let c = &r.cpu;
        let any = c.shares.is_some()
            || c.quota.is_some()
            || c.period.is_some()
            || c.burst.is_some()
            || c.rt_runtime.is_some()
            || c.rt_period.is_some()
            || c.idle.is_some();
        if !any {
            return Ok(());
        }
        let d = self.need("cpu", "cpu")?;
        // An idle group refuses shares (EINVAL): leave idle before writing
        // them; enter it after them, where runc's v1 order (shares first,
        // idle last) succeeds.
        let idle = |want: i64| match c.idle {
            Some(i) if i == want => set(d, "cpu.idle", &i.to_string(), "cpu.idle"),
            _ => Ok(()),
        };
        idle(0)?;
        if let Some(s) = c.shares {
            // The kernel clamps to [2, 262144] without an error; runc reads the
            // value back and refuses the clamp with these words.
            if s < 2 {
                bail!("linux.resources.cpu.shares: the minimum allowed cpu-shares is 2");
            }
            if s > 262_144 {
                bail!("linux.resources.cpu.shares: the maximum allowed cpu-shares is 262144");
            }
            set(d, "cpu.shares", &s.to_string(), "cpu.shares")?;
        }
        // A period the current quota does not fit fails: then quota goes first.
        write_pair(
            d,
            (
                "cpu.cfs_period_us",
                c.period.map(|p| p.to_string()),
                "cpu.period",
            ),
            (
                "cpu.cfs_quota_us",
                c.quota.map(|q| q.to_string()),
                "cpu.quota",
            ),
        )?;
        if let Some(b) = c.burst {
            set(d, "cpu.cfs_burst_us", &b.to_string(), "cpu.burst")?;
        }
        write_pair(
            d,
            (
                "cpu.rt_period_us",
                c.rt_period.map(|p| p.to_string()),
                "cpu.realtimePeriod",
            ),
            (
                "cpu.rt_runtime_us",
                c.rt_runtime.map(|q| q.to_string()),
                "cpu.realtimeRuntime",
            ),
        )?;
        idle(1)
    }

    fn set_blkio(&self, r: &Resources) -> Result<()> {
        let b = &r.blkio;
        let any = b.weight.is_some()
            || b.leaf_weight.is_some()
            || !b.weight_device.is_empty()
            || !b.throttle.is_empty();
        if !any {
            return Ok(());
        }
        let d = self.need("blkio", "blockIO")?;
        // CFQ spells it blkio.weight, BFQ blkio.bfq.weight; without either
        // scheduler the kernel has no proportional weights at all.
        let weight_file = ["blkio.weight", "blkio.bfq.weight"]
            .into_iter()
            .find(|f| d.join(f).exists());
        let no_weights = |field: &str| {
            field_error(
                field,
                "not supported: the kernel has no blkio.weight or blkio.bfq.weight (no CFQ/BFQ I/O scheduler)",
            )
        };
        if let Some(w) = b.weight {
            let f = weight_file.ok_or_else(|| no_weights("blockIO.weight"))?;
            set(d, f, &w.to_string(), "blockIO.weight")?;
        }
        let no_leaf = |field: &str| {
            field_error(
                field,
                "not supported: the kernel has no blkio.leaf_weight (a CFQ-only setting)",
            )
        };
        let has_leaf = d.join("blkio.leaf_weight").exists();
        if let Some(w) = b.leaf_weight {
            if !has_leaf {
                return Err(no_leaf("blockIO.leafWeight"));
            }
            set(d, "blkio.leaf_weight", &w.to_string(), "blockIO.leafWeight")?;
        }
        for wd in &b.weight_device {
            let dev = format!("{}:{}", wd.major, wd.minor);
            if let Some(w) = wd.weight {
                let f = weight_file.ok_or_else(|| no_weights("blockIO.weightDevice"))?;
                let f = format!("{f}_device");
                set(d, &f, &format!("{dev} {w}"), "blockIO.weightDevice")?;
            }
            if let Some(w) = wd.leaf_weight {
                if !has_leaf {
                    return Err(no_leaf("blockIO.weightDevice.leafWeight"));
                }
                set(
                    d,
                    "blkio.leaf_weight_device",
                    &format!("{dev} {w}"),
                    "blockIO.weightDevice.leafWeight",
                )?;
            }
        }
        for t in &b.throttle {
            let f = match t.kind {
                ThrottleKind::ReadBps => "blkio.throttle.read_bps_device",
                ThrottleKind::WriteBps => "blkio.throttle.write_bps_device",
                ThrottleKind::ReadIops => "blkio.throttle.read_iops_device",
                ThrottleKind::WriteIops => "blkio.throttle.write_iops_device",
            };
            let line = format!("{}:{} {}", t.major, t.minor, t.rate);
            set(d, f, &line, t.kind.field())?;
        }
        Ok(())
    }

    fn freeze_wait(&self, d: &Path) -> Result<()> {
        // FREEZING can stall while a task is in an uninterruptible sleep;
        // writing FROZEN again retries the tasks that were missed.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut nap = Duration::from_micros(100);
        loop {
            files::write(d, "freezer.state", "FROZEN")?;
            let s = files::read(d, "freezer.state")?;
            if s.trim() == "FROZEN" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = files::write(d, "freezer.state", "THAWED");
                bail!("freeze {}: still {} after 5s", d.display(), s.trim());
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(10));
        }
    }
}

/// Write only the rules between what devices.list shows and what is asked
/// (see devices_v1), then read the list back: a deny-default cgroup must show
/// exactly the asked exceptions, as runc checks.
fn set_devices(d: &Path, rules: &[DeviceRule]) -> Result<()> {
    let ctx = |e: crate::error::Error| field_error("devices", e);
    let current = Emulator::from_list(&files::read(d, "devices.list")?).map_err(ctx)?;
    let target = Emulator::build(rules)?;
    for rule in current.transition(&target) {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        set(d, file, &rule.v1_line(), "devices")?;
    }
    let after = Emulator::from_list(&files::read(d, "devices.list")?).map_err(ctx)?;
    // An allow-default cgroup lists no exceptions: only its mode can be checked.
    let same = if target.allows_by_default() {
        after.allows_by_default()
    } else {
        after == target
    };
    if !same {
        bail!(
            "linux.resources.devices: {}/devices.list does not show the requested rules after writing them",
            d.display()
        );
    }
    Ok(())
}

fn write_limit(d: &Path, limit: i64) -> Result<()> {
    match files::write(d, "memory.limit_in_bytes", &limit.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if e.errno() == Some(libc::EBUSY) => {
            let usage = files::read_u64(d, "memory.usage_in_bytes").unwrap_or(0);
            let peak = files::read_u64(d, "memory.max_usage_in_bytes").unwrap_or(0);
            Err(field_error(
                "memory.limit",
                format!("cannot set {limit}: below the current usage {usage} (peak {peak})"),
            ))
        }
        Err(e) => Err(field_error("memory.limit", e)),
    }
}

fn write_swap(d: &Path, swap: Option<i64>) -> Result<()> {
    match swap {
        Some(s) => set(
            d,
            "memory.memsw.limit_in_bytes",
            &s.to_string(),
            "memory.swap",
        ),
        None => Ok(()),
    }
}

/// Write `first` then `second`; if `first` is refused, try the other order.
fn write_pair(
    d: &Path,
    first: (&str, Option<String>, &str),
    second: (&str, Option<String>, &str),
) -> Result<()> {
    let w = |(f, v, field): &(&str, Option<String>, &str)| match v {
        Some(v) => set(d, f, v, field),
        None => Ok(()),
    };
    if w(&first).is_ok() {
        return w(&second);
    }
    w(&second)?;
    w(&first)
}

/// A new v1 cpuset cgroup starts with empty cpus and mems, and no task can join
/// it until they are set: fill each empty level from its parent, top down.
fn init_cpuset(dir: &Path) -> Result<()> {
    let mut empty = Vec::new();
    let mut p = dir;
    loop {
        let cpus = files::read(p, "cpuset.cpus")?;
        let mems = files::read(p, "cpuset.mems")?;
        if !cpus.trim().is_empty() && !mems.trim().is_empty() {
            break;
        }
        empty.push(p);
        match p.parent() {
            Some(parent) => p = parent,
            None => bail!("cpuset: no ancestor of {} has cpus and mems", dir.display()),
        }
    }
    for d in empty.into_iter().rev() {
        let parent = d.parent().unwrap_or(d);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if files::read(d, f)?.trim().is_empty() {
                let v = files::read(parent, f)?;
                files::write(d, f, v.trim())?;
            }
        }
    }
    Ok(())
}

/// Create the directories and move `pid` in: shared by v1 dirs and hybrid's cgroup2 one.
pub fn join(dir: &Path, pid: i32, cpuset: bool) -> Result<()> {
    files::mkdir_all(dir)?;
    if cpuset {
        init_cpuset(dir)?;
    }
    files::write(dir, "cgroup.procs", &pid.to_string())
        .ctx(|| format!("join cgroup {}", dir.display()))
}

impl Manager for V1 {
    fn path(&self) -> &str {
        &self.persisted
    }

    fn apply(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            join(&d.path, pid, d.key.split(',').any(|c| c == "cpuset"))?;
        }
        self.apply_joined(pid)
    }

    fn join_files(&self) -> Result<Vec<OwnedFd>> {
        let mut fds = Vec::with_capacity(self.dirs.len());
        for d in &self.dirs {
            files::mkdir_all(&d.path)?;
            if d.key.split(',').any(|c| c == "cpuset") {
                init_cpuset(&d.path)?;
            }
            let tasks = d.path.join("tasks");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(&tasks)
                .ctx(|| format!("open {} to join the cgroup", tasks.display()))?;
            fds.push(f.into());
        }
        Ok(fds)
    }

    fn apply_joined(&self, pid: i32) -> Result<()> {
        // Hybrid: the cgroup2 tree carries no controllers, only membership that
        // tools like systemd read; a host that will not let us in is no reason
        // to fail the container.
        if let Some(u) = &self.unified {
            if let Err(e) = join(u, pid, false) {
                log::warn!("cgroup2 (hybrid) placement skipped: {e}");
            }
        }
        Ok(())
    }

    fn set(&self, resources: &LinuxResources) -> Result<()> {
        self.set_resources(&Resources::from_spec(resources)?)
    }

    fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        let all = self
            .dirs
            .iter()
            .map(|d| d.path.as_path())
            .chain(self.unified.as_deref());
        for d in all {
            if let Err(e) = files::remove_tree(d, Duration::from_secs(2)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn freeze(&self, state: FreezerState) -> Result<()> {
        let Some(d) = self.dir("freezer") else {
            bail!("the freezer cgroup controller is not mounted on this host");
        };
        match state {
            FreezerState::Frozen => self.freeze_wait(d),
            FreezerState::Thawed => Ok(files::write(d, "freezer.state", "THAWED")?),
        }
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        let Some(d) = self.dir("freezer") else {
            return Ok(FreezerState::Thawed);
        };
        Ok(match files::read(d, "freezer.state")?.trim() {
            "FROZEN" => FreezerState::Frozen,
            _ => FreezerState::Thawed,
        })
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let d = ["pids", "freezer", "memory", "devices"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.dirs.first().map(|d| d.path.as_path()));
        match d {
            Some(d) => files::pids_recursive(d),
            None => Ok(Vec::new()),
        }
    }

    fn stats(&self) -> Result<stats::Stats> {
        let s = stats::v1(&V1Dirs {
            cpu: self.dir("cpu"),
            cpuacct: self.dir("cpuacct"),
            cpuset: self.dir("cpuset"),
            memory: self.dir("memory"),
            pids: self.dir("pids"),
            blkio: self.dir("blkio"),
            hugetlb: self.dir("hugetlb"),
        });
        Ok(s)
    }

    fn mounts(&self) -> Vec<CgroupMount> {
        self.dirs
            .iter()
            .map(|d| CgroupMount {
                name: d.name.clone(),
                host: d.path.clone(),
            })
            .collect()
    }

    fn memory_events(&self) -> super::oom::MemoryEvents {
        self.dir("memory").map(super::oom::v1).unwrap_or_default()
    }

    fn oom_watch(&self) -> Result<OomWatch> {
        match self.dir("memory") {
            Some(d) => OomWatch::v1(d),
            None => bail!("the memory cgroup controller is not mounted on this host"),
        }
    }
}

/// memory.kernel where the kernel honours it: Linux 4.6-5.15 keep the limit,
/// 5.16+ accept any write and keep "unlimited" (or refuse it), so the value
/// is read back. Whether it was kept; runc 1.1+ never applies it.
fn set_kmem(d: &Path, k: i64) -> bool {
    const F: &str = "memory.kmem.limit_in_bytes";
    if files::write(d, F, &k.to_string()).is_err() {
        return false;
    }
    if k < 0 {
        return true;
    }
    // The kernel keeps whole pages.
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    files::read_u64(d, F).is_ok_and(|got| got == (k as u64) / page * page)
}
