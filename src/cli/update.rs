use crate::container::{resources, Globals};
use crate::error::{Context, Result};
use serde_json::{json, Map, Value};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// linux.resources JSON file, or - for stdin (the other flags are then ignored)
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period", allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CPU shares (runc spells it --cpu-share)
    #[arg(long = "cpu-share", alias = "cpu-shares", allow_hyphen_values = true)]
    pub cpu_share: Option<String>,
    #[arg(long = "cpu-rt-period", allow_hyphen_values = true)]
    pub cpu_rt_period: Option<String>,
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<String>,
    #[arg(long = "cpu-burst", allow_hyphen_values = true)]
    pub cpu_burst: Option<String>,
    #[arg(long = "cpu-idle", allow_hyphen_values = true)]
    pub cpu_idle: Option<String>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Accepted and ignored, as runc does (kernel memory limits are gone)
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a unit: 100M, 1g; -1 for unlimited)
    #[arg(short = 'm', long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1 for unlimited swap)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    let upd = match &a.resources {
        Some(src) => read_resources(src)?,
        None => from_flags(&a)?,
    };
    // Applied to the container's resctrl group as runc does, with
    // `--resources` too (runc reads these two flags either way).
    let rdt = resources::RdtUpdate {
        l3_cache_schema: a.l3_cache_schema.clone(),
        mem_bw_schema: a.mem_bw_schema.clone(),
    };
    resources::update(g, &a.id, &upd, &rdt)?;
    Ok(0)
}

fn read_resources(src: &str) -> Result<Value> {
    let text = if src == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).ctx(|| "read stdin")?;
        s
    } else {
        std::fs::read_to_string(src).ctx(|| format!("read {src}"))?
    };
    let v: Value = serde_json::from_str(&text).ctx(|| format!("parse resources from {src}"))?;
    // Check it is linux.resources now, for an error that points at the input.
    serde_json::from_value::<oci_spec::runtime::LinuxResources>(v.clone())
        .ctx(|| format!("resources from {src}"))?;
    Ok(v)
}

fn num<T: std::str::FromStr>(flag: &str, v: &Option<String>) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    v.as_deref()
        .map(|s| {
            s.parse::<T>().map_err(|e| {
                crate::error::Error::new(format!("invalid value for {flag}: {s:?}: {e}"))
            })
        })
        .transpose()
}

fn ram(flag: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            if s == "-1" {
                return Ok(-1);
            }
            ram_in_bytes(s)
                .ok_or_else(|| crate::error::Error::new(format!("invalid value for {flag}: {s:?}")))
        })
        .transpose()
}

/// docker/go-units RAMInBytes: "512", "100m", "1.5G", "64KiB" (binary units).
pub fn ram_in_bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let num: f64 = s[..num_end].parse().ok()?;
    let unit = s[num_end..].trim_start().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let v = num * mult;
    (v.is_finite() && v < i64::MAX as f64).then_some(v as i64)
}

/// runc's update flags as a partial linux.resources object.
fn from_flags(a: &Args) -> Result<Value> {
    let mut mem = Map::new();
    for (k, flag, v) in [
        ("limit", "memory", &a.memory),
        ("reservation", "memory-reservation", &a.memory_reservation),
        ("swap", "memory-swap", &a.memory_swap),
    ] {
        if let Some(x) = ram(flag, v)? {
            mem.insert(k.into(), json!(x));
        }
    }
    if a.kernel_memory.is_some() || a.kernel_memory_tcp.is_some() {
        log::warn!("{}", crate::cgroups::config::KMEM_IGNORED);
    }
    // Unlimited memory without a swap value means unlimited swap too (runc).
    if mem.get("limit") == Some(&json!(-1)) && !mem.contains_key("swap") {
        mem.insert("swap".into(), json!(0));
    }
    let mut cpu = Map::new();
    for (k, flag, v) in [
        ("period", "cpu-period", &a.cpu_period),
        ("shares", "cpu-share", &a.cpu_share),
        ("realtimePeriod", "cpu-rt-period", &a.cpu_rt_period),
        ("burst", "cpu-burst", &a.cpu_burst),
    ] {
        if let Some(x) = num::<u64>(flag, v)? {
            cpu.insert(k.into(), json!(x));
        }
    }
    for (k, flag, v) in [
        ("quota", "cpu-quota", &a.cpu_quota),
        ("realtimeRuntime", "cpu-rt-runtime", &a.cpu_rt_runtime),
        ("idle", "cpu-idle", &a.cpu_idle),
    ] {
        if let Some(x) = num::<i64>(flag, v)? {
            cpu.insert(k.into(), json!(x));
        }
    }
    if let Some(c) = &a.cpuset_cpus {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = &a.cpuset_mems {
        cpu.insert("mems".into(), json!(m));
    }
    let mut out = Map::new();
    if !mem.is_empty() {
        out.insert("memory".into(), Value::Object(mem));
    }
    if !cpu.is_empty() {
        out.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(w) = a.blkio_weight.filter(|w| *w != 0) {
        out.insert("blockIO".into(), json!({"weight": w}));
    }
    if let Some(p) = num::<i64>("pids-limit", &a.pids_limit)? {
        out.insert("pids".into(), json!({"limit": p}));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_units() {
        assert_eq!(ram_in_bytes("512"), Some(512));
        assert_eq!(ram_in_bytes("100m"), Some(100 << 20));
        assert_eq!(ram_in_bytes("1.5G"), Some(3 << 29));
        assert_eq!(ram_in_bytes("64KiB"), Some(64 << 10));
        assert_eq!(ram_in_bytes("10 MB"), Some(10 << 20));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("1q"), None);
    }
}
