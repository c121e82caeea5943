//! Paths inside the container's rootfs, resolved by the kernel as if the rootfs
//! were `/` (openat2 RESOLVE_IN_ROOT), so a symlink in the image can never lead
//! out of it (CVE-2021-30465, CVE-2024-45310). We act on the returned O_PATH fds
//! (with the new mount API, or before pivot_root through the host's
//! /proc/self/fd/N, never the container's) instead of re-resolving strings.

use crate::bail;
use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// `/proc/self/fd/N`: how mount(2) and friends reach the object behind an fd.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Strip the leading `/` and any `.`/`..` games: the result is relative and clean.
pub fn relative(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open rootfs {}", path.display()))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The O_PATH fd of the rootfs itself.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn host_path(&self, p: &Path) -> PathBuf {
        self.path.join(relative(p))
    }

    /// Open an existing path inside the root.
    pub fn open_in(&self, p: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let rel = relative(p);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel.as_path()
        };
        openat2(self.fd.as_fd(), rel, how(flags))
    }

    /// O_PATH handle on an existing path inside the root.
    pub fn resolve(&self, p: &Path) -> nix::Result<OwnedFd> {
        self.open_in(p, OFlag::O_PATH)
    }

    /// Make every directory of `p` that is missing, each created under its
    /// resolved parent with mkdirat, and return an O_PATH handle on the last.
    pub fn mkdir_all(&self, p: &Path, mode: u32) -> Result<OwnedFd> {
        self.mkdir_all_depth(p, mode, 0)
    }

    /// Where the dangling symlink `name` in `dir` (at `at` in the root)
    /// points, as a path in the root: runc resolves a mount destination in
    /// the rootfs and creates what a symlink names (an absolute link is
    /// taken from the rootfs). None if `name` is not a symlink.
    fn link_target(
        &self,
        dir: &OwnedFd,
        name: &std::ffi::OsStr,
        at: &Path,
        depth: u32,
    ) -> Result<Option<PathBuf>> {
        let Ok(link) = nix::fcntl::readlinkat(dir.as_fd(), name) else {
            return Ok(None);
        };
        // As the kernel's limit on nested links (ELOOP).
        if depth >= 40 {
            bail!(
                "open {}: too many levels of symbolic links",
                self.host_path(at).display()
            );
        }
        let base = at.parent().unwrap_or(Path::new(""));
        Ok(Some(relative(&base.join(link))))
    }

    fn mkdir_all_depth(&self, p: &Path, mode: u32, depth: u32) -> Result<OwnedFd> {
        let rel = relative(p);
        let mut cur = PathBuf::new();
        let mut fd = self
            .resolve(Path::new("."))
            .ctx(|| format!("open {}", self.path.display()))?;
        for c in rel.components() {
            cur.push(c);
            match self.resolve(&cur) {
                Ok(f) => fd = f,
                Err(Errno::ENOENT) => {
                    if let Some(t) = self.link_target(&fd, c.as_os_str(), &cur, depth)? {
                        self.mkdir_all_depth(&t, mode, depth + 1)?;
                    }
                    match mkdirat(fd.as_fd(), c.as_os_str(), Mode::from_bits_truncate(mode)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => bail!("mkdir {}: {e}", self.host_path(&cur).display()),
                    }
                    fd = self
                        .resolve(&cur)
                        .ctx(|| format!("open {}", self.host_path(&cur).display()))?;
                }
                Err(e) => bail!("open {}: {e}", self.host_path(&cur).display()),
            }
        }
        Ok(fd)
    }

    /// Make sure a regular file exists at `p` (a bind-mount target for a file
    /// source) and return an O_PATH handle on it.
    pub fn mkfile_all(&self, p: &Path) -> Result<OwnedFd> {
        self.mkfile_all_depth(p, 0)
    }

    fn mkfile_all_depth(&self, p: &Path, depth: u32) -> Result<OwnedFd> {
        if let Ok(fd) = self.resolve(p) {
            return Ok(fd);
        }
        let rel = relative(p);
        let parent = rel.parent().unwrap_or(Path::new(""));
        let name = match rel.file_name() {
            Some(n) => n,
            None => bail!("invalid file path {}", p.display()),
        };
        let dir = self.mkdir_all(parent, 0o755)?;
        // Reopen the parent as a real directory to create the file under it.
        let dirfd = nix::fcntl::openat(
            dir.as_fd(),
            ".",
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {}", self.host_path(parent).display()))?;
        if let Some(t) = self.link_target(&dir, name, &rel, depth)? {
            self.mkfile_all_depth(&t, depth + 1)?;
            return self
                .resolve(p)
                .ctx(|| format!("open {}", self.host_path(p).display()));
        }
        match nix::fcntl::openat(
            dirfd.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => bail!("create {}: {e}", self.host_path(p).display()),
        }
        self.resolve(p)
            .ctx(|| format!("open {}", self.host_path(p).display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_cannot_climb() {
        assert_eq!(relative(Path::new("/a/../../b/./c")), PathBuf::from("b/c"));
        assert_eq!(relative(Path::new("../../etc")), PathBuf::from("etc"));
        assert_eq!(relative(Path::new("/")), PathBuf::from(""));
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let d = std::env::temp_dir().join(format!("skiff-safepath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root/etc")).unwrap();
        // An absolute symlink to /etc must resolve to <root>/etc, not the host's.
        std::os::unix::fs::symlink("/etc", d.join("root/evil")).unwrap();
        std::os::unix::fs::symlink("../../../../../../tmp", d.join("root/up")).unwrap();
        let r = Root::open(&d.join("root")).unwrap();
        r.mkdir_all(Path::new("/evil/skiff-x"), 0o755).unwrap();
        assert!(d.join("root/etc/skiff-x").is_dir());
        assert!(!Path::new("/etc/skiff-x").exists());
        // A dangling symlink is an error, never a directory made elsewhere.
        let name = format!("skiff-safepath-escape-{}", std::process::id());
        assert!(
            r.mkdir_all(&Path::new("/up").join(&name), 0o755).is_err()
                || d.join("root/tmp").join(&name).is_dir()
        );
        assert!(!Path::new("/tmp").join(&name).exists());
        // A dangling link is created where it points, inside the root (runc).
        std::os::unix::fs::symlink("/gone/dir", d.join("root/ldir")).unwrap();
        std::os::unix::fs::symlink("../nothere/f", d.join("root/etc/lfile")).unwrap();
        r.mkdir_all(Path::new("/ldir"), 0o755).unwrap();
        assert!(d.join("root/gone/dir").is_dir());
        r.mkfile_all(Path::new("/etc/lfile")).unwrap();
        assert!(d.join("root/nothere/f").is_file());
        std::os::unix::fs::symlink("loop", d.join("root/loop")).unwrap();
        assert!(r.mkdir_all(Path::new("/loop"), 0o755).is_err());
        let f = r.mkfile_all(Path::new("/a/b/file")).unwrap();
        drop(f);
        assert!(d.join("root/a/b/file").is_file());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
