//! Per-task kernel settings nix does not wrap: the capability bounding set by
//! number (capabilities newer than the `caps` crate), sched_setattr(2),
//! ioprio_set(2) and personality(2).

/// PR_CAPBSET_READ: Some(in the bounding set?) for a capability the kernel
/// knows, None past the last one (the kernel answers EINVAL).
pub fn capbset_read(cap: u32) -> Option<bool> {
    // SAFETY: plain prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
    match r {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// PR_CAPBSET_DROP one capability by number.
pub fn capbset_drop(cap: u32) -> std::io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// PR_SET_KEEPCAPS: keep the permitted set across the switch away from uid 0.
pub fn set_keepcaps(on: bool) -> std::io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `struct sched_attr` (SCHED_ATTR_SIZE_VER1, with the utilization clamps).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(2) for the calling thread.
pub fn sched_setattr(attr: &SchedAttr) -> std::io::Result<()> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `a` is a valid, fully initialised sched_attr whose size field
    // matches its layout; the kernel only reads it.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// ioprio_set(IOPRIO_WHO_PROCESS, self, class << 13 | level).
pub fn ioprio_set(class: u32, level: u32) -> std::io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    let prio = (class << IOPRIO_CLASS_SHIFT) | level;
    // SAFETY: ioprio_set takes plain integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// personality(2); returns the previous persona.
pub fn personality(persona: u32) -> std::io::Result<u32> {
    // SAFETY: personality takes a plain integer.
    let r = unsafe { libc::personality(persona as libc::c_ulong) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as u32)
}

/// set_mempolicy(2) for the calling thread (inherited across fork and execve).
/// `mask` is a node bitmap of `mask.len() * 64` bits; empty means no nodes.
pub fn set_mempolicy(mode_and_flags: i32, mask: &[u64]) -> std::io::Result<()> {
    let (ptr, bits) = if mask.is_empty() {
        (std::ptr::null(), 0)
    } else {
        // maxnode counts one past the last bit the kernel reads.
        (mask.as_ptr(), mask.len() as u64 * 64 + 1)
    };
    // SAFETY: the kernel reads at most `bits - 1` bits from `ptr`, which points
    // to `mask.len()` u64 words that live through the call (or is null with 0).
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode_and_flags, ptr, bits) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
