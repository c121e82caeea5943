//! `linux.memoryPolicy` (runtime-spec 1.3, runc 1.4): set_mempolicy(2) in
//! init before execve. Unknown modes and flags are refused by the config
//! parser; `validate` holds runc's rules on nodes, `apply` makes the call.

use crate::bail;
use crate::error::{Context, Result};
use crate::sys::task as sys;
use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType as F, MemoryPolicyModeType as M};

/// The node bitmap's size: the kernel's MAX_NUMNODES is at most 1024.
const MAX_NODES: usize = 1024;

fn mode_number(m: M) -> i32 {
    match m {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    }
}

fn flag_bits(f: F) -> i32 {
    match f {
        F::MpolFStaticNodes => 1 << 15,
        F::MpolFRelativeNodes => 1 << 14,
        F::MpolFNumaBalancing => 1 << 13,
    }
}

/// A node list like `0-1,3` as a bitmap of u64 words (empty: no nodes).
fn node_mask(list: &str) -> Result<Vec<u64>> {
    let mut mask = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| -> Result<usize> {
            s.trim()
                .parse::<usize>()
                .ctx(|| format!("linux.memoryPolicy.nodes {list:?}: {s:?} is not a node number"))
        };
        let (a, b) = (num(a)?, num(b)?);
        if a > b {
            bail!("linux.memoryPolicy.nodes {list:?}: range {a}-{b} is reversed");
        }
        if b >= MAX_NODES {
            bail!(
                "linux.memoryPolicy.nodes {list:?}: node {b} is beyond {}",
                MAX_NODES - 1
            );
        }
        for n in a..=b {
            if mask.len() <= n / 64 {
                mask.resize(n / 64 + 1, 0);
            }
            mask[n / 64] |= 1u64 << (n % 64);
        }
    }
    Ok(mask)
}

/// runc 1.4's rules: DEFAULT and LOCAL take no nodes, BIND, INTERLEAVE,
/// PREFERRED_MANY and WEIGHTED_INTERLEAVE at least one, PREFERRED either;
/// STATIC_NODES and RELATIVE_NODES exclude each other (the kernel's EINVAL).
pub fn validate(p: &LinuxMemoryPolicy) -> Result<Vec<u64>> {
    let mask = node_mask(p.nodes().as_deref().unwrap_or(""))?;
    let count: u32 = mask.iter().map(|w| w.count_ones()).sum();
    let mode = p.mode();
    match mode {
        M::MpolDefault | M::MpolLocal if count != 0 => {
            bail!("linux.memoryPolicy: mode {mode} requires 0 nodes but got {count}")
        }
        M::MpolBind | M::MpolInterleave | M::MpolPreferredMany | M::MpolWeightedInterleave
            if count == 0 =>
        {
            bail!("linux.memoryPolicy: mode {mode} requires at least one node but got 0")
        }
        _ => {}
    }
    let flags = p.flags().clone().unwrap_or_default();
    if flags.contains(&F::MpolFStaticNodes) && flags.contains(&F::MpolFRelativeNodes) {
        bail!("linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other");
    }
    Ok(mask)
}

/// set_mempolicy(2) with the configured mode, flags and nodes.
pub fn apply(p: &LinuxMemoryPolicy) -> Result<()> {
    let mask = validate(p)?;
    let mut mode = mode_number(p.mode());
    for f in p.flags().iter().flatten() {
        mode |= flag_bits(*f);
    }
    sys::set_mempolicy(mode, &mask).ctx(|| {
        format!(
            "linux.memoryPolicy: set_mempolicy {} nodes {:?} flags {:?}",
            p.mode(),
            p.nodes().as_deref().unwrap_or(""),
            p.flags().as_deref().unwrap_or_default()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(v: serde_json::Value) -> LinuxMemoryPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rules() {
        assert_eq!(node_mask("0-1,65").unwrap(), vec![3, 2]);
        assert!(node_mask("1024").is_err());
        assert!(node_mask("x").is_err());
        assert!(node_mask("2-1").is_err());
        assert!(validate(&pol(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0"}))).is_ok());
        assert!(validate(&pol(serde_json::json!({"mode": "MPOL_BIND"}))).is_err());
        assert!(validate(&pol(
            serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"})
        ))
        .is_err());
        assert!(validate(&pol(serde_json::json!({"mode": "MPOL_PREFERRED"}))).is_ok());
        assert!(
            validate(&pol(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0",
            "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]})))
            .is_err()
        );
        assert!(serde_json::from_value::<LinuxMemoryPolicy>(
            serde_json::json!({"mode": "MPOL_BOGUS"})
        )
        .is_err());
    }
}
