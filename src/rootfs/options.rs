//! Mount option strings (config.json `mounts[].options`) to mount(2) flags and data.
//! Pure logic, unit-tested without root.

use nix::mount::MsFlags;

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
}
