//! The v1 devices controller as a state machine, so that skiff writes only the
//! rules that take a cgroup from what devices.list shows to what the spec
//! asks, as runc does: a running container never briefly loses a device it
//! keeps, and the resulting devices.list is the same (and in the same order)
//! as runc's.
//!
//! The kernel's model: a default (allow or deny everything) plus exceptions,
//! each an exact (type, major, minor) with access bits; devices.list shows
//! "a *:* rwm" for allow-all, or the exceptions of a deny-default cgroup. An
//! allow-default cgroup's deny exceptions cannot be read back, so leaving one
//! always goes through a disruptive "a" rule.

use super::config::{DevKind, DeviceRule, ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// An exception's identity, ordered as runc orders them (major, minor, type;
/// a wildcard before any number): the order transition rules are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Meta {
    major: i64,
    minor: i64,
    /// b'b' or b'c'.
    node: u8,
}

const WILDCARD: i64 = -1;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Emulator {
    default_allow: bool,
    rules: BTreeMap<Meta, u8>,
}

fn num(v: Option<u32>) -> i64 {
    v.map_or(WILDCARD, i64::from)
}

fn meta_of(r: &DeviceRule) -> Option<Meta> {
    let node = match r.kind {
        DevKind::All => return None,
        DevKind::Block => b'b',
        DevKind::Char => b'c',
    };
    Some(Meta {
        major: num(r.major),
        minor: num(r.minor),
        node,
    })
}

fn rule_of(m: Meta, access: u8, allow: bool) -> DeviceRule {
    let n = |v: i64| u32::try_from(v).ok();
    DeviceRule {
        allow,
        kind: if m.node == b'b' {
            DevKind::Block
        } else {
            DevKind::Char
        },
        major: n(m.major),
        minor: n(m.minor),
        access,
    }
}

fn bad_list(line: &str, why: &str) -> Error {
    Error::new(format!("devices.list: line {line:?}: {why}"))
}

fn parse_line(line: &str) -> Result<Option<(Meta, u8)>> {
    let f: Vec<&str> = line.split([' ', ':']).filter(|s| !s.is_empty()).collect();
    let [node, major, minor, access] = f[..] else {
        return Err(bad_list(line, "not 4 fields"));
    };
    let node = match node {
        "a" => return Ok(None),
        "b" => b'b',
        "c" => b'c',
        _ => return Err(bad_list(line, "unknown device type")),
    };
    let n = |s: &str| -> Result<i64> {
        if s == "*" {
            return Ok(WILDCARD);
        }
        s.parse::<u32>()
            .map(i64::from)
            .map_err(|_| bad_list(line, "bad device number"))
    };
    let mut bits = 0;
    for c in access.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(bad_list(line, "bad access")),
        };
    }
    let meta = Meta {
        major: n(major)?,
        minor: n(minor)?,
        node,
    };
    Ok(Some((meta, bits)))
}

impl Emulator {
    /// What a devices.list shows: "a *:* rwm" is allow-all, else a
    /// deny-default cgroup with these exceptions.
    pub fn from_list(text: &str) -> Result<Emulator> {
        let mut e = Emulator::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match parse_line(line.trim())? {
                None => e = Emulator::allow_all(),
                Some((m, bits)) => e.add(m, bits),
            }
        }
        Ok(e)
    }

    pub fn allows_by_default(&self) -> bool {
        self.default_allow
    }

    fn allow_all() -> Emulator {
        Emulator {
            default_allow: true,
            rules: BTreeMap::new(),
        }
    }

    /// The state `rules` lead to from deny-all (the kernel's semantics).
    pub fn build(rules: &[DeviceRule]) -> Result<Emulator> {
        let mut e = Emulator::default();
        for r in rules {
            e.apply(r)?;
        }
        Ok(e)
    }

    fn add(&mut self, m: Meta, bits: u8) {
        *self.rules.entry(m).or_insert(0) |= bits;
    }

    /// Remove access from an exact exception, refusing (as runc does) what
    /// v1 cannot express: a hole in a wildcard exception.
    fn remove(&mut self, m: Meta, bits: u8, r: &DeviceRule) -> Result<()> {
        let wider = [
            (WILDCARD, m.minor),
            (m.major, WILDCARD),
            (WILDCARD, WILDCARD),
        ];
        for (major, minor) in wider {
            let w = Meta {
                major,
                minor,
                node: m.node,
            };
            if w != m && self.rules.get(&w).is_some_and(|b| b & bits != 0) {
                return Err(Error::new(format!(
                    "linux.resources.devices: rule {:?} cannot be expressed in the v1 devices cgroup (a hole in the wider exception {:?})",
                    r.v1_line(),
                    rule_of(w, self.rules[&w], !self.default_allow).v1_line()
                )));
            }
        }
        if let Some(b) = self.rules.get_mut(&m) {
            *b &= !bits;
            if *b == 0 {
                self.rules.remove(&m);
            }
        }
        Ok(())
    }

    fn apply(&mut self, r: &DeviceRule) -> Result<()> {
        let Some(m) = meta_of(r) else {
            *self = Emulator {
                default_allow: r.allow,
                rules: BTreeMap::new(),
            };
            return Ok(());
        };
        if r.allow == self.default_allow {
            self.remove(m, r.access, r)
        } else {
            self.add(m, r.access);
            Ok(())
        }
    }

    /// The writes that take a cgroup from `self` to `target`: a disruptive
    /// "a" rule only when the default changes or `self` is allow-default
    /// (whose deny exceptions devices.list does not show), then the access
    /// each kept exception loses, then what each gains, in runc's order.
    pub fn transition(&self, target: &Emulator) -> Vec<DeviceRule> {
        let mut out = Vec::new();
        let mut old = &self.rules;
        let empty = BTreeMap::new();
        if self.default_allow || self.default_allow != target.default_allow {
            out.push(DeviceRule {
                allow: target.default_allow,
                kind: DevKind::All,
                major: None,
                minor: None,
                access: ACC_ALL,
            });
            old = &empty;
        }
        for (m, bits) in old {
            let dropped = bits & !target.rules.get(m).copied().unwrap_or(0);
            if dropped != 0 {
                out.push(rule_of(*m, dropped, target.default_allow));
            }
        }
        for (m, bits) in &target.rules {
            let gained = bits & !old.get(m).copied().unwrap_or(0);
            if gained != 0 {
                out.push(rule_of(*m, gained, !target.default_allow));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::config::{DEFAULT_DEVICES, DENY_ALL};

    fn lines(rules: &[DeviceRule]) -> Vec<String> {
        rules
            .iter()
            .map(|r| format!("{} {}", if r.allow { "allow" } else { "deny" }, r.v1_line()))
            .collect()
    }

    fn c(major: Option<u32>, minor: Option<u32>, access: u8, allow: bool) -> DeviceRule {
        DeviceRule {
            allow,
            kind: DevKind::Char,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn from_allow_all_denies_then_allows_in_runcs_order() {
        let mut want = vec![DENY_ALL];
        want.extend_from_slice(DEFAULT_DEVICES);
        let target = Emulator::build(&want).unwrap();
        let cur = Emulator::from_list("a *:* rwm\n").unwrap();
        let t = lines(&cur.transition(&target));
        assert_eq!(t[0], "deny a *:* rwm");
        assert_eq!(
            &t[1..4],
            ["allow b *:* m", "allow c *:* m", "allow c 1:3 rwm"]
        );
        assert_eq!(t.last().unwrap(), "allow c 136:* rwm");
    }

    #[test]
    fn a_whitelist_changes_minimally() {
        let cur = Emulator::from_list("c 1:3 rwm\nc 1:5 rw\nc 10:200 rwm\n").unwrap();
        let target = Emulator::build(&[
            DENY_ALL,
            c(Some(1), Some(3), ACC_ALL, true),
            c(Some(1), Some(5), ACC_READ, true),
            c(Some(4), Some(1), ACC_READ | ACC_WRITE, true),
        ])
        .unwrap();
        assert_eq!(
            lines(&cur.transition(&target)),
            ["deny c 1:5 w", "deny c 10:200 rwm", "allow c 4:1 rw"]
        );
        // Already there: nothing to write.
        assert!(target.transition(&target).is_empty());
    }

    #[test]
    fn rules_apply_as_the_kernel_does() {
        let e = Emulator::build(&[
            DENY_ALL,
            c(Some(1), Some(3), ACC_ALL, true),
            c(Some(1), Some(3), ACC_MKNOD, false),
            c(Some(5), None, ACC_READ, true),
        ])
        .unwrap();
        assert_eq!(
            Emulator::from_list("c 1:3 rw\nc 5:* r\n").unwrap(),
            e,
            "deny removes access, wildcards are kept as such"
        );
        // A hole in a wildcard cannot be expressed in v1.
        let err = Emulator::build(&[
            DENY_ALL,
            c(Some(5), None, ACC_READ, true),
            c(Some(5), Some(1), ACC_READ, false),
        ])
        .unwrap_err();
        assert!(err.message().contains("c 5:*"), "{err}");
        assert!(Emulator::from_list("x 1:2 r").is_err());
        assert!(Emulator::from_list("c 1:2").is_err());
    }
}
