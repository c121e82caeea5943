//! `checkpoint`: dump a running container to images with CRIU, as runc's
//! libcontainer does it. Without --leave-running (or with --pre-dump) CRIU
//! kills the tree and the container is destroyed, as runc reports it.

use super::state::Status;
use super::{lifecycle, store, Container, Globals};
use crate::bail;
use crate::cgroups::{CgroupMount, FreezerState, Manager};
use crate::criu::{self, externals, swrk};
use crate::error::{Context, Error, Result};
use crate::rootfs::safe_path::{fd_path, Root};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use protobuf::MessageField;
use rust_criu::rust_criu_protobuf::rpc::{
    Criu_features, Criu_opts, Criu_page_server_info, Criu_req, Criu_req_type, Ext_mount_map,
};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The file where runc records the container's stdio, for restore to map pipes.
pub const DESCRIPTORS: &str = "descriptors.json";
const DUMP_LOG: &str = "dump.log";

pub fn checkpoint(g: &Globals, id: &str, o: &criu::Opts) -> Result<()> {
    let mut c = Container::load(g, id)?;
    let lock = c.store.lock(id)?;
    c.refresh();
    if matches!(
        c.status,
        Status::Created | Status::Stopped | Status::Creating
    ) {
        bail!("Container cannot be checkpointed in {} state", c.status);
    }
    let spec: Spec = c.store.read_json(id, store::CONFIG_FILE)?;
    let cg = c.cgroup();
    let frozen_before = c.status == Status::Paused;
    let res = dump(&c, &spec, cg.as_deref(), o);
    if let Err(e) = res {
        // CRIU thaws what it froze when it fails; make sure of it, so a
        // failed checkpoint leaves the container as it found it.
        if let (Some(cg), false) = (&cg, frozen_before) {
            if cg.freezer_state().is_ok_and(|s| s == FreezerState::Frozen) {
                let _ = cg.freeze(FreezerState::Thawed);
            }
        }
        return Err(e);
    }
    drop(lock);
    if !o.leave_running && !o.pre_dump {
        // CRIU killed the tree: the container is gone, as after runc's Destroy.
        if let Err(e) = lifecycle::delete(g, id, true) {
            log::warn!("checkpoint: destroy container {id}: {e}");
        }
    }
    Ok(())
}

/// Open (making it 0700 if missing) a directory CRIU writes into.
pub(super) fn open_dir(p: &Path, what: &str) -> Result<OwnedFd> {
    match std::fs::create_dir_all(p) {
        Ok(()) => {}
        Err(e) => bail!("{what} {}: {e}", p.display()),
    }
    nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {what} {}", p.display()))
}

/// The request options every dump shares with runc's.
fn base_opts(c: &Container, o: &criu::Opts, images: &OwnedFd) -> Criu_opts {
    let mut r = Criu_opts::new();
    r.set_images_dir_fd(images.as_raw_fd());
    r.set_log_level(4);
    r.set_log_file(DUMP_LOG.into());
    r.set_root(c.state.rootfs.display().to_string());
    r.set_manage_cgroups(true);
    r.set_manage_cgroups_mode(o.manage_cgroups_mode);
    r.set_notify_scripts(true);
    r.set_pid(c.state.pid);
    r.set_shell_job(o.shell_job);
    r.set_leave_running(o.leave_running);
    r.set_tcp_established(o.tcp_established);
    r.set_tcp_skip_in_flight(o.tcp_skip_in_flight);
    r.set_link_remap(o.link_remap);
    r.set_ext_unix_sk(o.ext_unix_sk);
    r.set_file_locks(o.file_locks);
    r.set_empty_ns(o.empty_ns);
    r.set_orphan_pts_master(true);
    r.set_auto_dedup(o.auto_dedup);
    r.set_lazy_pages(o.lazy_pages);
    if let Some(f) = criu::config_file(&c.state.annotations) {
        r.set_config_file(f);
    }
    if let Some((addr, port)) = &o.page_server {
        let mut ps = Criu_page_server_info::new();
        ps.set_address(addr.clone());
        ps.set_port(*port);
        r.ps = MessageField::some(ps);
    }
    if let Some(p) = &o.parent_path {
        r.set_parent_img(p.clone());
        r.set_track_mem(true);
    }
    r
}

fn dump(c: &Container, spec: &Spec, cg: Option<&dyn Manager>, o: &criu::Opts) -> Result<()> {
    let images = open_dir(&o.image_path, "image path")?;
    let work = match &o.work_path {
        Some(p) => Some(open_dir(p, "work path")?),
        None => None,
    };
    let log_dir = o.work_path.clone().unwrap_or_else(|| o.image_path.clone());
    let mut opts = base_opts(c, o, &images);
    if let Some(w) = &work {
        opts.set_work_dir_fd(w.as_raw_fd());
    }
    for (t, name) in [
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::Pid, "pid"),
    ] {
        if let Some(p) = ns_path(spec, t) {
            let st = nix::sys::stat::stat(&p)
                .ctx(|| format!("stat {name} namespace {}", p.display()))?;
            opts.external
                .push(format!("{name}[{}]:{}", st.st_ino, criu::ns_key(name)));
        }
    }
    if let Some(f) = cg.and_then(|cg| freezer_dir(&cg.mounts())) {
        opts.set_freeze_cgroup(f);
    }
    let kind = if o.pre_dump {
        Criu_req_type::PRE_DUMP
    } else {
        Criu_req_type::DUMP
    };
    if o.pre_dump {
        need_feature(
            &opts,
            |f| f.set_mem_track(true),
            |f| f.mem_track(),
            "MemTrack",
            &log_dir,
        )?;
    }
    if o.lazy_pages {
        need_feature(
            &opts,
            |f| f.set_lazy_pages(true),
            |f| f.lazy_pages(),
            "LazyPages",
            &log_dir,
        )?;
        if o.status_fd >= 0 {
            check_status_fd(o.status_fd)?;
        }
    }
    if !o.pre_dump {
        let rootfs = Root::open(&c.state.rootfs)?;
        let mounts = spec_mounts(spec, &rootfs);
        let devices = device_paths(spec);
        let cg_mounts = cg.map(|cg| cg.mounts()).unwrap_or_default();
        let layout = layout(spec, &mounts, &cg_mounts, &devices);
        let masked = masked_files(spec, c.state.pid);
        opts.ext_mnt = to_ext(externals::for_dump(&layout, &masked));
        write_descriptors(c.state.pid, &o.image_path)?;
    }
    let mut req = Criu_req::new();
    req.set_type(kind);
    req.opts = MessageField::some(opts);
    let mut inherit = vec![images.as_raw_fd()];
    inherit.extend(work.as_ref().map(|w| w.as_raw_fd()));
    let sw = swrk::Swrk {
        inherit,
        stdio: false,
        before_send: None,
    };
    let mut notify = DumpNotify {
        status_fd: (o.lazy_pages && o.status_fd >= 0).then_some(o.status_fd),
    };
    swrk::call(req, sw, &mut notify)
        .map(drop)
        .map_err(|e| explain(e, &log_dir, DUMP_LOG))
}

/// A lazy-pages dump: CRIU (3.15+) says "status-ready" once its page server
/// listens, and we pass that on as one NUL byte on --status-fd (runc's way).
struct DumpNotify {
    status_fd: Option<i32>,
}

impl swrk::Notify for DumpNotify {
    fn notify(
        &mut self,
        n: &rust_criu::rust_criu_protobuf::rpc::Criu_notify,
        _fd: Option<OwnedFd>,
    ) -> Result<()> {
        log::debug!("criu notify: {}", n.script());
        if n.script() == "status-ready" {
            if let Some(fd) = self.status_fd.take() {
                if let Err(e) = nix::unistd::write(crate::sys::borrow_fd(fd), &[0]) {
                    log::warn!("can't write \\0 to status fd: {e}");
                }
                let _ = nix::unistd::close(fd);
            }
        }
        Ok(())
    }
}

/// The error of a failed CRIU request, with CRIU's log quoted as warnings
/// (as runc does) and, when CRIU cannot work here at all, `criu check`'s reason.
pub(super) fn explain(e: Error, log_dir: &Path, log_name: &str) -> Error {
    let log = log_dir.join(log_name);
    if let Ok(text) = std::fs::read_to_string(&log) {
        let quoted = criu::check::log_errors(&text);
        if !quoted.is_empty() {
            log::warn!("--- Quoting {:?}", log.display().to_string());
            for l in quoted {
                log::warn!("{l}");
            }
            log::warn!("---");
        }
    }
    match criu::check::host_problem() {
        Some(why) => Error::new(format!("{why} ({e}; log file: {})", log.display())),
        None => Error::new(format!("{e} (log file: {})", log.display())),
    }
}

/// Ask CRIU whether it has a feature the request needs (runc's feature check).
fn need_feature(
    opts: &Criu_opts,
    want: impl Fn(&mut Criu_features),
    has: impl Fn(&Criu_features) -> bool,
    name: &str,
    log_dir: &Path,
) -> Result<()> {
    let mut f = Criu_features::new();
    want(&mut f);
    let mut req = Criu_req::new();
    req.set_type(Criu_req_type::FEATURE_CHECK);
    req.features = MessageField::some(f);
    let _ = opts;
    let sw = swrk::Swrk {
        inherit: Vec::new(),
        stdio: false,
        before_send: None,
    };
    let resp = swrk::call(req, sw, &mut swrk::Ignore)
        .map_err(|e| explain(e, log_dir, DUMP_LOG))
        .ctx(|| "CRIU feature check failed")?;
    if !resp.features.as_ref().is_some_and(&has) {
        bail!("criu is missing features: [{name}]");
    }
    Ok(())
}

/// runc's check of --status-fd: an open fd, writable.
fn check_status_fd(fd: i32) -> Result<()> {
    let flags = nix::fcntl::fcntl(crate::sys::borrow_fd(fd), nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| Error::new(format!("invalid --status-fd argument {fd}: {e}")))?;
    if flags & (libc::O_WRONLY | libc::O_RDWR) == 0 {
        bail!("invalid --status-fd argument {fd}: not writable");
    }
    Ok(())
}

pub(super) fn to_ext(pairs: Vec<(String, String)>) -> Vec<Ext_mount_map> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            let mut m = Ext_mount_map::new();
            m.set_key(k);
            m.set_val(v);
            m
        })
        .collect()
}

/// The directory CRIU freezes the tree with: the v2 cgroup, or the v1 freezer.
fn freezer_dir(mounts: &[CgroupMount]) -> Option<String> {
    mounts
        .iter()
        .find(|m| m.name.is_empty() || m.name.split(',').any(|n| n == "freezer"))
        .map(|m| m.host.display().to_string())
}

pub(super) fn ns_path(spec: &Spec, t: LinuxNamespaceType) -> Option<PathBuf> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|nss| nss.iter().find(|n| n.typ() == t))
        .and_then(|n| n.path().clone())
        .filter(|p| !p.as_os_str().is_empty())
}

pub(super) fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| nss.iter().any(|n| n.typ() == t))
}

/// A destination as the container sees it: symlinks in the rootfs followed
/// (runc's securejoin), falling back to the cleaned path when it does not exist.
fn resolve_dest(root: &Root, dest: &Path) -> String {
    let rel = crate::rootfs::safe_path::relative(dest);
    let lexical = format!("/{}", rel.display());
    let Ok(fd) = root.resolve(dest) else {
        return lexical;
    };
    let (Ok(full), Ok(base)) = (
        std::fs::read_link(fd_path(&fd)),
        std::fs::read_link(fd_path(root.fd())),
    ) else {
        return lexical;
    };
    match full.strip_prefix(&base) {
        Ok(r) => format!("/{}", r.display()),
        Err(_) => lexical,
    }
}

pub(super) fn spec_mounts(spec: &Spec, root: &Root) -> Vec<externals::SpecMount> {
    spec.mounts()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|m| externals::SpecMount {
            dest: resolve_dest(root, m.destination()),
            source: m
                .source()
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_default(),
            typ: m.typ().clone().unwrap_or_default(),
            options: m.options().clone().unwrap_or_default(),
        })
        .collect()
}

pub(super) fn device_paths(spec: &Spec) -> Vec<String> {
    let mut v: Vec<String> = crate::rootfs::devices::defaults()
        .into_iter()
        .map(|n| n.path.display().to_string())
        .collect();
    let extra = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    for d in extra {
        let p = d.path().display().to_string();
        if !v.contains(&p) {
            v.push(p);
        }
    }
    v
}

pub(super) fn layout<'a>(
    spec: &Spec,
    mounts: &'a [externals::SpecMount],
    cg: &'a [CgroupMount],
    devices: &'a [String],
) -> externals::Layout<'a> {
    externals::Layout {
        mounts,
        cgroups: cg,
        cgroupns: has_ns(spec, LinuxNamespaceType::Cgroup),
        devices,
    }
}

pub(super) fn masked_paths(spec: &Spec) -> Vec<String> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
}

/// Masked paths that are files in the running container (runc stats them
/// through /proc/<pid>/root): those have /dev/null bound over them.
fn masked_files(spec: &Spec, pid: i32) -> Vec<String> {
    masked_paths(spec)
        .into_iter()
        .filter(|p| {
            std::fs::metadata(format!("/proc/{pid}/root/{}", p.trim_start_matches('/')))
                .is_ok_and(|m| !m.is_dir())
        })
        .collect()
}

/// What init's fds 0-2 are (pipe:[ino], /dev/null, ...), for restore to hand
/// the restoring caller's pipes to the restored process.
fn write_descriptors(pid: i32, images: &Path) -> Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|i| {
            std::fs::read_link(format!("/proc/{pid}/fd/{i}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    let json = serde_json::to_vec(&fds).ctx(|| "encode descriptors")?;
    let path = images.join(DESCRIPTORS);
    std::fs::write(&path, json).ctx(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .ctx(|| format!("chmod {}", path.display()))
}
