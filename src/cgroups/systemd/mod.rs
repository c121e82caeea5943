//! The systemd cgroup driver (`--systemd-cgroup`), as runc's: the container is
//! a transient scope unit that systemd creates over D-Bus with Delegate=yes,
//! its parent slices are systemd's (named in Slice=, systemd makes the missing
//! ones as units), its limits are unit properties and, for what systemd cannot
//! say, the cgroup files written by the v2 (or v1) manager underneath.

mod dbus;
mod props;

use super::config::Resources;
use super::{CgroupMount, FreezerState, Manager, OomWatch, Stats};
use crate::bail;
use crate::error::Result;
use dbus::{StartError, Systemd};
use oci_spec::runtime::LinuxResources;
use std::cell::{Cell, OnceCell};
use std::path::Path;

pub struct Driver {
    /// The cgroupfs manager of the unit's cgroup (made by systemd, so it never
    /// creates parents or enables controllers above it).
    inner: Box<dyn Manager>,
    unit: String,
    slice: String,
    id: String,
    v2: bool,
    /// Made by `new` (apply starts the unit) rather than `load` (apply only
    /// joins the existing cgroup, as exec does).
    fresh: bool,
    /// A fresh driver's unit was started by us: only then is it ours to stop
    /// (a create that met another container's unit must not stop it).
    started: Cell<bool>,
    /// The user's own systemd instance (rootless), not the system's.
    user: bool,
    bus: OnceCell<Systemd>,
}

/// A connection to the user's own systemd instance.
pub fn user_bus() -> Result<Systemd> {
    Systemd::connect_user()
}

impl Driver {
    /// A driver for a new container: systemd must answer now, so an
    /// unreachable systemd fails before anything is started.
    pub fn new(
        inner: Box<dyn Manager>,
        name: super::path::SystemdName,
        id: &str,
        v2: bool,
    ) -> Result<Driver> {
        let d = Driver {
            inner,
            unit: name.unit,
            slice: name.slice,
            id: id.to_string(),
            v2,
            fresh: true,
            started: Cell::new(false),
            user: false,
            bus: OnceCell::new(),
        };
        d.bus()?;
        Ok(d)
    }

    /// A driver for a new rootless container in the user's instance `bus`
    /// (cgroup v2 only).
    pub fn new_user(
        inner: Box<dyn Manager>,
        name: super::path::SystemdName,
        id: &str,
        bus: Systemd,
    ) -> Driver {
        Driver {
            inner,
            unit: name.unit,
            slice: name.slice,
            id: id.to_string(),
            v2: true,
            fresh: true,
            started: Cell::new(false),
            user: true,
            bus: OnceCell::from(bus),
        }
    }

    /// The driver of an existing container: the unit is its cgroup's directory
    /// name, the slice its parent's (the root is "-.slice").
    pub fn load(inner: Box<dyn Manager>, dir: &Path, v2: bool) -> Driver {
        let name = |p: Option<&Path>| {
            p.and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        };
        let unit = name(Some(dir)).unwrap_or_default();
        let slice = name(dir.parent())
            .filter(|s| s.ends_with(".slice"))
            .unwrap_or_else(|| "-.slice".into());
        Driver {
            inner,
            unit,
            slice,
            id: String::new(),
            v2,
            fresh: false,
            started: Cell::new(false),
            user: crate::rootless::is_rootless_euid(),
            bus: OnceCell::new(),
        }
    }

    fn bus(&self) -> Result<&Systemd> {
        if let Some(b) = self.bus.get() {
            return Ok(b);
        }
        let b = if self.user {
            Systemd::connect_user()?
        } else {
            Systemd::connect()?
        };
        Ok(self.bus.get_or_init(|| b))
    }

    fn start(&self, pid: i32) -> Result<()> {
        let bus = self.bus()?;
        let pid = u32::try_from(pid).unwrap_or_default();
        let props = props::unit(&self.unit, &self.slice, pid, &self.id);
        match bus.start_transient(&self.unit, &props) {
            Ok(()) => return Ok(()),
            Err(StartError::Other(e)) => return Err(e),
            Err(StartError::Exists) => {}
        }
        // A leftover of an earlier run that failed or stopped may be reset and
        // reused (as runc does); a live one belongs to another container.
        match bus.active_state(&self.unit)?.as_deref() {
            Some("failed") | Some("inactive") => {
                bus.reset_failed(&self.unit);
                match bus.start_transient(&self.unit, &props) {
                    Ok(()) => Ok(()),
                    Err(StartError::Other(e)) => Err(e),
                    Err(StartError::Exists) => self.exists(),
                }
            }
            _ => self.exists(),
        }
    }

    fn exists(&self) -> Result<()> {
        bail!(
            "systemd unit {} already exists (another container uses this cgroupsPath?): refusing to join it",
            self.unit
        )
    }
}

impl Manager for Driver {
    fn path(&self) -> &str {
        self.inner.path()
    }

    fn apply(&self, pid: i32) -> Result<()> {
        if self.fresh {
            self.start(pid)?;
            self.started.set(true);
        }
        // v2: the process is in the scope already (this only confirms it);
        // v1: systemd placed it in its own hierarchy, we join the controllers'.
        self.inner.apply(pid)
    }

    fn clone_into(&self) -> Result<Option<std::os::fd::OwnedFd>> {
        // A new scope is started over D-Bus with the PID it will hold; an
        // existing one (exec) is a plain cgroup to start a process in.
        if self.fresh {
            return Ok(None);
        }
        self.inner.clone_into()
    }

    fn set(&self, resources: &LinuxResources) -> Result<()> {
        let r = Resources::from_spec(resources)?;
        let mut p = if self.v2 {
            props::resources_v2(&r)
        } else {
            props::resources_v1(&r)
        };
        if self.user {
            // A user's instance cannot attach device programs (runc sets no
            // device properties for rootless either): device nodes cannot be
            // made in a user namespace anyway.
            p.retain(|(k, _)| !k.starts_with("Device"));
        }
        self.bus()?.set_properties(&self.unit, &p)?;
        if self.user {
            // Nor can the user load the v2 device filter (BPF_PROG_LOAD of a
            // cgroup-device program needs CAP_SYS_ADMIN in the host's user
            // namespace); runc skips device rules for rootless as well.
            let mut r = resources.clone();
            r.set_devices(None);
            return self.inner.set(&r);
        }
        self.inner.set(resources)
    }

    fn destroy(&self) -> Result<()> {
        if self.fresh && !self.started.get() {
            // Nothing was made: the unit and its cgroup, if any, are not ours.
            return Ok(());
        }
        self.bus()?.stop(&self.unit)?;
        // systemd removes the scope's cgroup; what a v1 host has besides
        // (or a nested cgroup an old systemd leaves) is ours to remove.
        self.inner.destroy()
    }

    fn freeze(&self, state: FreezerState) -> Result<()> {
        self.inner.freeze(state)
    }

    fn kill_all(&self) -> Result<bool> {
        self.inner.kill_all()
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        self.inner.freezer_state()
    }

    fn pids(&self) -> Result<Vec<i32>> {
        if self.fresh && !self.started.get() {
            // Cleanup of a failed create must not signal another unit's processes.
            return Ok(Vec::new());
        }
        self.inner.pids()
    }

    fn check_unused(&self) -> Result<()> {
        self.inner.check_unused()
    }

    fn stats(&self) -> Result<Stats> {
        self.inner.stats()
    }

    fn mounts(&self) -> Vec<CgroupMount> {
        self.inner.mounts()
    }

    fn oom_watch(&self) -> Result<OomWatch> {
        self.inner.oom_watch()
    }

    fn memory_events(&self) -> crate::cgroups::oom::MemoryEvents {
        self.inner.memory_events()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_that_never_started_its_unit_touches_nothing() {
        // As if StartTransientUnit had failed (e.g. another container's unit).
        let dir = std::env::temp_dir().join(format!("skiff-sd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "4242\n").unwrap();
        let path = format!(r#"{{"":"{}"}}"#, dir.display());
        let mut d = Driver::load(super::super::load(&path, false).unwrap(), &dir, true);
        d.fresh = true;
        assert_eq!(d.pids().unwrap(), Vec::<i32>::new(), "would be signalled");
        d.destroy().unwrap();
        assert!(d.bus.get().is_none(), "systemd was asked to stop the unit");
        assert!(dir.exists());
        d.started.set(true);
        assert_eq!(d.pids().unwrap(), vec![4242]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loaded_names_come_from_the_path() {
        let inner = super::super::load(
            r#"{"":"/sys/fs/cgroup/a.slice/a-b.slice/p-c.scope"}"#,
            false,
        )
        .unwrap();
        let d = Driver::load(
            inner,
            Path::new("/sys/fs/cgroup/a.slice/a-b.slice/p-c.scope"),
            true,
        );
        assert_eq!(d.unit, "p-c.scope");
        assert_eq!(d.slice, "a-b.slice");
        let inner = super::super::load(r#"{"":"/sys/fs/cgroup/x.scope"}"#, false).unwrap();
        let d = Driver::load(inner, Path::new("/sys/fs/cgroup/x.scope"), true);
        assert_eq!(d.slice, "-.slice");
    }
}
