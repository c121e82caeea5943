//! linux.resources, checked and flattened once for both managers: every
//! impossible value is refused here with the spec field's name, and runc's
//! "zero means unset" conventions are applied, so v1.rs and v2.rs only write.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    pub memory: Memory,
    pub cpu: Cpu,
    /// pids.max; `Some(None)` is unlimited.
    pub pids: Option<Option<u64>>,
    pub blkio: BlkIo,
    pub hugepages: Vec<Hugepage>,
    pub net_classid: Option<u32>,
    pub net_prio: Vec<(String, u32)>,
    pub rdma: Vec<Rdma>,
    /// None leaves the device rules alone (`update` never changes them).
    pub devices: Option<Vec<DeviceRule>>,
    pub unified: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memory {
    /// -1 unlimited, else bytes.
    pub limit: Option<i64>,
    pub reservation: Option<i64>,
    /// memory+swap in v1 terms, -1 unlimited.
    pub swap: Option<i64>,
    pub swappiness: Option<u64>,
    /// Kernel TCP buffer limit (v1 memory.kmem.tcp.limit_in_bytes).
    pub kernel_tcp: Option<i64>,
    /// Kernel memory limit (v1 memory.kmem.limit_in_bytes, honoured by
    /// kernels before 5.16 only; later ones accept and ignore it).
    pub kernel: Option<i64>,
    pub disable_oom_killer: bool,
    pub use_hierarchy: Option<bool>,
    pub check_before_update: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cpu {
    pub shares: Option<u64>,
    /// -1 unlimited, else µs per period.
    pub quota: Option<i64>,
    pub period: Option<u64>,
    pub burst: Option<u64>,
    pub rt_runtime: Option<i64>,
    pub rt_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub idle: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlkIo {
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
    pub weight_device: Vec<WeightDevice>,
    pub throttle: Vec<Throttle>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleKind {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl ThrottleKind {
    pub fn field(self) -> &'static str {
        match self {
            ThrottleKind::ReadBps => "blockIO.throttleReadBpsDevice",
            ThrottleKind::WriteBps => "blockIO.throttleWriteBpsDevice",
            ThrottleKind::ReadIops => "blockIO.throttleReadIOPSDevice",
            ThrottleKind::WriteIops => "blockIO.throttleWriteIOPSDevice",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Throttle {
    pub kind: ThrottleKind,
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hugepage {
    /// "2MB", "1GB", as in the hugetlb.<size>.* file names.
    pub size: String,
    pub limit: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rdma {
    pub device: String,
    pub handles: Option<u32>,
    pub objects: Option<u32>,
}

impl Rdma {
    /// The rdma.max line (same file and format on v1 and v2); unset is "max".
    pub fn line(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "max".to_string(), |v| v.to_string());
        format!(
            "{} hca_handle={} hca_object={}",
            self.device,
            n(self.handles),
            n(self.objects)
        )
    }
}

/// runc's words (1.1+) for kernel memory limits it does not apply.
pub const KMEM_IGNORED: &str = "Kernel memory settings are ignored and will be removed";

/// Access bits as the kernel's bpf_cgroup_dev_ctx encodes them.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevKind {
    All,
    Char,
    Block,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DevKind,
    /// None is the wildcard.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl DeviceRule {
    const fn allow_char(major: Option<u32>, minor: Option<u32>, access: u8) -> Self {
        DeviceRule {
            allow: true,
            kind: DevKind::Char,
            major,
            minor,
            access,
        }
    }

    /// The v1 devices.allow/deny line: "c 1:3 rwm", "a *:* rwm".
    pub fn v1_line(&self) -> String {
        let t = match self.kind {
            DevKind::All => "a",
            DevKind::Char => "c",
            DevKind::Block => "b",
        };
        let n = |x: Option<u32>| x.map_or_else(|| "*".to_string(), |v| v.to_string());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{t} {}:{} {acc}", n(self.major), n(self.minor))
    }
}

/// What every device list starts from, whatever the spec says: a new cgroup
/// inherits its parent's rules (on most hosts "a *:* rwm"), and runc's device
/// filter starts from deny-all too, so a spec without device rules does not
/// leave host disks open to a process with CAP_MKNOD.
pub const DENY_ALL: DeviceRule = DeviceRule {
    allow: false,
    kind: DevKind::All,
    major: None,
    minor: None,
    access: ACC_ALL,
};

/// Devices every container may use, appended after the spec's rules as runc
/// does: mknod of anything, the /dev basics, ptys and /dev/net/tun (runc 1.1's
/// list; 1.2.0-1.2.3 dropped tun, 1.2.4 put it back).
pub const DEFAULT_DEVICES: &[DeviceRule] = &[
    DeviceRule::allow_char(None, None, ACC_MKNOD),
    DeviceRule {
        allow: true,
        kind: DevKind::Block,
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    DeviceRule::allow_char(Some(1), Some(3), ACC_ALL),
    DeviceRule::allow_char(Some(1), Some(8), ACC_ALL),
    DeviceRule::allow_char(Some(1), Some(7), ACC_ALL),
    DeviceRule::allow_char(Some(5), Some(0), ACC_ALL),
    DeviceRule::allow_char(Some(1), Some(5), ACC_ALL),
    DeviceRule::allow_char(Some(1), Some(9), ACC_ALL),
    DeviceRule::allow_char(Some(136), None, ACC_ALL),
    DeviceRule::allow_char(Some(5), Some(2), ACC_ALL),
    DeviceRule::allow_char(Some(10), Some(200), ACC_ALL),
];

fn bad(field: &str, msg: impl std::fmt::Display) -> Error {
    Error::new(format!("linux.resources.{field}: {msg}"))
}

/// runc treats 0 as "not set" for most numbers.
fn nz_i(v: Option<i64>) -> Option<i64> {
    v.filter(|x| *x != 0)
}

fn nz_u(v: Option<u64>) -> Option<u64> {
    v.filter(|x| *x != 0)
}

/// -1 (unlimited) or a positive number.
fn limit(field: &str, v: Option<i64>) -> Result<Option<i64>> {
    match nz_i(v) {
        Some(x) if x < -1 => Err(bad(
            field,
            format!("invalid value {x}: use -1 for unlimited or a positive number"),
        )),
        v => Ok(v),
    }
}

fn weight(field: &str, v: Option<u16>) -> Result<Option<u16>> {
    match v.filter(|w| *w != 0) {
        Some(w) if !(10..=1000).contains(&w) => {
            Err(bad(field, format!("weight {w} out of range 10-1000")))
        }
        v => Ok(v),
    }
}

fn dev_num(field: &str, v: i64) -> Result<i64> {
    if !(0..=u32::MAX as i64).contains(&v) {
        return Err(bad(field, format!("invalid device number {v}")));
    }
    Ok(v)
}

impl Resources {
    pub fn from_spec(r: &LinuxResources) -> Result<Resources> {
        let mut out = Resources::default();
        if let Some(m) = r.memory() {
            out.memory = memory(m)?;
        }
        if let Some(c) = r.cpu() {
            out.cpu = cpu(c)?;
        }
        if let Some(p) = r.pids() {
            // runc 1.4 (runtime-spec 1.3): negative is no limit; 0 is a real limit,
            // written as 1 because systemd refuses TasksMax=0 (the same either way:
            // no fork is possible in a cgroup whose init is already there).
            out.pids = Some(match p.limit() {
                l if l < 0 => None,
                0 => Some(1),
                l => Some(l as u64),
            });
        }
        if let Some(b) = r.block_io() {
            out.blkio = blkio(b)?;
        }
        for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
            let size = h.page_size().to_string();
            // Bytes, not str slices: a multibyte character before the B
            // must be refused, not split (a panic).
            let b = size.as_bytes();
            let ok = b.len() > 2
                && b[b.len() - 1] == b'B'
                && matches!(b[b.len() - 2], b'K' | b'M' | b'G')
                && b[..b.len() - 2].iter().all(u8::is_ascii_digit);
            if !ok {
                return Err(bad(
                    &format!("hugepageLimits[{i}].pageSize"),
                    format!("invalid page size {size:?} (expected like 2MB or 1GB)"),
                ));
            }
            out.hugepages.push(Hugepage {
                size,
                limit: h.limit(),
            });
        }
        if let Some(n) = r.network() {
            out.net_classid = n.class_id();
            for p in n.priorities().iter().flatten() {
                if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                    return Err(bad(
                        "network.priorities",
                        format!("invalid interface name {:?}", p.name()),
                    ));
                }
                out.net_prio.push((p.name().to_string(), p.priority()));
            }
        }
        if let Some(rd) = r.rdma() {
            let mut v: Vec<Rdma> = rd
                .iter()
                .map(|(k, x)| Rdma {
                    device: k.clone(),
                    handles: x.hca_handles(),
                    objects: x.hca_objects(),
                })
                .collect();
            v.sort_by(|a, b| a.device.cmp(&b.device));
            out.rdma = v;
        }
        if let Some(d) = r.devices() {
            out.devices = Some(devices(d)?);
        }
        if let Some(u) = r.unified() {
            let mut v: Vec<(String, String)> =
                u.iter().map(|(k, x)| (k.clone(), x.clone())).collect();
            v.sort();
            for (k, _) in &v {
                if k.is_empty() || k.contains('/') || k.starts_with('.') || !k.contains('.') {
                    return Err(bad(
                        &format!("unified[{k:?}]"),
                        "not a cgroup interface file name",
                    ));
                }
            }
            out.unified = v;
        }
        Ok(out)
    }
}

fn memory(m: &oci_spec::runtime::LinuxMemory) -> Result<Memory> {
    let out = Memory {
        limit: limit("memory.limit", m.limit())?,
        reservation: limit("memory.reservation", m.reservation())?,
        swap: limit("memory.swap", m.swap())?,
        swappiness: m.swappiness(),
        kernel_tcp: limit("memory.kernelTCP", m.kernel_tcp())?,
        kernel: limit("memory.kernel", m.kernel())?,
        disable_oom_killer: m.disable_oom_killer().unwrap_or(false),
        use_hierarchy: m.use_hierarchy(),
        check_before_update: m.check_before_update().unwrap_or(false),
    };
    if let Some(s) = out.swappiness {
        if s > 100 {
            return Err(bad(
                "memory.swappiness",
                format!("invalid value {s} (valid range is 0-100)"),
            ));
        }
    }
    if let (Some(l), Some(s)) = (out.limit, out.swap) {
        if l > 0 && s > 0 && s < l {
            return Err(bad(
                "memory.swap",
                format!("memory+swap limit {s} must be at least memory.limit {l}"),
            ));
        }
    }
    Ok(out)
}

fn cpu(c: &oci_spec::runtime::LinuxCpu) -> Result<Cpu> {
    let out = Cpu {
        shares: nz_u(c.shares()),
        quota: limit("cpu.quota", c.quota())?,
        period: nz_u(c.period()),
        burst: c.burst(),
        rt_runtime: limit("cpu.realtimeRuntime", c.realtime_runtime())?,
        rt_period: nz_u(c.realtime_period()),
        cpus: c.cpus().clone().filter(|s| !s.is_empty()),
        mems: c.mems().clone().filter(|s| !s.is_empty()),
        idle: c.idle(),
    };
    if let Some(i) = out.idle {
        if i != 0 && i != 1 {
            return Err(bad("cpu.idle", format!("invalid value {i} (0 or 1)")));
        }
    }
    for (field, v) in [("cpu.cpus", &out.cpus), ("cpu.mems", &out.mems)] {
        if let Some(s) = v {
            if !s
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
            {
                return Err(bad(field, format!("invalid list {s:?}")));
            }
        }
    }
    Ok(out)
}

fn blkio(b: &oci_spec::runtime::LinuxBlockIo) -> Result<BlkIo> {
    let mut out = BlkIo {
        weight: weight("blockIO.weight", b.weight())?,
        leaf_weight: weight("blockIO.leafWeight", b.leaf_weight())?,
        ..Default::default()
    };
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let f = format!("blockIO.weightDevice[{i}]");
        out.weight_device.push(WeightDevice {
            major: dev_num(&f, d.major())?,
            minor: dev_num(&f, d.minor())?,
            weight: weight(&f, d.weight())?,
            leaf_weight: weight(&f, d.leaf_weight())?,
        });
    }
    let lists = [
        (ThrottleKind::ReadBps, b.throttle_read_bps_device()),
        (ThrottleKind::WriteBps, b.throttle_write_bps_device()),
        (ThrottleKind::ReadIops, b.throttle_read_iops_device()),
        (ThrottleKind::WriteIops, b.throttle_write_iops_device()),
    ];
    for (kind, list) in lists {
        for (i, d) in list.iter().flatten().enumerate() {
            let f = format!("{}[{i}]", kind.field());
            out.throttle.push(Throttle {
                kind,
                major: dev_num(&f, d.major())?,
                minor: dev_num(&f, d.minor())?,
                rate: d.rate(),
            });
        }
    }
    Ok(out)
}

/// The resources `create` applies: the spec's, with the device rules always
/// present (deny-all plus the defaults when the spec has none), since only
/// `update` may leave the device rules alone.
pub fn for_create(r: Option<&LinuxResources>) -> LinuxResources {
    let mut r = r.cloned().unwrap_or_default();
    if r.devices().is_none() {
        r.set_devices(Some(Vec::new()));
    }
    r
}

fn devices(list: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    let mut out = Vec::with_capacity(list.len() + DEFAULT_DEVICES.len() + 1);
    out.push(DENY_ALL);
    for (i, d) in list.iter().enumerate() {
        let f = format!("devices[{i}]");
        let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DevKind::All,
            LinuxDeviceType::C => DevKind::Char,
            LinuxDeviceType::B => DevKind::Block,
            t => {
                return Err(bad(
                    &format!("{f}.type"),
                    format!(
                        "invalid cgroup device type {:?} (use a, b or c)",
                        t.as_str()
                    ),
                ))
            }
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(x) => u32::try_from(x)
                    .map(Some)
                    .map_err(|_| bad(&format!("{f}.{what}"), format!("invalid device number {x}"))),
            }
        };
        let acc_str = d.access().as_deref().unwrap_or("");
        let mut access = 0;
        for c in acc_str.chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => {
                    return Err(bad(
                        &format!("{f}.access"),
                        format!("invalid access {acc_str:?} (letters of rwm)"),
                    ))
                }
            };
        }
        if access == 0 {
            return Err(bad(&format!("{f}.access"), "must not be empty"));
        }
        // "a" means every device with every access, whatever else the rule says,
        // as for the v1 kernel interface.
        let rule = if kind == DevKind::All {
            DeviceRule {
                allow: d.allow(),
                kind,
                major: None,
                minor: None,
                access: ACC_ALL,
            }
        } else {
            DeviceRule {
                allow: d.allow(),
                kind,
                major: num(d.major(), "major")?,
                minor: num(d.minor(), "minor")?,
                access,
            }
        };
        out.push(rule);
    }
    out.extend_from_slice(DEFAULT_DEVICES);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(j: serde_json::Value) -> Result<Resources> {
        Resources::from_spec(&serde_json::from_value(j).unwrap())
    }

    #[test]
    fn zero_is_unset_and_values_pass_through() {
        let r = res(serde_json::json!({
            "memory": {"limit": 0, "reservation": 100, "swappiness": 0},
            "cpu": {"shares": 0, "quota": -1, "period": 100000, "cpus": "", "idle": 0},
            "pids": {"limit": 0}
        }))
        .unwrap();
        assert_eq!(r.memory.limit, None);
        assert_eq!(r.memory.reservation, Some(100));
        assert_eq!(r.memory.swappiness, Some(0));
        assert_eq!(r.cpu.shares, None);
        assert_eq!(r.cpu.quota, Some(-1));
        assert_eq!(r.cpu.cpus, None);
        assert_eq!(r.cpu.idle, Some(0));
        assert_eq!(r.pids, Some(Some(1)), "runc 1.4: pids.limit 0 is 1");
        assert_eq!(r.devices, None);
    }

    #[test]
    fn impossible_values_name_the_field() {
        let cases = [
            (serde_json::json!({"cpu": {"quota": -5}}), "cpu.quota"),
            (serde_json::json!({"memory": {"limit": -2}}), "memory.limit"),
            (
                serde_json::json!({"memory": {"limit": 100, "swap": 50}}),
                "memory.swap",
            ),
            (
                serde_json::json!({"memory": {"swappiness": 101}}),
                "memory.swappiness",
            ),
            (
                serde_json::json!({"blockIO": {"weight": 5}}),
                "blockIO.weight",
            ),
            (serde_json::json!({"cpu": {"idle": 3}}), "cpu.idle"),
            (
                serde_json::json!({"devices": [{"allow": true, "type": "p", "access": "r"}]}),
                "devices[0].type",
            ),
            (
                serde_json::json!({"devices": [{"allow": true, "type": "c", "access": "x"}]}),
                "devices[0].access",
            ),
            (
                serde_json::json!({"hugepageLimits": [{"pageSize": "2XB", "limit": 1}]}),
                "hugepageLimits[0].pageSize",
            ),
            (serde_json::json!({"unified": {"../x": "1"}}), "unified"),
        ];
        for (j, field) in cases {
            let e = res(j.clone()).unwrap_err();
            assert!(
                e.message().starts_with(&format!("linux.resources.{field}")),
                "{j}: {e}"
            );
        }
    }

    #[test]
    fn device_rules_keep_order_and_get_defaults() {
        let r = res(serde_json::json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
            {"allow": false, "type": "b", "major": 8, "access": "m"}
        ]}))
        .unwrap();
        let d = r.devices.unwrap();
        assert_eq!(d.len(), 4 + DEFAULT_DEVICES.len());
        assert_eq!(d[0], DENY_ALL);
        assert_eq!(d[1].v1_line(), "a *:* rwm");
        assert!(!d[1].allow);
        assert_eq!(d[2].v1_line(), "c 10:229 rw");
        assert_eq!(d[3].v1_line(), "b 8:* m");
        assert_eq!(d[4].v1_line(), "c *:* m");
        assert_eq!(d[6].v1_line(), "c 1:3 rwm");
    }

    #[test]
    fn create_without_device_rules_denies_all_but_the_defaults() {
        let r = Resources::from_spec(&for_create(None)).unwrap();
        let d = r.devices.unwrap();
        assert_eq!(d[0].v1_line(), "a *:* rwm");
        assert!(!d[0].allow);
        assert_eq!(&d[1..], DEFAULT_DEVICES);
        // `update` (no devices key) still leaves the rules alone.
        let upd: LinuxResources = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(Resources::from_spec(&upd).unwrap().devices, None);
        // A spec that allows everything still gets it, after the deny-all.
        let all = res(serde_json::json!({"devices": [{"allow": true, "access": "rwm"}]}));
        let d = all.unwrap().devices.unwrap();
        assert!(d[1].allow && d[1].kind == DevKind::All);
    }
}
