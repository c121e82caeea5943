//! `exec`: start a new process in an existing container. The process joins
//! every namespace of the container's init (through /proc/<pid>/ns/*, user
//! namespace first) and its cgroup, then gets its own credentials, capabilities,
//! seccomp filter, rlimits, env and cwd in the same init code path as `create`.

use super::state::Status;
use super::store;
use super::{proc_start_time, Container, Globals};
use crate::bail;
use crate::cgroups;
use crate::error::{Context, Result};
use crate::namespaces;
use crate::process::init::InitConfig;
use crate::process::launch::{self, Launch, Parent};
use oci_spec::runtime::{
    LinuxCapabilities, LinuxNamespace, LinuxNamespaceBuilder, Process, Spec, User,
};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Everything `exec` needs beyond the process itself.
#[derive(Debug, Default)]
pub struct ExecOpts {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// runc's `--cgroup`: a sub-cgroup of the container's to run in.
    pub cgroup: Vec<String>,
    /// The console socket is our own foreground proxy (`exec -t`).
    pub own_console: bool,
    /// runc 1.2's `--pidfd-socket`: where to send a pidfd of the process.
    pub pidfd_socket: Option<PathBuf>,
}

/// runc's exec flags that override the container's own process settings.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub tty: bool,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

/// The process runc's flag form builds: the container's own process (env, cwd,
/// user, capabilities, rlimits, LSM labels, no_new_privs) with the flags on top.
pub fn process_from_flags(base: &Process, o: &Overrides) -> Result<Process> {
    let mut p = base.clone();
    if o.args.is_empty() {
        bail!("exec: no command given (usage: exec [options] <container-id> <command> [args...])");
    }
    p.set_args(Some(o.args.clone()));
    if let Some(cwd) = o.cwd.as_deref().filter(|c| !c.is_empty()) {
        p.set_cwd(PathBuf::from(cwd));
    }
    if let Some(a) = o.apparmor.as_deref().filter(|a| !a.is_empty()) {
        p.set_apparmor_profile(Some(a.to_string()));
    }
    if let Some(l) = o.process_label.as_deref().filter(|l| !l.is_empty()) {
        p.set_selinux_label(Some(l.to_string()));
    }
    if !o.caps.is_empty() {
        let caps = p.capabilities().clone().unwrap_or_else(empty_caps);
        p.set_capabilities(Some(add_exec_caps(caps, &o.caps)));
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(o.env.iter().cloned());
    p.set_env(Some(env));
    p.set_terminal(Some(o.tty));
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    let mut user = p.user().clone();
    if let Some(u) = o.user.as_deref().filter(|u| !u.is_empty()) {
        let (uid, gid) = parse_user(u)?;
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
    }
    if !o.additional_gids.is_empty() {
        let mut g = user.additional_gids().clone().unwrap_or_default();
        g.extend(o.additional_gids.iter().copied());
        user.set_additional_gids(Some(g));
    }
    p.set_user(user);
    validate(&p)?;
    Ok(p)
}

/// `exec --cap`: bounding, effective and permitted get each capability; the
/// inheritable set never does, and ambient only what inheritable already holds
/// (CVE-2022-29162: an inheritable set filled by `--cap` let unprivileged
/// programs in the container regain the capabilities across execve).
/// A name that is no capability (runc looks names up exactly, so `kill` or
/// `cap_kill` too) is ignored with runc's warning.
fn add_exec_caps(mut caps: LinuxCapabilities, names: &[String]) -> LinuxCapabilities {
    let mut add = Vec::with_capacity(names.len());
    let mut unknown = std::collections::BTreeSet::new();
    for name in names {
        match crate::security::capabilities::exact(name) {
            Some(c) => add.push(c),
            None => {
                unknown.insert(name.clone());
            }
        }
    }
    if !unknown.is_empty() {
        let v: Vec<String> = unknown.into_iter().collect();
        log::warn!("{}", crate::security::capabilities::unknown_warning(&v));
    }
    let with = |set: Option<oci_spec::runtime::Capabilities>| {
        let mut set = set.unwrap_or_default();
        set.extend(add.iter().copied());
        Some(set)
    };
    caps.set_bounding(with(caps.bounding().clone()));
    caps.set_effective(with(caps.effective().clone()));
    caps.set_permitted(with(caps.permitted().clone()));
    let inheritable = caps.inheritable().clone().unwrap_or_default();
    let mut ambient = caps.ambient().clone().unwrap_or_default();
    ambient.extend(add.iter().filter(|c| inheritable.contains(c)).copied());
    caps.set_ambient(Some(ambient));
    caps
}

fn empty_caps() -> LinuxCapabilities {
    crate::security::capabilities::empty()
}

/// `uid[:gid]`, numbers only (as runc: names would need the container's passwd).
pub fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u
        .parse()
        .ctx(|| format!("--user {s:?}: uid {u:?} is not a number"))?;
    let gid = match g {
        Some(g) => Some(
            g.parse()
                .ctx(|| format!("--user {s:?}: gid {g:?} is not a number"))?,
        ),
        None => None,
    };
    Ok((uid, gid))
}

/// What runc checks of an exec process (the spec's rules for process).
pub fn validate(p: &Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("exec: args must not be empty");
    }
    if !p.cwd().is_absolute() {
        bail!("exec: cwd {:?} must be an absolute path", p.cwd().display());
    }
    crate::spec::validate_user(p.user())
}

/// Read a runtime-spec process JSON (`exec --process FILE`).
pub fn process_from_file(path: &Path) -> Result<Process> {
    let data = std::fs::read(path).ctx(|| format!("read process file {}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_slice(&data).ctx(|| format!("parse process file {}", path.display()))?;
    // runc takes a process without `user` as uid 0, gid 0 (Go's zero value);
    // the spec type insists on the field, so it is filled in here.
    if let Some(obj) = v.as_object_mut() {
        obj.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    crate::spec::process_fixups(&mut v).ctx(|| format!("process file {}", path.display()))?;
    let p: Process =
        serde_json::from_value(v).ctx(|| format!("parse process file {}", path.display()))?;
    validate(&p)?;
    Ok(p)
}

/// The config frozen at create.
pub fn container_spec(g: &Globals, id: &str) -> Result<Spec> {
    g.store().read_json(id, store::CONFIG_FILE)
}

/// The container's own process, from its frozen config.
pub fn container_process(spec: &Spec) -> Process {
    spec.process().clone().unwrap_or_else(|| {
        let mut p = Process::default();
        p.set_user(User::default());
        p
    })
}

struct ExecParent<'a> {
    spec: &'a Spec,
    state_json: String,
    intel_rdt: Option<std::path::PathBuf>,
}

impl Parent for ExecParent<'_> {
    /// The container's CLOS group, if it still exists (runc: its monitoring
    /// group counts the container's init only).
    fn place(&mut self, stage1: i32) -> Result<()> {
        match &self.intel_rdt {
            Some(p) if p.is_dir() => std::fs::write(p.join("tasks"), stage1.to_string())
                .ctx(|| format!("error adding pid {stage1} to Intel RDT {}", p.display())),
            _ => Ok(()),
        }
    }

    fn on_pid(&mut self, _pid: i32) -> Result<()> {
        Ok(())
    }

    fn run_hooks(&mut self, _pid: i32) -> Result<()> {
        bail!("exec: init asked for hooks")
    }

    fn seccomp_fd(&mut self, _pid: i32, fd: OwnedFd) -> Result<()> {
        crate::security::seccomp::send_to_listener(self.spec, &self.state_json, fd)
    }
}

/// Whether /proc/<pid>/ns/<name> is a namespace other than ours (joining our
/// own user namespace would fail with EINVAL, and the rest is wasted work).
fn differs_from_ours(theirs: &Path, name: &str) -> bool {
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
    match (std::fs::metadata(theirs), ours) {
        (Ok(t), Ok(o)) => t.ino() != o.ino() || t.dev() != o.dev(),
        _ => true,
    }
}

/// The container's namespaces, each as a path to join through its init.
fn join_paths(spec: &Spec, pid: i32) -> Result<Vec<LinuxNamespace>> {
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for ns in nss {
        let name = namespaces::proc_name(ns.typ());
        let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        if !differs_from_ours(&path, name) {
            continue;
        }
        out.push(
            LinuxNamespaceBuilder::default()
                .typ(ns.typ())
                .path(path)
                .build()
                .ctx(|| "namespace")?,
        );
    }
    Ok(out)
}

/// Start `process` in container `id`; returns its host PID once it is about to
/// execve (a child of ours, so the caller can wait for it).
/// `spec` is the frozen config when the caller has read it already.
pub fn exec(
    g: &Globals,
    id: &str,
    process: Process,
    spec: Option<Spec>,
    o: &ExecOpts,
) -> Result<i32> {
    launch::check_preserve_fds(o.preserve_fds)?;
    if let Some(p) = &o.pid_file {
        store::check_pid_file(p)?;
    }
    let c = Container::load(g, id)?;
    match c.status {
        Status::Created | Status::Running => {}
        Status::Paused if o.ignore_paused => {}
        // runc's exact words (1.1.5 through 1.5).
        Status::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        Status::Stopped => bail!("cannot exec in a stopped container {id}"),
        Status::Creating => bail!("cannot exec in container {id}: it is still being created"),
    }
    let terminal = process.terminal().unwrap_or(false);
    if terminal && o.console_socket.is_none() {
        bail!("cannot allocate tty if skiff will detach without setting console socket");
    }
    if !terminal && o.console_socket.is_some() {
        bail!("cannot use console socket if skiff will not detach or allocate tty");
    }
    let mut spec: Spec = match spec {
        Some(s) => s,
        None => c.store.read_json(id, store::CONFIG_FILE)?,
    };
    let pid = c.state.pid;
    log::debug!("exec: joining the namespaces and cgroup of init process {pid}");
    let nss = join_paths(&spec, pid)?;
    // The paths name init by PID: make sure it is still the same process.
    match proc_start_time(pid) {
        Some((t, false)) if t == c.state.init_start_time => {}
        _ => bail!("cannot exec in container {id}: its init process {pid} has exited"),
    }
    if let Some(l) = spec.linux_mut() {
        l.set_namespaces(Some(nss));
        // Joining, not creating: no new maps or time offsets to write.
        l.set_uid_mappings(None);
        l.set_gid_mappings(None);
        l.set_time_offsets(None);
    }
    spec.set_process(Some(process));
    let base_cg = c.cgroup();
    let sub_cg = match (
        &base_cg,
        super::sub_cgroup::apply(&c.state.cgroup_path, &o.cgroup)?,
    ) {
        (Some(_), Some(p)) => Some(cgroups::load(&p, c.state.systemd_cgroup)?),
        _ => None,
    };
    let cg = sub_cg.or(base_cg);
    let console = match &o.console_socket {
        Some(p) => Some(crate::process::tty::connect_console_socket(p)?),
        None => None,
    };
    let pidfd_sock = match &o.pidfd_socket {
        Some(p) => Some(crate::process::pidfd::connect(p)?),
        None => None,
    };
    let state_json = c.oci_state_json()?;
    let cfg = InitConfig {
        spec: spec.clone(),
        id: id.to_string(),
        bundle: c.state.bundle.clone(),
        rootfs: c.state.rootfs.clone(),
        no_pivot: false,
        no_new_keyring: true,
        fifo_fd: None,
        console_fd: console.as_ref().map(|f| f.as_raw_fd()),
        preserve_fds: o.preserve_fds,
        clear_onlcr: o.own_console,
        cgroup_mounts: Vec::new(),
        cgroup_fd: None,
        cgroup_join_fds: Vec::new(),
        exec: true,
        state: serde_json::from_str(&state_json).ctx(|| "encode state")?,
        timing: crate::timing::enabled(),
    };
    crate::timing::lap("parse");
    let mut parent = ExecParent {
        spec: &spec,
        state_json,
        intel_rdt: c.state.intel_rdt.as_ref().map(|a| a.path.clone()),
    };
    let pass_fds = console.iter().map(|f| f.as_raw_fd()).collect();
    let pid = launch::launch(
        Launch {
            cfg,
            cgroup: cg.as_deref(),
            pass_fds,
        },
        &mut parent,
    )
    .map_err(super::start_failed)?;
    drop(console);
    log::debug!("exec: process {pid} started");
    if let Some(sock) = &pidfd_sock {
        crate::process::pidfd::send(sock, pid, crate::process::pidfd::EXEC_TAG)?;
    }
    if let Some(p) = &o.pid_file {
        store::write_pid_file(p, pid)?;
    }
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Process {
        serde_json::from_value(serde_json::json!({
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/bin", "A=1"],
            "cwd": "/",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                             "permitted": ["CAP_KILL"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": false
        }))
        .unwrap()
    }

    #[test]
    fn flags_override_the_container_process() {
        let o = Overrides {
            args: vec!["id".into(), "-u".into()],
            cwd: Some("/tmp".into()),
            env: vec!["B=2".into()],
            tty: true,
            user: Some("1000:100".into()),
            additional_gids: vec![5, 6],
            caps: vec!["CAP_NET_ADMIN".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = process_from_flags(&base(), &o).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["id", "-u"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin", "A=1", "B=2"]);
        assert_eq!(p.terminal(), Some(true));
        assert_eq!(p.user().uid(), 1000);
        assert_eq!(p.user().gid(), 100);
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[5, 6]);
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        let admin = oci_spec::runtime::Capability::NetAdmin;
        assert!(!caps.ambient().as_ref().unwrap().contains(&admin));
        assert!(!caps
            .inheritable()
            .clone()
            .unwrap_or_default()
            .contains(&admin));
        assert!(caps.bounding().as_ref().unwrap().contains(&admin));
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&oci_spec::runtime::Capability::Kill));
        assert_eq!(p.rlimits().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn exec_caps_reach_ambient_only_through_the_spec_inheritable_set() {
        use oci_spec::runtime::Capability::{AuditWrite, Kill, NetAdmin};
        let mut b = base();
        let mut c = b.capabilities().clone().unwrap();
        c.set_inheritable(Some([Kill].into_iter().collect()));
        b.set_capabilities(Some(c));
        let o = Overrides {
            args: vec!["true".into()],
            caps: vec![
                "CAP_KILL".into(),
                "CAP_AUDIT_WRITE".into(),
                "CAP_NET_ADMIN".into(),
            ],
            ..Default::default()
        };
        let p = process_from_flags(&b, &o).unwrap();
        let caps = p.capabilities().clone().unwrap();
        let set = |s: &Option<oci_spec::runtime::Capabilities>| {
            let mut v: Vec<_> = s.clone().unwrap_or_default().into_iter().collect();
            v.sort_by_key(|c| c.to_string());
            v
        };
        assert_eq!(set(caps.inheritable()), [Kill]);
        assert_eq!(set(caps.ambient()), [Kill]);
        for s in [caps.bounding(), caps.effective(), caps.permitted()] {
            let s = set(s);
            assert!([Kill, AuditWrite, NetAdmin].iter().all(|c| s.contains(c)));
        }
    }

    #[test]
    fn exec_caps_not_spelled_exactly_are_ignored() {
        let o = Overrides {
            args: vec!["true".into()],
            caps: vec![
                "CAP_NOPE".into(),
                "net_admin".into(),
                "CAP_SYS_ADMIN".into(),
            ],
            ..Default::default()
        };
        let p = process_from_flags(&base(), &o).unwrap();
        let b = p
            .capabilities()
            .clone()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        use oci_spec::runtime::Capability::{Kill, NetAdmin, SysAdmin};
        assert!(b.contains(&SysAdmin) && b.contains(&Kill) && !b.contains(&NetAdmin));
    }

    #[test]
    fn uid_alone_keeps_the_container_gid() {
        let mut b = base();
        b.user_mut().set_gid(42);
        let o = Overrides {
            args: vec!["true".into()],
            user: Some("7".into()),
            ..Default::default()
        };
        let p = process_from_flags(&b, &o).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (7, 42));
        assert_eq!(p.terminal(), Some(false));
    }

    #[test]
    fn bad_flags_are_errors() {
        let o = |f: fn(&mut Overrides)| {
            let mut o = Overrides {
                args: vec!["true".into()],
                ..Default::default()
            };
            f(&mut o);
            process_from_flags(&base(), &o)
        };
        assert!(o(|o| o.user = Some("bob".into())).is_err());
        assert!(o(|o| o.user = Some("1:x".into())).is_err());
        assert!(o(|o| o.cwd = Some("rel".into())).is_err());
        assert!(o(|o| o.args.clear()).is_err());
    }

    #[test]
    fn process_json_is_validated() {
        let d = std::env::temp_dir().join(format!("skiff-exec-test-{}", std::process::id()));
        std::fs::write(&d, r#"{"user":{"uid":0,"gid":0},"args":[],"cwd":"/"}"#).unwrap();
        assert!(process_from_file(&d).is_err());
        std::fs::write(&d, r#"{"user":{"uid":0,"gid":0},"args":["ls"],"cwd":"/"}"#).unwrap();
        assert_eq!(
            process_from_file(&d).unwrap().args().as_ref().unwrap(),
            &["ls"]
        );
        std::fs::remove_file(&d).unwrap();
    }
}
