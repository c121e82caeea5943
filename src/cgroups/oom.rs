//! Evidence that a memory cgroup's limit was reached and its OOM killer
//! acted: how create and exec tell an init killed because the container's
//! memory limit is too low from any other way init can vanish (the parent
//! only sees a reset socket, an EOF or a SIGKILL).

use super::files::{flat_keyed, read};
use std::path::Path;

/// Counters of one memory cgroup, compared before and after a launch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    /// Processes the cgroup's OOM killer killed (v1 memory.oom_control
    /// `oom_kill`, Linux 4.13; v2 memory.events `oom_kill`).
    pub oom_kills: u64,
    /// Times a charge hit the limit (v1 memory.failcnt and
    /// memory.memsw.failcnt; v2 memory.events `max` and `oom`).
    pub limit_hits: u64,
    /// The limit in force (bytes), None when unlimited or unreadable.
    pub limit: Option<u64>,
}

impl MemoryEvents {
    /// What changed since `before`: OOM kills, limit hits.
    pub fn since(&self, before: &MemoryEvents) -> (u64, u64) {
        (
            self.oom_kills.saturating_sub(before.oom_kills),
            self.limit_hits.saturating_sub(before.limit_hits),
        )
    }
}

/// The counters of the v1 memory cgroup `dir` (zero where a file is missing:
/// a cgroup not made yet has seen nothing).
pub fn v1(dir: &Path) -> MemoryEvents {
    let num = |f: &str| {
        read(dir, f)
            .ok()
            .and_then(|s| super::files::parse_u64(s.trim()))
    };
    MemoryEvents {
        oom_kills: key(
            &read(dir, "memory.oom_control").unwrap_or_default(),
            "oom_kill",
        ),
        limit_hits: num("memory.failcnt").unwrap_or(0) + num("memory.memsw.failcnt").unwrap_or(0),
        // v1 says "unlimited" with the largest page-aligned i64.
        limit: num("memory.limit_in_bytes").filter(|l| *l < (i64::MAX as u64) & !0xfff),
    }
}

/// The counters of the v2 cgroup `dir` (memory.events counts its descendants too).
pub fn v2(dir: &Path) -> MemoryEvents {
    let ev = read(dir, "memory.events").unwrap_or_default();
    MemoryEvents {
        oom_kills: key(&ev, "oom_kill"),
        limit_hits: key(&ev, "max") + key(&ev, "oom"),
        limit: read(dir, "memory.max")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    }
}

fn key(text: &str, name: &str) -> u64 {
    flat_keyed(text)
        .find(|(k, _)| *k == name)
        .map_or(0, |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("skiff-oom-{}-{}", std::process::id(), files.len()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (f, s) in files {
            std::fs::write(d.join(f), s).unwrap();
        }
        d
    }

    #[test]
    fn v1_reads_kills_failures_and_limit() {
        let d = dir_with(&[
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            ),
            ("memory.failcnt", "5\n"),
            ("memory.memsw.failcnt", "1\n"),
            ("memory.limit_in_bytes", "262144\n"),
        ]);
        let e = v1(&d);
        assert_eq!(
            e,
            MemoryEvents {
                oom_kills: 2,
                limit_hits: 6,
                limit: Some(262144)
            }
        );
        std::fs::write(d.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(v1(&d).limit, None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn v2_reads_events_and_max() {
        let d = dir_with(&[
            (
                "memory.events",
                "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
            ("memory.max", "max\n"),
        ]);
        let e = v2(&d);
        assert_eq!((e.oom_kills, e.limit_hits, e.limit), (1, 8, None));
        let before = MemoryEvents::default();
        assert_eq!(e.since(&before), (1, 8));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_cgroup_not_made_yet_has_seen_nothing() {
        let d = std::env::temp_dir().join("skiff-oom-missing-dir");
        assert_eq!(v1(&d), MemoryEvents::default());
        assert_eq!(v2(&d), MemoryEvents::default());
    }
}
