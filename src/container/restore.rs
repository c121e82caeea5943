//! `restore`: a new container from a bundle and CRIU images, as runc's
//! libcontainer does it. CRIU restores the process tree with the bundle's
//! rootfs as root (bound under the state dir, in a private mount namespace of
//! our own so nothing of the preparation reaches the host), the host side of
//! each external mount, and the container's new cgroup.

use super::checkpoint::{self as ck, DESCRIPTORS};
use super::lifecycle::{has_own_pid_ns, new_state, Cleanup};
use super::state::{State, Status};
use super::store::{self, Store};
use super::{proc_start_time, Globals};
use crate::bail;
use crate::cgroups::{self, Manager};
use crate::criu::{self, externals, swrk};
use crate::error::{Context, Result};
use crate::hooks;
use crate::rootfs::safe_path::{fd_path, Root};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use protobuf::MessageField;
use rust_criu::rust_criu_protobuf::rpc::{
    Cgroup_root, Criu_notify, Criu_opts, Criu_req, Criu_req_type, Inherit_fd, Join_namespace,
};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

const RESTORE_LOG: &str = "restore.log";

#[derive(Debug, Default)]
pub struct RestoreOpts {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub no_pivot: bool,
    pub criu: criu::Opts,
}

/// Restore container `id`; returns the restored init's pid.
pub fn restore(g: &Globals, id: &str, o: &RestoreOpts) -> Result<i32> {
    store::validate_id(id)?;
    if let Some(p) = &o.pid_file {
        store::check_pid_file(p)?;
    }
    let bundle =
        std::fs::canonicalize(&o.bundle).ctx(|| format!("bundle {}", o.bundle.display()))?;
    let spec = crate::spec::load(&bundle)?;
    // The resctrl group is joined by init at create; CRIU's restored tree
    // would not be placed in it.
    if spec
        .linux()
        .as_ref()
        .is_some_and(|l| l.intel_rdt().is_some())
    {
        crate::bail!("restore: linux.intelRdt is not supported with restore: the restored processes would not join the resctrl group");
    }
    let rootfs = crate::spec::rootfs(&spec, &bundle)?;
    if o.no_pivot {
        log::debug!("--no-pivot: CRIU sets up the restored root itself");
    }
    // Before any other thread exists (unshare needs a task of its own), and
    // before opening any directory CRIU works in: a directory opened in the
    // host's namespace is outside ours, and CRIU cannot mount under it.
    private_mount_ns()?;
    let images = nix::fcntl::open(
        &o.criu.image_path,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open image path {}", o.criu.image_path.display()))?;
    let st = g.store();
    st.create_dir(id)?;
    let _lock = st.lock(id)?;
    let linux = spec.linux().clone().unwrap_or_default();
    let cg_box = match cgroups::create(
        linux.cgroups_path().as_ref().and_then(|p| p.to_str()),
        id,
        g.systemd_cgroup,
    )
    .and_then(|m| m.check_unused().map(|()| m))
    {
        Ok(m) => m,
        Err(e) => {
            let _ = st.remove(id);
            return Err(e);
        }
    };
    let mut guard = Cleanup {
        store: &st,
        id,
        cgroup: Some(cg_box.as_ref()),
        own_ns: has_own_pid_ns(&spec),
        pid: 0,
        intel_rdt: None,
        armed: true,
    };
    st.write_json(id, store::CONFIG_FILE, &spec)?;
    let state = new_state(
        g,
        id,
        &spec,
        &bundle,
        &rootfs,
        Some(cg_box.path().to_string()),
    );
    st.write_json(id, store::STATE_FILE, &state)?;
    let mut notify = RestoreNotify {
        store: &st,
        state,
        spec: &spec,
        console: o.console_socket.clone(),
    };
    let res = run_criu(
        &st,
        id,
        &spec,
        &rootfs,
        cg_box.as_ref(),
        o,
        &images,
        &mut notify,
    );
    guard.pid = notify.state.pid;
    res?;
    let pid = notify.state.pid;
    if pid <= 0 {
        bail!("criu restored container {id} but never said its pid");
    }
    let mut state = notify.state;
    state.creating = false;
    st.write_json(id, store::STATE_FILE, &state)?;
    if let Some(p) = &o.pid_file {
        store::write_pid_file(p, pid)?;
    }
    guard.armed = false;
    Ok(pid)
}

/// A mount namespace of our own whose mounts never propagate to the host:
/// the rootfs binds CRIU needs go away when we exit, whatever happens.
fn private_mount_ns() -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .ctx(|| "unshare a mount namespace for restore")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .ctx(|| "make / rslave for restore")
}

/// The rootfs bound at <state dir>/criu-root: CRIU wants a root that is a
/// mount point whose parent is not overmounted. Unmounted and removed on drop.
struct CriuRoot(PathBuf);

impl CriuRoot {
    fn new(dir: &Path, rootfs: &Path) -> Result<CriuRoot> {
        let path = dir.join("criu-root");
        std::fs::create_dir(&path).ctx(|| format!("mkdir {}", path.display()))?;
        let root = CriuRoot(path);
        mount(
            Some(rootfs),
            &root.0,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind {} onto {}", rootfs.display(), root.0.display()))?;
        Ok(root)
    }
}

impl Drop for CriuRoot {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// runc's preparation of the rootfs for CRIU: every mount point exists (CRIU
/// does not create them), except under a tmpfs CRIU restores whole and for
/// cgroups; bind mounts are bound so mount points inside them can be made.
fn prepare_mounts(root: &Root, mounts: &[externals::SpecMount]) -> Result<()> {
    for m in mounts {
        if m.typ == "cgroup" || externals::on_tmpfs(&m.dest, mounts) {
            continue;
        }
        let dest = Path::new(&m.dest);
        let is_file = m.is_bind() && std::fs::metadata(&m.source).is_ok_and(|s| !s.is_dir());
        let target = if is_file {
            root.mkfile_all(dest)?
        } else {
            root.mkdir_all(dest, 0o755)?
        };
        if m.is_bind() {
            mount(
                Some(m.source.as_str()),
                fd_path(&target).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx(|| {
                format!(
                    "create criu restore mountpoint for {}: bind {}",
                    m.dest, m.source
                )
            })?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_criu(
    st: &Store,
    id: &str,
    spec: &Spec,
    rootfs: &Path,
    cg: &dyn Manager,
    o: &RestoreOpts,
    images: &OwnedFd,
    notify: &mut RestoreNotify,
) -> Result<()> {
    let work = match &o.criu.work_path {
        Some(p) => Some(ck::open_dir(p, "work path")?),
        None => None,
    };
    let log_dir = o
        .criu
        .work_path
        .clone()
        .unwrap_or_else(|| o.criu.image_path.clone());
    let croot = CriuRoot::new(&st.dir(id), rootfs)?;
    let root = Root::open(&croot.0)?;
    let mounts = ck::spec_mounts(spec, &root);
    prepare_mounts(&root, &mounts)?;
    let mut opts = base_opts(&o.criu, &croot.0, images, spec);
    if let Some(w) = &work {
        opts.set_work_dir_fd(w.as_raw_fd());
    }
    let ns_files = namespaces(spec, &mut opts)?;
    let devices = ck::device_paths(spec);
    let cg_mounts = cg.mounts();
    let layout = ck::layout(spec, &mounts, &cg_mounts, &devices);
    let any_masked = !ck::masked_paths(spec).is_empty();
    opts.ext_mnt = ck::to_ext(externals::for_restore(&layout, any_masked));
    opts.inherit_fd.extend(pipe_fds(&o.criu.image_path)?);
    let mut inherit: Vec<i32> = vec![images.as_raw_fd()];
    inherit.extend(work.as_ref().map(|w| w.as_raw_fd()));
    for (key, f) in &ns_files {
        let mut i = Inherit_fd::new();
        i.set_key(key.clone());
        i.set_fd(f.as_raw_fd());
        opts.inherit_fd.push(i);
        inherit.push(f.as_raw_fd());
    }
    let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let mut join_cgroup = |pid: i32, req: &mut Criu_req| -> Result<()> {
        cg.apply(pid)?;
        if let Some(r) = &resources {
            cg.set(r)?;
        }
        let roots = cgroup_roots(pid)?;
        if let Some(opts) = req.opts.as_mut() {
            opts.cg_root = roots;
        }
        Ok(())
    };
    let mut req = Criu_req::new();
    req.set_type(Criu_req_type::RESTORE);
    req.opts = MessageField::some(opts);
    let sw = swrk::Swrk {
        inherit,
        stdio: true,
        before_send: Some(&mut join_cgroup),
    };
    let res = swrk::call(req, sw, notify);
    drop(croot);
    res.map(drop)
        .map_err(|e| ck::explain(e, &log_dir, RESTORE_LOG))
}

/// The request options every restore shares with runc's.
fn base_opts(o: &criu::Opts, root: &Path, images: &OwnedFd, spec: &Spec) -> Criu_opts {
    let mut r = Criu_opts::new();
    r.set_images_dir_fd(images.as_raw_fd());
    r.set_evasive_devices(true);
    r.set_log_level(4);
    r.set_log_file(RESTORE_LOG.into());
    r.set_rst_sibling(true);
    r.set_root(root.display().to_string());
    r.set_manage_cgroups(true);
    r.set_manage_cgroups_mode(o.manage_cgroups_mode);
    r.set_notify_scripts(true);
    r.set_shell_job(o.shell_job);
    r.set_ext_unix_sk(o.ext_unix_sk);
    r.set_tcp_established(o.tcp_established);
    r.set_file_locks(o.file_locks);
    r.set_empty_ns(o.empty_ns);
    r.set_orphan_pts_master(true);
    r.set_auto_dedup(o.auto_dedup);
    r.set_lazy_pages(o.lazy_pages);
    let annotations = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Some(f) = criu::config_file(&annotations) {
        r.set_config_file(f);
    }
    if let Some(p) = &o.lsm_profile {
        r.set_lsm_profile(p.clone());
    }
    if let Some(p) = &o.lsm_mount_context {
        r.set_lsm_mount_context(p.clone());
    }
    r
}

/// Namespaces given by path: net and pid are external (CRIU gets an open
/// file under runc's key), the others are joined by CRIU; a cgroup namespace
/// by path CRIU cannot handle.
fn namespaces(spec: &Spec, opts: &mut Criu_opts) -> Result<Vec<(String, OwnedFd)>> {
    let mut files = Vec::new();
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in nss {
        let Some(path) = ns.path().clone().filter(|p| !p.as_os_str().is_empty()) else {
            continue;
        };
        let name = crate::namespaces::proc_name(ns.typ());
        match ns.typ() {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                let f = nix::fcntl::open(
                    &path,
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ctx(|| {
                    format!(
                        "Requested {name} namespace {} does not exist",
                        path.display()
                    )
                })?;
                files.push((criu::ns_key(name), f));
            }
            LinuxNamespaceType::Cgroup => {
                bail!(
                    "restore: a cgroup namespace joined by path ({}) cannot be restored by CRIU",
                    path.display()
                )
            }
            _ => {
                let mut j = Join_namespace::new();
                j.set_ns(name.to_string());
                j.set_ns_file(path.display().to_string());
                opts.join_ns.push(j);
            }
        }
    }
    Ok(files)
}

/// The checkpointed init's stdio that were pipes: CRIU gives the restored
/// process ours instead (its fds 0-2 are ours, see Swrk::stdio).
fn pipe_fds(images: &Path) -> Result<Vec<Inherit_fd>> {
    let path = images.join(DESCRIPTORS);
    let text = std::fs::read(&path).ctx(|| format!("read {}", path.display()))?;
    let fds: Vec<String> =
        serde_json::from_slice(&text).ctx(|| format!("parse {}", path.display()))?;
    Ok(fds
        .iter()
        .enumerate()
        .filter(|(_, s)| s.contains("pipe:"))
        .map(|(i, s)| {
            let mut f = Inherit_fd::new();
            f.set_key(s.clone());
            f.set_fd(i as i32);
            f
        })
        .collect())
}

/// CRIU's cgroup roots: where CRIU itself was put, per hierarchy (v2: no controller).
fn cgroup_roots(pid: i32) -> Result<Vec<Cgroup_root>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).ctx(|| format!("read {path}"))?;
    Ok(parse_cgroup_roots(&text))
}

fn parse_cgroup_roots(text: &str) -> Vec<Cgroup_root> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrl, p) = (it.next()?, it.next()?, it.next()?);
            let mut r = Cgroup_root::new();
            if !ctrl.is_empty() {
                r.set_ctrl(ctrl.to_string());
            }
            r.set_path(p.to_string());
            Some(r)
        })
        .collect()
}

/// What we do on CRIU's restore notifications.
struct RestoreNotify<'a> {
    store: &'a Store,
    state: State,
    spec: &'a Spec,
    console: Option<PathBuf>,
}

impl swrk::Notify for RestoreNotify<'_> {
    fn notify(&mut self, n: &Criu_notify, fd: Option<OwnedFd>) -> Result<()> {
        log::debug!("criu notify: {} (pid {})", n.script(), n.pid());
        match n.script() {
            "setup-namespaces" => {
                self.hooks(n.pid())?;
                self.loopback(n.pid())
            }
            "post-restore" => {
                self.state.pid = n.pid();
                self.state.init_start_time = proc_start_time(n.pid()).map(|x| x.0).unwrap_or(0);
                self.state.created = crate::logging::rfc3339_now();
                self.store
                    .write_json(&self.state.id, store::STATE_FILE, &self.state)
            }
            "orphan-pts-master" => {
                let Some(fd) = fd else {
                    bail!("criu sent no pty master with orphan-pts-master");
                };
                match &self.console {
                    Some(p) => crate::process::tty::send_master_to(p, &fd),
                    None => bail!("the restored container has a terminal: use --console-socket"),
                }
            }
            _ => Ok(()),
        }
    }
}

impl RestoreNotify<'_> {
    /// CRIU makes the container's network namespace empty (runc's restore
    /// always asks for that: the runtime owns the network setup), so `lo` is
    /// down; bring it up as `create` does, before CRIU restores the sockets,
    /// or a connection over 127.0.0.1 would have nowhere to go.
    fn loopback(&self, pid: i32) -> Result<()> {
        let new_netns = ck::has_ns(self.spec, LinuxNamespaceType::Network)
            && ck::ns_path(self.spec, LinuxNamespaceType::Network).is_none();
        if !new_netns {
            return Ok(());
        }
        let open = |p: &str| {
            nix::fcntl::open(
                p,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ctx(|| format!("open {p}"))
        };
        let ours = open("/proc/self/ns/net")?;
        let theirs = open(&format!("/proc/{pid}/ns/net"))?;
        // We are single-threaded: entering and leaving moves only this task.
        nix::sched::setns(&theirs, nix::sched::CloneFlags::CLONE_NEWNET)
            .ctx(|| format!("enter the network namespace of restored pid {pid}"))?;
        let up = crate::sys::net::loopback_up();
        nix::sched::setns(&ours, nix::sched::CloneFlags::CLONE_NEWNET)
            .ctx(|| "return to our network namespace")?;
        up
    }

    /// prestart and createRuntime hooks, as on create, with the pid CRIU gave.
    fn hooks(&self, pid: i32) -> Result<()> {
        let h = self.spec.hooks().as_ref();
        let mut st = self.state.clone();
        st.pid = pid;
        let json = serde_json::to_string(&st.to_oci(Status::Creating)).ctx(|| "encode state")?;
        for k in [hooks::Kind::Prestart, hooks::Kind::CreateRuntime] {
            hooks::run_all(&hooks::of_kind(h, k), k, &json)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_roots_v1_and_v2() {
        let r = parse_cgroup_roots("0::/user.slice/c1\n");
        assert_eq!(r.len(), 1);
        assert!(!r[0].has_ctrl());
        assert_eq!(r[0].path(), "/user.slice/c1");
        let r = parse_cgroup_roots("4:memory:/c1\n1:name=systemd:/x\n");
        assert_eq!(r[0].ctrl(), "memory");
        assert_eq!(r[1].ctrl(), "name=systemd");
    }
}
