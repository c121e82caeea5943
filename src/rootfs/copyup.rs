//! tmpcopyup: copy what a tmpfs is about to cover into it. The directory may
//! be a volume another container shares, whose entries can be swapped for
//! symlinks while we copy: every entry is reached from its parent's directory
//! fd with O_NOFOLLOW, its type taken from the fd that was opened (not from a
//! name looked up again), and symlinks are copied as symlinks, never followed.
//! So nothing outside the directory can be copied in.

use crate::bail;
use crate::error::{Context, Result};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Copy the contents of directory `from` into directory `to`, keeping modes,
/// owners and symlinks; other file types (devices, fifos, sockets) are skipped.
/// `shown` is the container path, for messages.
pub fn copy_dir(from: BorrowedFd, to: BorrowedFd, shown: &Path) -> Result<()> {
    let mut dir = Dir::openat(
        from,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("tmpcopyup: open {}", shown.display()))?;
    let mut names = Vec::new();
    for ent in dir.iter() {
        let ent = ent.ctx(|| format!("tmpcopyup: read {}", shown.display()))?;
        let name = ent.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    for name in &names {
        let name = OsStr::from_bytes(name);
        copy_entry(from, to, name, &shown.join(name))?;
    }
    Ok(())
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn copy_entry(from: BorrowedFd, to: BorrowedFd, name: &OsStr, shown: &Path) -> Result<()> {
    let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .ctx(|| format!("tmpcopyup: stat {}", shown.display()))?;
    let copied = match kind(&st) {
        SFlag::S_IFDIR => copy_subdir(from, to, name, shown)?,
        SFlag::S_IFREG => copy_file(from, to, name, shown)?,
        SFlag::S_IFLNK => false,
        _ => return Ok(()),
    };
    if copied {
        return Ok(());
    }
    // A symlink, or an entry that became one since it was listed.
    let target =
        readlinkat(from, name).ctx(|| format!("tmpcopyup: readlink {}", shown.display()))?;
    symlinkat(target.as_os_str(), to, name)
        .ctx(|| format!("tmpcopyup: symlink {}", shown.display()))?;
    let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .ctx(|| format!("tmpcopyup: stat {}", shown.display()))?;
    fchownat(
        to,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("tmpcopyup: chown {}", shown.display()))
}

/// Open `name` under `from` without following a symlink there, and check the
/// opened file is of type `want`: the entry may have been swapped since it
/// was listed. None when it is a symlink now (copied as one by the caller);
/// an error when it is anything else.
fn open_checked(
    from: BorrowedFd,
    name: &OsStr,
    flags: OFlag,
    want: SFlag,
    shown: &Path,
) -> Result<Option<(OwnedFd, FileStat)>> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = match openat(from, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        // O_NOFOLLOW on a symlink: ELOOP, or ENOTDIR with O_DIRECTORY.
        Err(Errno::ELOOP | Errno::ENOTDIR) => return Ok(None),
        Err(e) => bail!("tmpcopyup: open {}: {e}", shown.display()),
    };
    let st = fstat(&fd).ctx(|| format!("tmpcopyup: stat {}", shown.display()))?;
    if kind(&st) != want {
        bail!(
            "tmpcopyup: {} changed type while being copied: refusing to copy it",
            shown.display()
        );
    }
    Ok(Some((fd, st)))
}

/// Copy a directory; false when it turned out to be a symlink.
fn copy_subdir(from: BorrowedFd, to: BorrowedFd, name: &OsStr, shown: &Path) -> Result<bool> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let Some((src, st)) = open_checked(from, name, flags, SFlag::S_IFDIR, shown)? else {
        return Ok(false);
    };
    mkdirat(to, name, Mode::from_bits_truncate(0o700))
        .ctx(|| format!("tmpcopyup: mkdir {}", shown.display()))?;
    let dst = openat(
        to,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("tmpcopyup: open new {}", shown.display()))?;
    copy_dir(src.as_fd(), dst.as_fd(), shown)?;
    set_owner_mode(&dst, &st, shown)?;
    Ok(true)
}

/// Copy a regular file; false when it turned out to be a symlink.
fn copy_file(from: BorrowedFd, to: BorrowedFd, name: &OsStr, shown: &Path) -> Result<bool> {
    let Some((src, st)) = open_checked(from, name, OFlag::O_RDONLY, SFlag::S_IFREG, shown)? else {
        return Ok(false);
    };
    let dst = openat(
        to,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .ctx(|| format!("tmpcopyup: create {}", shown.display()))?;
    let mut r = std::fs::File::from(src);
    let mut w = std::fs::File::from(dst);
    std::io::copy(&mut r, &mut w).ctx(|| format!("tmpcopyup: copy {}", shown.display()))?;
    set_owner_mode(&OwnedFd::from(w), &st, shown)?;
    Ok(true)
}

/// Owner first: chown clears the set-id bits that chmod then restores.
fn set_owner_mode(fd: &OwnedFd, st: &FileStat, shown: &Path) -> Result<()> {
    fchown(
        fd,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .ctx(|| format!("tmpcopyup: chown {}", shown.display()))?;
    fchmod(fd, Mode::from_bits_truncate(st.st_mode & 0o7777))
        .ctx(|| format!("tmpcopyup: chmod {}", shown.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_copied_not_followed() {
        let d = std::env::temp_dir().join(format!("skiff-copyup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("from/sub")).unwrap();
        std::fs::create_dir_all(d.join("to")).unwrap();
        std::fs::write(d.join("secret"), "host secret").unwrap();
        std::fs::write(d.join("from/sub/f"), "data").unwrap();
        std::os::unix::fs::symlink(d.join("secret"), d.join("from/link")).unwrap();
        let open = |p: &Path| {
            nix::fcntl::open(
                p,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .unwrap()
        };
        let (f, t) = (open(&d.join("from")), open(&d.join("to")));
        copy_dir(f.as_fd(), t.as_fd(), Path::new("/x")).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("to/sub/f")).unwrap(), "data");
        let l = std::fs::symlink_metadata(d.join("to/link")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!(
            std::fs::read_link(d.join("to/link")).unwrap(),
            d.join("secret")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
