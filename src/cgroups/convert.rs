//! The OCI resources are cgroup v1 numbers; on a v2 host they are converted
//! the way runc (and crun) convert them, so a spec means the same on both.

/// cpu.shares [2, 262144] to cpu.weight [1, 10000]: the quadratic in log2 that
/// maps 2 -> 1, 1024 (the default) -> 100 and 262144 -> 10000 (runc >= 1.3).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exp = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exp).ceil() as u64
}

/// blkio.weight [10, 1000] to io.weight [1, 10000], linearly.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// memory.swap.max from the spec's memory+swap total. Ok(None): leave it alone.
pub fn swap_to_v2(swap: Option<i64>, memory: Option<i64>) -> Result<Option<String>, String> {
    let mem = memory.unwrap_or(0);
    let Some(swap) = swap.filter(|s| *s != 0) else {
        // Unlimited memory without a swap setting: make both unlimited, as on v1.
        return Ok((mem == -1).then(|| "max".to_string()));
    };
    if swap == -1 || mem == -1 {
        return Ok(Some(if swap == -1 {
            "max".into()
        } else {
            swap.to_string()
        }));
    }
    if mem == 0 {
        return Err("unable to set swap limit without memory limit".into());
    }
    if swap < mem {
        return Err(format!(
            "memory+swap limit {swap} must be at least memory.limit {mem}"
        ));
    }
    Ok(Some((swap - mem).to_string()))
}

/// A byte count for v2: -1 is "max".
pub fn v2_bytes(v: i64) -> String {
    if v == -1 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// cpu.max "<quota|max> <period>"; `None` when neither is set.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    if quota.is_none() && period.is_none() {
        return None;
    }
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".into(),
    };
    Some(format!("{q} {}", period.unwrap_or(100_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(4096), 303);
    }

    #[test]
    fn blkio() {
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn swap() {
        assert_eq!(swap_to_v2(None, None), Ok(None));
        assert_eq!(swap_to_v2(None, Some(-1)), Ok(Some("max".into())));
        assert_eq!(swap_to_v2(Some(-1), Some(100)), Ok(Some("max".into())));
        assert_eq!(swap_to_v2(Some(300), Some(100)), Ok(Some("200".into())));
        assert_eq!(swap_to_v2(Some(100), Some(100)), Ok(Some("0".into())));
        assert_eq!(swap_to_v2(Some(300), Some(-1)), Ok(Some("300".into())));
        assert!(swap_to_v2(Some(300), None).is_err());
        assert!(swap_to_v2(Some(50), Some(100)).is_err());
    }

    #[test]
    fn cpu_max_strings() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(50000), None).as_deref(), Some("50000 100000"));
        assert_eq!(cpu_max(Some(-1), Some(20000)).as_deref(), Some("max 20000"));
    }
}
