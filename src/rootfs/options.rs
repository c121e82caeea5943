//! Mount option strings (config.json `mounts[].options`) to mount(2) flags and data.
//! Pure logic, unit-tested without root.

use crate::sys::newmount::{
    MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
    MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME,
    MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME,
};
use nix::mount::MsFlags;

/// mount_setattr(2) attributes to set and clear, and the atime mode (one
/// field, not a bit: setting a mode means clearing the whole field).
#[derive(Debug, PartialEq, Eq, Clone, Copy, Default)]
pub struct Attrs {
    pub set: u32,
    pub clr: u32,
    pub atime: Option<u32>,
}

impl Attrs {
    fn apply(&mut self, clear: bool, a: u32) {
        if clear {
            self.set &= !a;
            self.clr |= a;
        } else {
            self.clr &= !a;
            self.set |= a;
        }
    }

    /// (attr_set, attr_clr) for struct mount_attr.
    pub fn set_clr(&self) -> (u32, u32) {
        match self.atime {
            Some(mode) => (self.set | mode, self.clr | MOUNT_ATTR__ATIME),
            None => (self.set, self.clr),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.set_clr() == (0, 0)
    }
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Parsed {
    /// Flags for the mount itself (bind, ro, nosuid, ...).
    pub flags: MsFlags,
    /// Flags explicitly cleared ("rw", "suid", ...), so a remount can drop them.
    pub cleared: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// Everything the kernel should see as filesystem data ("mode=755,size=64k").
    pub data: String,
    /// runc's "tmpcopyup": copy the underlying directory into the new tmpfs.
    pub tmpcopyup: bool,
    /// Attributes of the mount itself that mount(2) flags cannot carry
    /// ("nosymfollow", "symfollow").
    pub attrs: Attrs,
    /// The recursive attributes ("rro", "rnosuid", ...), applied with
    /// mount_setattr(AT_RECURSIVE) to the mount and every mount below it,
    /// as runc 1.1+ does. Never filesystem data.
    pub rec: Attrs,
    /// "idmap"/"ridmap": an idmapped mount (recursive for "ridmap").
    pub idmap: Option<bool>,
}

/// The plain and recursive mount_setattr options: (recursive?, clear?, attr).
fn attr_of(opt: &str) -> Option<(bool, bool, u32)> {
    let (rec, name) = match opt.strip_prefix('r') {
        // "ro", "rw", "relatime" are mount(2) flags, handled before this.
        Some(rest) => (true, rest),
        None => (false, opt),
    };
    let (clear, a) = match name {
        "ro" => (false, MOUNT_ATTR_RDONLY),
        "rw" => (true, MOUNT_ATTR_RDONLY),
        "nosuid" => (false, MOUNT_ATTR_NOSUID),
        "suid" => (true, MOUNT_ATTR_NOSUID),
        "nodev" => (false, MOUNT_ATTR_NODEV),
        "dev" => (true, MOUNT_ATTR_NODEV),
        "noexec" => (false, MOUNT_ATTR_NOEXEC),
        "exec" => (true, MOUNT_ATTR_NOEXEC),
        "nodiratime" => (false, MOUNT_ATTR_NODIRATIME),
        "diratime" => (true, MOUNT_ATTR_NODIRATIME),
        "nosymfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
        "symfollow" => (true, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    };
    // Without the "r", only the symlink attribute is new here: the others
    // are mount(2) flags.
    if !rec && a != MOUNT_ATTR_NOSYMFOLLOW {
        return None;
    }
    Some((rec, clear, a))
}

/// The recursive atime options. The atime mode is one field, so "ratime"
/// (as mount(2)'s "atime": no noatime) means the kernel's default relatime,
/// and "rnorelatime"/"rnostrictatime" only undo an earlier "rrelatime" or
/// "rstrictatime" in the same list (as "norelatime" does for mount(8)).
fn rec_atime(rec: &mut Attrs, opt: &str) -> bool {
    match opt {
        "rnoatime" => rec.atime = Some(MOUNT_ATTR_NOATIME),
        "rstrictatime" => rec.atime = Some(MOUNT_ATTR_STRICTATIME),
        "rrelatime" | "ratime" => rec.atime = Some(MOUNT_ATTR_RELATIME),
        "rnorelatime" if rec.atime == Some(MOUNT_ATTR_RELATIME) => rec.atime = None,
        "rnostrictatime" if rec.atime == Some(MOUNT_ATTR_STRICTATIME) => rec.atime = None,
        "rnorelatime" | "rnostrictatime" => {}
        _ => return false,
    }
    true
}

fn flag_of(opt: &str) -> Option<(bool, MsFlags)> {
    // (clear?, flag)
    Some(match opt {
        "async" => (true, MsFlags::MS_SYNCHRONOUS),
        "atime" => (true, MsFlags::MS_NOATIME),
        "bind" => (false, MsFlags::MS_BIND),
        "defaults" => (false, MsFlags::empty()),
        "dev" => (true, MsFlags::MS_NODEV),
        "diratime" => (true, MsFlags::MS_NODIRATIME),
        "dirsync" => (false, MsFlags::MS_DIRSYNC),
        "exec" => (true, MsFlags::MS_NOEXEC),
        "iversion" => (false, MsFlags::MS_I_VERSION),
        "lazytime" => (false, MsFlags::MS_LAZYTIME),
        "loud" => (true, MsFlags::MS_SILENT),
        "mand" => (false, MsFlags::MS_MANDLOCK),
        "noatime" => (false, MsFlags::MS_NOATIME),
        "nodev" => (false, MsFlags::MS_NODEV),
        "nodiratime" => (false, MsFlags::MS_NODIRATIME),
        "noexec" => (false, MsFlags::MS_NOEXEC),
        "noiversion" => (true, MsFlags::MS_I_VERSION),
        "nolazytime" => (true, MsFlags::MS_LAZYTIME),
        "nomand" => (true, MsFlags::MS_MANDLOCK),
        "norelatime" => (true, MsFlags::MS_RELATIME),
        "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
        "nosuid" => (false, MsFlags::MS_NOSUID),
        "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
        "relatime" => (false, MsFlags::MS_RELATIME),
        "remount" => (false, MsFlags::MS_REMOUNT),
        "ro" => (false, MsFlags::MS_RDONLY),
        "rw" => (true, MsFlags::MS_RDONLY),
        "silent" => (false, MsFlags::MS_SILENT),
        "strictatime" => (false, MsFlags::MS_STRICTATIME),
        "suid" => (true, MsFlags::MS_NOSUID),
        "sync" => (false, MsFlags::MS_SYNCHRONOUS),
        _ => return None,
    })
}

pub fn propagation_of(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

pub fn parse(options: &[String]) -> Parsed {
    let mut p = Parsed {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        tmpcopyup: false,
        attrs: Attrs::default(),
        rec: Attrs::default(),
        idmap: None,
    };
    let mut data = Vec::new();
    for o in options {
        if let Some((clear, f)) = flag_of(o) {
            if clear {
                p.flags.remove(f);
                p.cleared.insert(f);
            } else {
                p.flags.insert(f);
                p.cleared.remove(f);
            }
        } else if let Some(f) = propagation_of(o) {
            p.propagation.push(f);
        } else if o == "tmpcopyup" {
            p.tmpcopyup = true;
        } else if let Some((rec, clear, a)) = attr_of(o) {
            if rec { &mut p.rec } else { &mut p.attrs }.apply(clear, a);
        } else if rec_atime(&mut p.rec, o) {
            // The atime mode is recorded in p.rec.
        } else if o == "idmap" || o == "ridmap" {
            p.idmap = Some(o == "ridmap");
        } else {
            data.push(o.as_str());
        }
    }
    p.data = data.join(",");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_data_and_propagation() {
        let p = parse(&s(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rslave",
        ]));
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
        assert_eq!(p.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_options_win() {
        let p = parse(&s(&["ro", "rw"]));
        assert!(!p.flags.contains(MsFlags::MS_RDONLY));
        assert!(p.cleared.contains(MsFlags::MS_RDONLY));
        let p = parse(&s(&["rbind", "ro"]));
        assert!(p
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
    }

    #[test]
    fn recursive_attributes_are_never_data() {
        let p = parse(&s(&[
            "rbind",
            "rro",
            "rnosuid",
            "rnodev",
            "nosymfollow",
            "rnoatime",
        ]));
        assert_eq!(p.data, "");
        assert_eq!(
            p.rec.set_clr(),
            (
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOATIME,
                MOUNT_ATTR__ATIME
            )
        );
        assert_eq!(p.attrs.set_clr(), (MOUNT_ATTR_NOSYMFOLLOW, 0));
        // ro/rw stay mount(2) flags; later options win within the r* family.
        let p = parse(&s(&["ro", "rro", "rrw", "rexec", "symfollow"]));
        assert!(p.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(p.rec.set_clr(), (0, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOEXEC));
        assert_eq!(p.attrs.set_clr(), (0, MOUNT_ATTR_NOSYMFOLLOW));
        // rnorelatime undoes an earlier rrelatime only.
        assert!(parse(&s(&["rrelatime", "rnorelatime"])).rec.is_empty());
        let p = parse(&s(&["rstrictatime", "rnorelatime"]));
        assert_eq!(p.rec.set_clr(), (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME));
        assert_eq!(parse(&s(&["ridmap"])).idmap, Some(true));
        // Unknown words stay data (a bind refuses them, a filesystem's kernel
        // code judges them).
        assert_eq!(parse(&s(&["rbind", "foo"])).data, "foo");
    }
}
