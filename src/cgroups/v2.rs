//! The cgroup v2 manager: one directory in the unified tree. The spec's v1
//! numbers are converted (convert.rs); devices are an eBPF program.

use super::config::{Resources, ThrottleKind};
use super::convert;
use super::files::{self, field_error};
use super::stats::{self, OomWatch};
use super::v2place;
use super::{CgroupMount, FreezerState, Manager};
use crate::bail;
use crate::error::{Context, Result};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Write one setting; a missing file whose controller is not enabled here says
/// so, naming the controller (a limit that needs it cannot be applied).
fn set(d: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    files::write(d, file, value).map_err(|e| {
        let ctrl = v2place::controller_of(file).filter(|_| e.not_found());
        match ctrl {
            Some(c) if !controller_enabled(d, c) => field_error(
                field,
                format!(
                    "the {c} controller is not enabled for {} (not in its cgroup.controllers: the parent does not delegate it)",
                    d.display()
                ),
            ),
            _ => field_error(field, e),
        }
    })
}

fn controller_enabled(d: &Path, c: &str) -> bool {
    files::read(d, "cgroup.controllers").is_ok_and(|s| s.split_whitespace().any(|x| x == c))
}

pub struct V2 {
    dir: PathBuf,
    /// The cgroup2 mount point, known at create; controllers are enabled from
    /// here down. None for a loaded manager (its cgroup already exists).
    root: Option<PathBuf>,
    /// Our own cgroup's directory (create only): its subtree_control is never written.
    own: Option<PathBuf>,
    persisted: String,
    /// Off in unit tests, which run against a plain directory.
    bpf_devices: bool,
}

impl V2 {
    pub fn new(dir: PathBuf, root: Option<PathBuf>, persisted: String) -> V2 {
        V2 {
            dir,
            root,
            own: None,
            persisted,
            bpf_devices: true,
        }
    }

    #[cfg(test)]
    pub fn fake(dir: PathBuf, root: PathBuf) -> V2 {
        V2 {
            persisted: String::new(),
            dir,
            root: Some(root),
            own: None,
            bpf_devices: false,
        }
    }

    /// Tell the manager which cgroup we run in (see v2place).
    pub fn with_own(mut self, own: Option<PathBuf>) -> V2 {
        self.own = own;
        self
    }

    /// The container's cgroup, made as runc's v2 code makes it.
    fn make(&self) -> Result<()> {
        match &self.root {
            Some(root) => {
                v2place::create(root, &self.dir, self.own.as_deref())?;
            }
            // A loaded manager's cgroup exists (exec may name a sub-cgroup).
            None => {
                files::mkdir_all(&self.dir)?;
            }
        }
        Ok(())
    }

    fn set_resources(&self, r: &Resources) -> Result<()> {
        let d = self.dir.as_path();
        if let Some(rules) = &r.devices {
            if self.bpf_devices {
                super::devices_bpf::apply(d, rules)?;
            }
        }
        if let Some(v) = &r.cpu.cpus {
            set(d, "cpuset.cpus", v, "cpu.cpus")?;
        }
        if let Some(v) = &r.cpu.mems {
            set(d, "cpuset.mems", v, "cpu.mems")?;
        }
        self.set_memory(r)?;
        self.set_cpu(r)?;
        if let Some(p) = r.pids {
            let v = p.map_or_else(|| "max".to_string(), |l| l.to_string());
            set(d, "pids.max", &v, "pids.limit")?;
        }
        self.set_io(r)?;
        for h in &r.hugepages {
            let v = convert::v2_bytes(h.limit);
            set(d, &format!("hugetlb.{}.max", h.size), &v, "hugepageLimits")?;
            let rsvd = format!("hugetlb.{}.rsvd.max", h.size);
            if d.join(&rsvd).exists() {
                set(d, &rsvd, &v, "hugepageLimits")?;
            }
        }
        if r.net_classid.is_some() || !r.net_prio.is_empty() {
            bail!("linux.resources.network: net_cls and net_prio do not exist on cgroup v2 (use an eBPF or tc based network policy)");
        }
        for x in &r.rdma {
            set(d, "rdma.max", &x.line(), "rdma")?;
        }
        for (k, v) in &r.unified {
            files::write(d, k, v).map_err(|e| {
                if e.not_found() {
                    field_error(
                        &format!("unified[{k:?}]"),
                        format!(
                            "no such file in {} (is its controller enabled?)",
                            d.display()
                        ),
                    )
                } else {
                    field_error(&format!("unified[{k:?}]"), e)
                }
            })?;
        }
        Ok(())
    }

    fn set_memory(&self, r: &Resources) -> Result<()> {
        let d = self.dir.as_path();
        let m = &r.memory;
        if m.swappiness.is_some() {
            log::warn!("linux.resources.memory.swappiness is ignored on cgroup v2");
        }
        if m.disable_oom_killer {
            log::warn!("linux.resources.memory.disableOOMKiller is ignored on cgroup v2");
        }
        // cgroup v2 has no kernel memory limits: runc's one warning.
        if m.kernel_tcp.is_some() || m.kernel.is_some() {
            log::warn!("{}", super::config::KMEM_IGNORED);
        }
        if m.limit.is_none() && m.swap.is_none() && m.reservation.is_none() {
            return Ok(());
        }
        if let (true, Some(l)) = (m.check_before_update, m.limit) {
            let cur = files::read_u64(d, "memory.current")?;
            if l > 0 && (l as u64) < cur {
                bail!("linux.resources.memory.limit: {l} is below the current usage {cur} (checkBeforeUpdate)");
            }
        }
        let swap =
            convert::swap_to_v2(m.swap, m.limit).map_err(|e| field_error("memory.swap", e))?;
        if let Some(s) = swap {
            match files::write(d, "memory.swap.max", &s) {
                Ok(()) => {}
                // No swap accounting: "unlimited" and "none" are what we have anyway.
                Err(e) if e.not_found() && (s == "max" || s == "0") => {}
                Err(e) if e.not_found() => bail!(
                    "linux.resources.memory.swap: swap accounting is not enabled in this kernel"
                ),
                Err(e) => return Err(field_error("memory.swap", e)),
            }
        }
        if let Some(l) = m.limit {
            set(d, "memory.max", &convert::v2_bytes(l), "memory.limit")?;
        }
        if let Some(v) = m.reservation {
            set(d, "memory.low", &convert::v2_bytes(v), "memory.reservation")?;
        }
        Ok(())
    }

    fn set_cpu(&self, r: &Resources) -> Result<()> {
        let d = self.dir.as_path();
        let c = &r.cpu;
        if c.rt_runtime.is_some() || c.rt_period.is_some() {
            bail!("linux.resources.cpu.realtimeRuntime/realtimePeriod: not supported on cgroup v2");
        }
        if let Some(i) = c.idle {
            set(d, "cpu.idle", &i.to_string(), "cpu.idle")?;
        }
        if let Some(s) = c.shares {
            let w = convert::shares_to_weight(s).to_string();
            set(d, "cpu.weight", &w, "cpu.shares")?;
        }
        if let Some(m) = convert::cpu_max(c.quota, c.period) {
            set(d, "cpu.max", &m, "cpu.quota")?;
        }
        if let Some(b) = c.burst {
            set(d, "cpu.max.burst", &b.to_string(), "cpu.burst")?;
        }
        Ok(())
    }

    fn set_io(&self, r: &Resources) -> Result<()> {
        let d = self.dir.as_path();
        let b = &r.blkio;
        if b.leaf_weight.is_some() || b.weight_device.iter().any(|w| w.leaf_weight.is_some()) {
            log::warn!("linux.resources.blockIO leaf weights are ignored on cgroup v2");
        }
        // BFQ takes the v1 numbers as they are; io.weight wants them converted.
        let bfq = d.join("io.bfq.weight").exists();
        if let Some(w) = b.weight {
            if bfq {
                set(d, "io.bfq.weight", &w.to_string(), "blockIO.weight")?;
            } else {
                let v = convert::blkio_to_io_weight(w).to_string();
                set(d, "io.weight", &v, "blockIO.weight")?;
            }
        }
        for wd in &b.weight_device {
            let Some(w) = wd.weight else { continue };
            let (f, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", convert::blkio_to_io_weight(w))
            };
            let line = format!("{}:{} {v}", wd.major, wd.minor);
            set(d, f, &line, "blockIO.weightDevice")?;
        }
        for t in &b.throttle {
            let key = match t.kind {
                ThrottleKind::ReadBps => "rbps",
                ThrottleKind::WriteBps => "wbps",
                ThrottleKind::ReadIops => "riops",
                ThrottleKind::WriteIops => "wiops",
            };
            let rate = if t.rate == 0 {
                "max".to_string()
            } else {
                t.rate.to_string()
            };
            let line = format!("{}:{} {key}={rate}", t.major, t.minor);
            set(d, "io.max", &line, t.kind.field())?;
        }
        Ok(())
    }

    fn frozen_event(&self) -> Result<Option<bool>> {
        let ev = files::read(&self.dir, "cgroup.events")?;
        let frozen = files::flat_keyed(&ev)
            .find(|(k, _)| *k == "frozen")
            .map(|(_, v)| v == 1);
        Ok(frozen)
    }
}

impl Manager for V2 {
    fn path(&self) -> &str {
        &self.persisted
    }

    fn apply(&self, pid: i32) -> Result<()> {
        self.make()?;
        files::write(&self.dir, "cgroup.procs", &pid.to_string())
            .ctx(|| format!("join cgroup {}", self.dir.display()))
    }

    fn clone_into(&self) -> Result<Option<std::os::fd::OwnedFd>> {
        self.make()?;
        let fd = nix::fcntl::open(
            &self.dir,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("open cgroup {}", self.dir.display()))?;
        Ok(Some(fd))
    }

    fn set(&self, resources: &LinuxResources) -> Result<()> {
        self.set_resources(&Resources::from_spec(resources)?)
    }

    fn destroy(&self) -> Result<()> {
        files::remove_tree(&self.dir, Duration::from_secs(2))
    }

    fn freeze(&self, state: FreezerState) -> Result<()> {
        let want = state == FreezerState::Frozen;
        files::write(&self.dir, "cgroup.freeze", if want { "1" } else { "0" })
            .map_err(|e| crate::error::Error::new(format!("freezer: {e}")))?;
        // cgroup.events says "frozen 1" once every task has stopped.
        let done = files::wait_until(Duration::from_secs(5), || {
            Ok(self.frozen_event()?.unwrap_or(want) == want)
        })?;
        if !done {
            if want {
                let _ = files::write(&self.dir, "cgroup.freeze", "0");
            }
            bail!(
                "{} {}: timed out after 5s",
                if want { "freeze" } else { "thaw" },
                self.dir.display()
            );
        }
        Ok(())
    }

    fn kill_all(&self) -> Result<bool> {
        if !self.dir.join("cgroup.kill").exists() {
            return Ok(false);
        }
        files::write(&self.dir, "cgroup.kill", "1")
            .map_err(|e| crate::error::Error::new(format!("kill --all: {e}")))?;
        Ok(true)
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        match files::read(&self.dir, "cgroup.freeze") {
            Ok(s) if s.trim() == "1" => Ok(FreezerState::Frozen),
            Ok(_) => Ok(FreezerState::Thawed),
            Err(_) if !self.dir.exists() => Ok(FreezerState::Thawed),
            Err(e) => Err(e),
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        files::pids_recursive(&self.dir)
    }

    fn stats(&self) -> Result<stats::Stats> {
        Ok(stats::v2(&self.dir))
    }

    fn mounts(&self) -> Vec<CgroupMount> {
        vec![CgroupMount {
            name: String::new(),
            host: self.dir.clone(),
        }]
    }

    fn oom_watch(&self) -> Result<OomWatch> {
        OomWatch::v2(&self.dir)
    }

    fn memory_events(&self) -> super::oom::MemoryEvents {
        super::oom::v2(&self.dir)
    }
}

/// Unit tests against a directory laid out like cgroupfs: the interface files
/// exist (empty), and the test reads back what the manager wrote.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;

    struct FakeFs {
        root: PathBuf,
    }

    const FILES: &[&str] = &[
        "cgroup.procs",
        "cgroup.freeze",
        "cgroup.events",
        "cgroup.subtree_control",
        "cgroup.controllers",
        "cpu.weight",
        "cpu.max",
        "cpu.max.burst",
        "cpu.idle",
        "cpuset.cpus",
        "cpuset.mems",
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "memory.current",
        "pids.max",
        "io.weight",
        "io.max",
        "hugetlb.2MB.max",
        "rdma.max",
    ];

    impl FakeFs {
        fn new(name: &str) -> FakeFs {
            let root =
                std::env::temp_dir().join(format!("cgroups-v2-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).unwrap();
            fs::write(
                root.join("cgroup.controllers"),
                "cpuset cpu io memory hugetlb pids rdma\n",
            )
            .unwrap();
            fs::write(root.join("cgroup.subtree_control"), "").unwrap();
            FakeFs { root }
        }

        /// The container's directory with its interface files, as the kernel
        /// would populate it on mkdir.
        fn container(&self, rel: &str) -> V2 {
            let dir = self.root.join(rel);
            fs::create_dir_all(&dir).unwrap();
            for f in FILES {
                fs::write(dir.join(f), "").unwrap();
            }
            fs::write(
                dir.join("cgroup.controllers"),
                "cpuset cpu io memory hugetlb pids rdma\n",
            )
            .unwrap();
            fs::write(dir.join("memory.current"), "1048576\n").unwrap();
            V2::fake(dir, self.root.clone())
        }

        fn read(&self, rel: &str) -> String {
            fs::read_to_string(self.root.join(rel)).unwrap()
        }
    }

    impl Drop for FakeFs {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn spec(j: serde_json::Value) -> LinuxResources {
        serde_json::from_value(j).unwrap()
    }

    #[test]
    fn apply_enables_controllers_and_joins() {
        let f = FakeFs::new("apply");
        let m = f.container("a/c1");
        fs::write(f.root.join("a/cgroup.subtree_control"), "cpu\n").unwrap();
        fs::write(
            f.root.join("a/cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma\n",
        )
        .unwrap();
        m.apply(4242).unwrap();
        assert_eq!(f.read("a/c1/cgroup.procs"), "4242");
        assert_eq!(
            f.read("cgroup.subtree_control"),
            "+cpuset +cpu +io +memory +hugetlb +pids +rdma"
        );
        // "a" had cpu already: only the rest is written.
        assert_eq!(
            f.read("a/cgroup.subtree_control"),
            "+cpuset +io +memory +hugetlb +pids +rdma"
        );
    }

    #[test]
    fn v1_values_are_converted() {
        let f = FakeFs::new("convert");
        let m = f.container("c2");
        m.set(&spec(json!({
            "memory": {"limit": 104857600, "swap": 209715200, "reservation": 52428800},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0", "idle": 0, "burst": 1000},
            "pids": {"limit": 64},
            "blockIO": {"weight": 500,
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
            "unified": {"memory.low": "1000"}
        })))
        .unwrap();
        assert_eq!(f.read("c2/memory.max"), "104857600");
        assert_eq!(f.read("c2/memory.swap.max"), "104857600");
        // unified is written last and wins over reservation.
        assert_eq!(f.read("c2/memory.low"), "1000");
        assert_eq!(f.read("c2/cpu.weight"), "59");
        assert_eq!(f.read("c2/cpu.max"), "50000 100000");
        assert_eq!(f.read("c2/cpu.max.burst"), "1000");
        assert_eq!(f.read("c2/cpu.idle"), "0");
        assert_eq!(f.read("c2/cpuset.cpus"), "0");
        assert_eq!(f.read("c2/pids.max"), "64");
        assert_eq!(f.read("c2/io.weight"), "4950");
        // One write per line: the last throttle written is what the file holds.
        assert_eq!(f.read("c2/io.max"), "8:0 wiops=100");
        assert_eq!(f.read("c2/hugetlb.2MB.max"), "4194304");
        assert_eq!(f.read("c2/rdma.max"), "mlx5_1 hca_handle=3 hca_object=max");
    }

    #[test]
    fn unlimited_values() {
        let f = FakeFs::new("unlimited");
        let m = f.container("c3");
        m.set(&spec(json!({
            "memory": {"limit": -1},
            "cpu": {"quota": -1},
            "pids": {"limit": -1}
        })))
        .unwrap();
        assert_eq!(f.read("c3/memory.max"), "max");
        assert_eq!(f.read("c3/memory.swap.max"), "max");
        assert_eq!(f.read("c3/cpu.max"), "max 100000");
        assert_eq!(f.read("c3/pids.max"), "max");
    }

    #[test]
    fn errors_name_the_field() {
        let f = FakeFs::new("errors");
        let m = f.container("c4");
        let cases = [
            (json!({"cpu": {"quota": -7}}), "cpu.quota"),
            (json!({"memory": {"swap": 300}}), "memory.swap"),
            (
                json!({"cpu": {"realtimeRuntime": 1000}}),
                "cpu.realtimeRuntime",
            ),
            (json!({"network": {"classID": 1}}), "network"),
            (
                json!({"unified": {"nosuch.file": "1"}}),
                "unified[\"nosuch.file\"]",
            ),
            (
                json!({"memory": {"limit": 4096, "checkBeforeUpdate": true}}),
                "memory.limit",
            ),
        ];
        for (j, field) in cases {
            let e = m.set(&spec(j.clone())).unwrap_err();
            assert!(
                e.message().starts_with(&format!("linux.resources.{field}")),
                "{j}: {e}"
            );
        }
    }

    #[test]
    fn a_limit_without_its_controller_names_it() {
        let f = FakeFs::new("noctl");
        let m = f.container("c8");
        fs::write(m.dir.join("cgroup.controllers"), "cpu memory\n").unwrap();
        fs::remove_file(m.dir.join("pids.max")).unwrap();
        let e = m.set(&spec(json!({"pids": {"limit": 5}}))).unwrap_err();
        assert!(
            e.message()
                .starts_with("linux.resources.pids.limit: the pids controller is not enabled"),
            "{e}"
        );
        // No limit needs it: fine.
        m.set(&spec(json!({"memory": {"limit": 4096}}))).unwrap();
    }

    #[test]
    fn kill_all_uses_cgroup_kill_where_the_kernel_has_it() {
        let f = FakeFs::new("kill");
        let m = f.container("c9");
        assert!(!m.kill_all().unwrap(), "no cgroup.kill: signal one by one");
        fs::write(m.dir.join("cgroup.kill"), "").unwrap();
        assert!(m.kill_all().unwrap());
        assert_eq!(f.read("c9/cgroup.kill"), "1");
    }

    #[test]
    fn freeze_and_state() {
        let f = FakeFs::new("freeze");
        let m = f.container("c5");
        fs::write(m.dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        m.freeze(FreezerState::Frozen).unwrap();
        assert_eq!(f.read("c5/cgroup.freeze"), "1");
        assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
        fs::write(m.dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        m.freeze(FreezerState::Thawed).unwrap();
        assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    }

    #[test]
    fn pids_and_mounts() {
        let f = FakeFs::new("pids");
        let m = f.container("c6");
        fs::write(m.dir.join("cgroup.procs"), "10\n11\n").unwrap();
        fs::create_dir(m.dir.join("sub")).unwrap();
        fs::write(m.dir.join("sub/cgroup.procs"), "12\n").unwrap();
        let mut p = m.pids().unwrap();
        p.sort();
        assert_eq!(p, vec![10, 11, 12]);
        assert_eq!(m.mounts()[0].name, "");
        assert_eq!(m.mounts()[0].host, m.dir);
    }

    #[test]
    fn stats_from_files() {
        let f = FakeFs::new("stats");
        let m = f.container("c7");
        fs::write(
            m.dir.join("cpu.stat"),
            "usage_usec 10\nuser_usec 6\nsystem_usec 4\n",
        )
        .unwrap();
        fs::write(m.dir.join("memory.max"), "max\n").unwrap();
        fs::write(m.dir.join("pids.current"), "3\n").unwrap();
        fs::write(m.dir.join("pids.max"), "max\n").unwrap();
        fs::write(
            m.dir.join("memory.pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
        )
        .unwrap();
        let s = serde_json::to_value(m.stats().unwrap()).unwrap();
        assert_eq!(s["memory"]["psi"]["full"]["total"], 3);
        assert!(s["cpu"].get("psi").is_none(), "no cpu.pressure file");
        assert_eq!(s["cpu"]["usage"]["total"], 10_000);
        assert_eq!(s["cpu"]["usage"]["user"], 6_000);
        assert_eq!(s["memory"]["usage"]["usage"], 1_048_576);
        assert_eq!(s["pids"], json!({"current": 3}));
    }
}
