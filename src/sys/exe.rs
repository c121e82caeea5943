//! The sealed copy of our own binary that `create`/`exec` run as `skiff init`
//! (CVE-2019-5736).
//!
//! Init runs inside the container's namespaces, where a hostile process can
//! reach it through `/proc/<pid>/exe`. If that link led to the skiff binary on
//! the host, the process could hold it open and rewrite it once init has
//! exec'd (the file is no longer busy), and the next `skiff` run on the host
//! would run the attacker's code as root. So init never runs from the host
//! file itself, but from one of:
//!
//! 1. the binary seen through a private, detached overlayfs whose only layers
//!    are lower (read-only) layers: the superblock has no upper layer, so no
//!    write can ever reach it, whatever happens to the mount's flags. It
//!    costs a few syscalls (about 0.1 ms) and needs CAP_SYS_ADMIN;
//! 2. else a memfd copy sealed against writes, growth and shrinking, made
//!    with sendfile(2) (page-cache pages moved in the kernel, no copy through
//!    user memory): about 1 ms for a 4 MB binary, on every create.
//!
//! Either is made in the calling process (the memfd's pages are charged to
//! the caller's memory cgroup, not the container's) once per process.
//! `SKIFF_SEALED_EXE=memfd` forces the second (both are sealed; the knob
//! exists so tests can cover both).

use crate::error::{Context, Result};
use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

/// The seals that make the copy immutable; F_SEAL_SEAL last, so none can be lifted.
const SEALS: libc::c_int = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;

struct Sealed {
    /// Kept open for the life of the process: the path below names it.
    _fd: OwnedFd,
    path: String,
}

static SEALED: OnceLock<Sealed> = OnceLock::new();

/// `/proc/self/fd/N` of a sealed view of the running binary, made on first
/// use. The fd is CLOEXEC: execve resolves the path before it closes CLOEXEC
/// descriptors, so the exec works and init does not inherit the fd.
pub fn sealed_self_exe() -> Result<&'static str> {
    if let Some(s) = SEALED.get() {
        return Ok(&s.path);
    }
    let force_memfd = std::env::var_os("SKIFF_SEALED_EXE").is_some_and(|v| v == "memfd");
    let overlay = if force_memfd {
        None
    } else {
        overlay_view().ok()
    };
    let fd = match overlay {
        Some(fd) => fd,
        None => make_sealed_copy()?,
    };
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    // A race with another thread only wastes one copy; skiff is single-threaded here.
    let s = SEALED.get_or_init(|| Sealed { _fd: fd, path });
    Ok(&s.path)
}

fn memfd_create(name: &CStr) -> std::io::Result<OwnedFd> {
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) says this memfd is meant to be executed, which a
    // vm.memfd_noexec policy may require; older kernels reject the flag.
    for flags in [base | libc::MFD_EXEC, base] {
        // SAFETY: `name` is NUL-terminated and outlives the call; the result is
        // a new descriptor that nothing else owns.
        let r = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if r >= 0 {
            // SAFETY: the kernel just returned this fresh descriptor to us.
            return Ok(unsafe { OwnedFd::from_raw_fd(r) });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// sendfile(2) the whole of `src` (of `len` bytes) into `dst`.
fn copy_all(src: &File, dst: &OwnedFd, len: u64) -> std::io::Result<()> {
    let mut left = len;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call; a
        // NULL offset means "use and advance the file position of `src`".
        let n = unsafe {
            libc::sendfile(
                dst.as_raw_fd(),
                src.as_raw_fd(),
                std::ptr::null_mut(),
                chunk,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "binary shrank while being copied",
            ));
        }
        left -= n as u64;
    }
    Ok(())
}

fn fcntl(fd: &OwnedFd, cmd: libc::c_int, arg: libc::c_int) -> std::io::Result<libc::c_int> {
    // SAFETY: F_ADD_SEALS/F_GET_SEALS take an int and touch no memory of ours.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, arg) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

use super::newmount::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

/// The bottom layer under the binary's directory: overlayfs wants two layers
/// to mount without an upper one, they must not contain each other, and we
/// only ever look up the binary's name, which the top layer answers.
const FILLER_LAYERS: &[&str] = &["/sys/fs", "/dev"];

/// overlayfs escapes: `\` and `:` (the layer separator) in a layer path.
fn escape_layer(p: &str) -> String {
    p.replace('\\', "\\\\").replace(':', "\\:")
}

/// An O_PATH fd of our binary inside a detached, lower-only overlayfs.
fn overlay_view() -> std::io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let real = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
        return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
    };
    let dir = dir
        .to_str()
        .ok_or(std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut last = std::io::Error::from_raw_os_error(libc::ENOENT);
    for filler in FILLER_LAYERS {
        let lower = format!("{}:{}", escape_layer(dir), escape_layer(filler));
        let lower = std::ffi::CString::new(lower)?;
        let fs = newmount::fsopen(c"overlay")?;
        if let Err(e) = newmount::fsconfig_string(&fs, c"lowerdir", &lower) {
            last = e;
            continue;
        }
        // Layers on different filesystems would turn xino on, and log about it.
        let _ = newmount::fsconfig_string(&fs, c"xino", c"off");
        let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        let mnt = match newmount::create_and_mount(&fs, attrs) {
            Ok(m) => m,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let name = std::ffi::CString::new(name.as_bytes())?;
        // SAFETY: `name` is NUL-terminated; `mnt` is open for the call.
        let exe = newmount::syscall_fd(unsafe {
            libc::openat(
                mnt.as_raw_fd(),
                name.as_ptr(),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            ) as libc::c_long
        })?;
        // The same file: the overlay remaps device and inode numbers, so
        // compare what it can keep (type and size).
        let want = std::fs::metadata("/proc/self/exe")?;
        let got = std::fs::metadata(format!("/proc/self/fd/{}", exe.as_raw_fd()))?;
        if !got.is_file() || got.len() != want.len() {
            return Err(std::io::Error::from_raw_os_error(libc::ESTALE));
        }
        return Ok(exe);
    }
    Err(last)
}

fn make_sealed_copy() -> Result<OwnedFd> {
    let exe = File::open("/proc/self/exe").ctx(|| "open /proc/self/exe")?;
    let len = exe.metadata().ctx(|| "stat /proc/self/exe")?.len();
    let fd = memfd_create(c"skiff").ctx(|| "memfd_create for the sealed init binary")?;
    // Size the file first so sendfile fills it without growing it page by page.
    // SAFETY: ftruncate on our own fresh memfd.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "size the sealed init binary");
    }
    copy_all(&exe, &fd, len).ctx(|| "copy /proc/self/exe into a memfd")?;
    fcntl(&fd, libc::F_ADD_SEALS, SEALS | libc::F_SEAL_SEAL).ctx(|| "seal the init binary")?;
    let got = fcntl(&fd, libc::F_GET_SEALS, 0).ctx(|| "read seals of the init binary")?;
    if got & (SEALS | libc::F_SEAL_SEAL) != SEALS | libc::F_SEAL_SEAL {
        crate::bail!("the init binary memfd did not keep its seals ({got:#x})");
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fd_path(fd: &OwnedFd) -> String {
        format!("/proc/self/fd/{}", fd.as_raw_fd())
    }

    #[test]
    fn memfd_copy_is_identical_and_sealed() {
        let fd = make_sealed_copy().unwrap();
        let p = fd_path(&fd);
        let a = std::fs::read("/proc/self/exe").unwrap();
        assert!(
            a == std::fs::read(&p).unwrap(),
            "sealed copy differs from the binary"
        );
        // Writing is refused by the seals, whether the file is opened for
        // appending or truncated (which fails outright).
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        let e = f.write_all(b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        let e = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn overlay_view_is_read_only() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        // Needs overlayfs and fsopen; where there are none, the memfd is used.
        let Ok(fd) = overlay_view() else {
            return;
        };
        let p = fd_path(&fd);
        let a = std::fs::read("/proc/self/exe").unwrap();
        assert!(
            a == std::fs::read(&p).unwrap(),
            "overlay view differs from the binary"
        );
        let e = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    }

    #[test]
    fn one_sealed_binary_per_process() {
        let p = sealed_self_exe().unwrap();
        assert!(p.starts_with("/proc/self/fd/"));
        assert_eq!(sealed_self_exe().unwrap(), p);
    }
}
