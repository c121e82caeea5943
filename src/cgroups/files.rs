//! Reading and writing cgroupfs interface files, shared by the v1 and v2 managers.
//! Every error names the file and the value, so callers only add the spec field.

use crate::error::{Context, Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Write `value` to `dir/file` in one write(2), as the kernel parses each write whole.
/// Never creates the file: a missing file means the kernel lacks the feature.
pub fn write(dir: &Path, file: &str, value: &str) -> std::result::Result<(), WriteError> {
    let path = dir.join(file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| WriteError::new(&path, value, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| WriteError::new(&path, value, e))
}

/// A failed write that keeps the errno, so callers can explain EBUSY or ENOENT.
#[derive(Debug)]
pub struct WriteError {
    pub path: PathBuf,
    pub value: String,
    pub err: std::io::Error,
}

impl WriteError {
    fn new(path: &Path, value: &str, err: std::io::Error) -> Self {
        WriteError {
            path: path.to_path_buf(),
            value: value.to_string(),
            err,
        }
    }

    pub fn errno(&self) -> Option<i32> {
        self.err.raw_os_error()
    }

    pub fn not_found(&self) -> bool {
        self.err.kind() == std::io::ErrorKind::NotFound
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "write {:?} to {}: {}",
            self.value,
            self.path.display(),
            self.err
        )
    }
}

impl From<WriteError> for Error {
    fn from(e: WriteError) -> Self {
        Error::new(e.to_string())
    }
}

/// Write a setting for spec field `field` (e.g. "memory.limit"): errors read
/// `linux.resources.memory.limit: write "5" to /sys/fs/cgroup/...: Invalid argument`.
pub fn set(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    write(dir, file, value).map_err(|e| field_error(field, e))
}

pub fn field_error(field: &str, e: impl std::fmt::Display) -> Error {
    Error::new(format!("linux.resources.{field}: {e}"))
}

pub fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).ctx(|| format!("read {}", path.display()))
}

/// A single number; "max" reads as u64::MAX (v2 spells unlimited that way).
pub fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    parse_u64(s.trim()).ok_or_else(|| {
        Error::new(format!(
            "parse {}: unexpected value {:?}",
            dir.join(file).display(),
            s.trim()
        ))
    })
}

pub fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// Every process in `dir` and the cgroups below it (a container may nest cgroups).
pub fn pids_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    collect_pids(dir, &mut out)?;
    Ok(out)
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = read(dir, "cgroup.procs")?;
    out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for sub in subdirs(dir) {
        // A child removed meanwhile is not an error.
        if let Err(e) = collect_pids(&sub, out) {
            if sub.exists() {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// mkdir -p; returns the directories this call created, outermost first, so
/// callers can initialise them (v1 cpuset) and a failed create can undo them.
pub fn mkdir_all(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut p = dir;
    while !p.exists() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    missing.reverse();
    let mut made = Vec::new();
    for d in missing {
        match std::fs::create_dir(&d) {
            Ok(()) => made.push(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).ctx(|| format!("mkdir {}", d.display())),
        }
    }
    Ok(made)
}

/// Remove `dir` and any cgroups below it, deepest first. Processes that were
/// just killed leave their cgroup a moment after they die, so EBUSY is retried
/// for up to `patience`. A directory already gone is success.
pub fn remove_tree(dir: &Path, patience: Duration) -> Result<()> {
    let deadline = Instant::now() + patience;
    let mut nap = Duration::from_micros(200);
    loop {
        match remove_once(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(e).ctx(|| format!("remove cgroup {}", dir.display())),
        }
    }
}

/// rmdir first: a container's cgroup almost never has children, so listing it
/// before every rmdir costs an open+getdents+close per directory for nothing.
/// Only when the kernel refuses (cgroupfs says EBUSY for child cgroups or live
/// tasks, other filesystems ENOTEMPTY) are children removed and rmdir retried.
fn remove_once(dir: &Path) -> std::io::Result<()> {
    match rmdir(dir) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {
            let subs = subdirs(dir);
            if subs.is_empty() {
                // Busy with tasks still leaving: the caller's backoff retries.
                return Err(e);
            }
            for sub in subs {
                remove_once(&sub)?;
            }
            rmdir(dir)
        }
        r => r,
    }
}

fn rmdir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Poll `check` until it reports done, sleeping 100 µs growing to 10 ms.
pub fn wait_until(max: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + max;
    let mut nap = Duration::from_micros(100);
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// "key value" lines (memory.stat, cpu.stat, ...) as pairs; bad lines are skipped.
pub fn flat_keyed(s: &str) -> impl Iterator<Item = (&str, u64)> {
    s.lines().filter_map(|l| {
        let mut it = l.split_whitespace();
        let k = it.next()?;
        let v = parse_u64(it.next()?)?;
        Some((k, v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_parses_pairs() {
        let v: Vec<_> = flat_keyed("cache 1\nrss 2\nbad\nmax max\n").collect();
        assert_eq!(v, vec![("cache", 1), ("rss", 2), ("max", u64::MAX)]);
    }

    #[test]
    fn mkdir_and_remove_tree() {
        let t = std::env::temp_dir().join(format!("cgroups-files-{}", std::process::id()));
        let made = mkdir_all(&t.join("a/b")).unwrap();
        assert_eq!(made, vec![t.clone(), t.join("a"), t.join("a/b")]);
        assert!(mkdir_all(&t.join("a/b")).unwrap().is_empty());
        std::fs::create_dir(t.join("a/c")).unwrap();
        remove_tree(&t, Duration::from_millis(10)).unwrap();
        assert!(!t.exists());
        remove_tree(&t, Duration::from_millis(10)).unwrap();
    }

    #[test]
    fn write_never_creates() {
        let t = std::env::temp_dir().join(format!("cgroups-w-{}", std::process::id()));
        std::fs::create_dir_all(&t).unwrap();
        let e = write(&t, "nope", "1").unwrap_err();
        assert!(e.not_found());
        assert!(e.to_string().contains("nope"));
        std::fs::write(t.join("f"), "old-longer").unwrap();
        write(&t, "f", "1").unwrap();
        assert_eq!(std::fs::read_to_string(t.join("f")).unwrap(), "1");
        std::fs::remove_dir_all(&t).unwrap();
    }
}
