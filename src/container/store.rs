//! The state store: `<root>/<id>/` holds state.json, the frozen config.json and
//! the exec fifo. Writes are atomic (temp file + rename) and every command that
//! changes a container holds an flock on its directory.

use crate::bail;
use crate::error::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const FIFO_FILE: &str = "exec.fifo";

/// runc's rule: `^[\w+\-\.]+$`, not "." or "..", and a sane length.
pub fn validate_id(id: &str) -> Result<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if id.is_empty() || id == "." || id == ".." || id.len() > 1024 || !ok_chars {
        bail!("invalid container id format: {id:?}");
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// An exclusive lock on one container's directory, released on drop.
pub struct Lock {
    _lock: Flock<fs::File>,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Make `<root>/<id>` for a new container; refuses an existing ID.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf> {
        // 0700 like runc's root: the frozen config.json is in there.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .ctx(|| format!("create state root {}", self.root.display()))?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // runc 1.1's words (callers match on them), plus the ID.
                bail!("container with given ID already exists: {id}")
            }
            Err(e) => bail!("create state dir {}: {e}", dir.display()),
        }
    }

    pub fn lock(&self, id: &str) -> Result<Lock> {
        let dir = self.dir(id);
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    crate::error::Error::new(format!("container {id:?} does not exist"))
                } else {
                    crate::error::Error::new(format!("open {}: {e}", dir.display()))
                }
            })?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| crate::error::Error::new(format!("flock {}: {e}", dir.display())))?;
        Ok(Lock { _lock: lock })
    }

    pub fn write_json<T: serde::Serialize>(&self, id: &str, name: &str, v: &T) -> Result<()> {
        let data = serde_json::to_vec(v).ctx(|| format!("encode {name}"))?;
        write_atomic(&self.dir(id).join(name), &data)
    }

    pub fn read_json<T: serde::de::DeserializeOwned>(&self, id: &str, name: &str) -> Result<T> {
        let path = self.dir(id).join(name);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id:?} does not exist")
            }
            Err(e) => bail!("read {}: {e}", path.display()),
        };
        serde_json::from_slice(&data).ctx(|| format!("parse {}", path.display()))
    }

    /// IDs of every container directory under the root, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => bail!("read {}: {e}", self.root.display()),
        };
        for ent in rd.flatten() {
            if ent.path().join(STATE_FILE).is_file() {
                if let Some(n) = ent.file_name().to_str() {
                    ids.push(n.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => bail!("remove {}: {e}", dir.display()),
        }
    }
}

/// `--pid-file`: the host PID as bare digits (containerd parses it so), written
/// atomically; a relative path is relative to the caller's cwd.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ctx(|| "getcwd")?.join(path)
    };
    check_pid_file(&abs)?;
    write_atomic(&abs, pid.to_string().as_bytes())
        .ctx(|| format!("write pid file {}", abs.display()))
}

/// A pid file may be new or replace a regular file, nothing else: a caller's
/// typo or a hostile path must not turn a device, fifo, socket, directory or
/// symlink into our file (runc 1.1 replaces whatever is there).
pub fn check_pid_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = match fs::symlink_metadata(path) {
        Ok(m) => m.file_type(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("--pid-file {}: {e}", path.display()),
    };
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symlink"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_fifo() {
        "a fifo"
    } else {
        "a socket"
    };
    bail!(
        "--pid-file {}: is {what}, not a regular file; refusing to replace it",
        path.display()
    )
}

/// Write `data` to `path` so readers see the old or the new file, never a torn one.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{}.{}.tmp", name, std::process::id()));
    // A fresh file, never one already there (a leftover, or a fifo or symlink
    // planted where we would write).
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&tmp)
        .ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(data)
        .ctx(|| format!("write {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        crate::error::Error::new(format!(
            "rename {} to {}: {e}",
            tmp.display(),
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn ids() {
        for good in ["a", "abc-123", "A_b+c.d", &"x".repeat(1024)] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "é",
            &"x".repeat(1025),
            "a\0",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pid_file_replaces_only_regular_files() {
        let d = std::env::temp_dir().join(format!("skiff-pidfile-test-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = write_pid_file(&fifo, 42).unwrap_err();
        assert!(e.message().contains("is a fifo"), "{e}");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        let link = d.join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(write_pid_file(&link, 42).is_err());
        let regular = d.join("pid");
        write_pid_file(&regular, 41).unwrap();
        write_pid_file(&regular, 42).unwrap();
        assert_eq!(fs::read_to_string(&regular).unwrap(), "42");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn atomic_write_replaces() {
        let d = std::env::temp_dir().join(format!("skiff-store-test-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let p = d.join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn create_refuses_existing() {
        let d = std::env::temp_dir().join(format!("skiff-store-test2-{}", std::process::id()));
        let s = Store::new(&d);
        s.create_dir("c1").unwrap();
        let e = s.create_dir("c1").unwrap_err();
        assert_eq!(e.message(), "container with given ID already exists: c1");
        let _l = s.lock("c1").unwrap();
        fs::remove_dir_all(&d).unwrap();
    }
}
