//! A private containerd with the CRI plugin in a network namespace of its own,
//! and a CRI client for it.

use crate::engines::{ensure_packages, eventually, processes_mentioning, scripts, Engine};
use crate::support::{skiff_bin, skip_unless_root};
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use serde_json::Value;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

pub const PAUSE: &str = "skiff.test/pause:1";
pub const BUSYBOX: &str = "skiff.test/busybox:1";
/// The sandbox's PID 1: waits until a signal ends it, as Kubernetes' pause does.
const PAUSE_CMD: &str =
    r#"["sh","-c","trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]"#;
/// One CRI call that takes longer than this fails the test.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// systemd's cgroup driver where systemd is PID 1 (the VM lane), else cgroupfs.
pub fn systemd() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// A network namespace bound at a file, for containerd and its CNI plugins.
pub struct Netns {
    pub file: PathBuf,
}

impl Netns {
    fn new(file: PathBuf) -> Netns {
        fs::write(&file, "").expect("create netns file");
        let ns = Netns { file };
        let f = ns.file.display().to_string();
        let ok = |mut c: Command, what: &str| {
            let st = c.status().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(st.success(), "{what}: {st}");
        };
        let mut c = Command::new("unshare");
        c.arg(format!("--net={f}")).arg("true");
        ok(c, "unshare --net");
        let mut c = ns.cmd("ip");
        c.args(["link", "set", "lo", "up"]);
        ok(c, "ip link set lo up in the test netns");
        ns
    }

    /// `prog` run in this network namespace.
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.file.display()))
            .arg("--")
            .arg(prog);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.file).status();
    }
}

/// A CRI client on containerd's socket.
pub struct Cri {
    rt: tokio::runtime::Runtime,
    chan: Channel,
}

impl Cri {
    fn connect(sock: PathBuf) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let connector = tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                let s = tokio::net::UnixStream::connect(sock).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        });
        let chan = rt
            .block_on(
                Endpoint::try_from("http://[::]:50051")
                    .expect("endpoint")
                    .connect_with_connector(connector),
            )
            .expect("connect to containerd's CRI socket");
        Cri { rt, chan }
    }

    pub fn rs(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.chan.clone())
    }

    /// Waits for one call's answer (an error status after CALL_TIMEOUT).
    pub fn call<T>(
        &self,
        f: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        self.rt
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT, f).await })
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 120 s")))
            .map(tonic::Response::into_inner)
    }

    pub fn ok<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> T {
        self.call(f).unwrap_or_else(|s| panic!("{what}: {s:?}"))
    }

    pub fn run_pod(&self, config: &cri::PodSandboxConfig, handler: &str) -> String {
        let req = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        self.ok("RunPodSandbox", self.rs().run_pod_sandbox(req))
            .pod_sandbox_id
    }

    /// CreateContainer then StartContainer, as kubelet does; the container's ID.
    pub fn create_start(
        &self,
        pod: &str,
        sandbox: &cri::PodSandboxConfig,
        config: cri::ContainerConfig,
    ) -> String {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(sandbox.clone()),
        };
        let id = self
            .ok("CreateContainer", self.rs().create_container(req))
            .container_id;
        let req = cri::StartContainerRequest {
            container_id: id.clone(),
        };
        self.ok("StartContainer", self.rs().start_container(req));
        id
    }

    /// ContainerStatus (verbose) and its `info` JSON (pid, runtimeSpec, ...).
    pub fn status(&self, id: &str) -> (cri::ContainerStatus, Value) {
        let req = cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        let r = self.ok("ContainerStatus", self.rs().container_status(req));
        let info = info_json(&r.info);
        (r.status.expect("ContainerStatus without status"), info)
    }

    /// PodSandboxStatus (verbose) and its `info` JSON.
    pub fn pod_status(&self, id: &str) -> (cri::PodSandboxStatus, Value) {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        let r = self.ok("PodSandboxStatus", self.rs().pod_sandbox_status(req));
        let info = info_json(&r.info);
        (r.status.expect("PodSandboxStatus without status"), info)
    }

    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout: i64,
    ) -> Result<cri::ExecSyncResponse, tonic::Status> {
        let req = cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout,
        };
        self.call(self.rs().exec_sync(req))
    }

    /// Waits until container `id` has exited; its status.
    pub fn wait_exited(&self, id: &str) -> cri::ContainerStatus {
        let mut last = None;
        eventually(&format!("container {id} to exit"), || {
            let (s, _) = self.status(id);
            let done = s.state == cri::ContainerState::ContainerExited as i32;
            last = Some(s);
            done
        });
        last.expect("a status")
    }

    /// Stops and removes every pod (what a test that failed half-way left).
    fn remove_all_pods(&self) {
        let req = cri::ListPodSandboxRequest { filter: None };
        let Ok(list) = self.call(self.rs().list_pod_sandbox(req)) else {
            return;
        };
        for pod in list.items {
            let id = pod.id;
            let stop = cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            };
            let _ = self.call(self.rs().stop_pod_sandbox(stop));
            let rm = cri::RemovePodSandboxRequest { pod_sandbox_id: id };
            let _ = self.call(self.rs().remove_pod_sandbox(rm));
        }
    }
}

/// The `info` entry of a verbose status, parsed.
fn info_json(info: &std::collections::HashMap<String, String>) -> Value {
    let raw = info.get("info").expect("verbose status without info");
    serde_json::from_str(raw).unwrap_or_else(|e| panic!("info is not JSON ({e}): {raw}"))
}

/// containerd with the CRI plugin, in its own network namespace; the CRI
/// client. Drop removes what a failed test left, then (fields in order) the
/// client goes, the namespace is unmounted, containerd stops and the engine
/// directory is checked and removed.
pub struct Harness {
    pub cri: Cri,
    pub netns: Netns,
    pub e: Engine,
    pub systemd: bool,
    /// A prefix unique to this test for pod cgroup parents and the bridge.
    pub tag: String,
}

impl Harness {
    /// None (after saying why) when containerd cannot be installed.
    pub fn start(name: &str) -> Option<Harness> {
        if skip_unless_root()
            || !ensure_packages(&["containerd", "containernetworking-plugins", "iproute2"])
        {
            return None;
        }
        let mut e = Engine::new(name);
        e.stop = vec![
            scripts().join("containerd.sh").display().to_string(),
            "stop".into(),
            e.p(""),
        ];
        let netns = Netns::new(e.path("netns"));
        let tag = format!("sk{}{}", name.len(), std::process::id());
        let systemd = systemd();
        write_cni_config(&e, &tag);
        write_containerd_config(&e, systemd);
        let mut start = Command::new(scripts().join("containerd.sh"));
        start
            .arg("start")
            .arg(e.path(""))
            .env("CONTAINERD_NETNS", &netns.file);
        e.run(start).ok();
        for (dir, image, cmd) in [
            ("img-pause", PAUSE, PAUSE_CMD),
            ("img-busybox", BUSYBOX, r#"["sh"]"#),
        ] {
            let mut make = Command::new(scripts().join("busybox-image.sh"));
            make.arg(e.path(dir)).arg(image).arg(cmd);
            e.run(make).ok();
            let mut import = Command::new("ctr");
            import
                .arg("--address")
                .arg(e.path("containerd.sock"))
                .args(["-n", "k8s.io", "images", "import"])
                .arg(e.path(dir).join("oci.tar"));
            e.run(import).ok();
        }
        let cri = Cri::connect(e.path("containerd.sock"));
        Some(Harness {
            cri,
            netns,
            e,
            systemd,
            tag,
        })
    }

    /// skiff's --root for the k8s.io namespace (BinaryName's Root option).
    pub fn skiff_root(&self) -> PathBuf {
        self.e.path("skiff-root/k8s.io")
    }

    /// The bundle directory the shim made for container or sandbox `id`.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.e
            .path("state/io.containerd.runtime.v2.task/k8s.io")
            .join(id)
    }

    /// The cgroup parent kubelet would give pod `name`, in the driver's syntax.
    pub fn cgroup_parent(&self, name: &str) -> String {
        if self.systemd {
            format!("{}-{name}.slice", self.tag)
        } else {
            format!("/{}/{name}", self.tag)
        }
    }

    /// The containerd-shim serving pod `sandbox` (one per pod).
    pub fn shim_pid(&self, sandbox: &str) -> i32 {
        let shims: Vec<_> = processes_mentioning(sandbox)
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim") && cmd.contains(&self.e.p("")))
            .collect();
        assert_eq!(shims.len(), 1, "shims of pod {sandbox}: {shims:?}");
        shims[0].0
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = fs::read_to_string(self.e.path("containerd.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("containerd.log, last lines:");
            tail.iter().rev().for_each(|l| eprintln!("  {l}"));
        }
        self.cri.remove_all_pods();
        // The pods' parent cgroups are kubelet's (here the test's): remove them.
        if self.systemd {
            let _ = Command::new("systemctl")
                .args(["stop", &format!("{}.slice", self.tag)])
                .status();
        } else {
            for hier in fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let top = hier.path().join(&self.tag);
                for pod in fs::read_dir(&top).into_iter().flatten().flatten() {
                    let _ = fs::remove_dir(pod.path());
                }
                let _ = fs::remove_dir(top);
            }
        }
    }
}

fn write_cni_config(e: &Engine, tag: &str) {
    fs::create_dir_all(e.path("cni")).expect("mkdir cni");
    // A /24 of 10.0.0.0/8 in the test's own namespace; nothing routes to it
    // from the host.
    let net = std::process::id() % 200 + 20;
    let conf = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "skiff-cri",
        "plugins": [{
            "type": "bridge",
            "bridge": tag,
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": format!("10.{net}.{}.0/24", tag.len())}]],
                "dataDir": e.p("cni-ipam"),
            },
        }],
    });
    fs::write(e.path("cni/10-skiff.conflist"), conf.to_string()).expect("write CNI config");
}

/// The config the README shows (handler `skiff` beside the default runc),
/// plus what keeps this containerd private: its own root, state, sockets,
/// skiff's state under the engine dir, the pods' network namespaces under
/// its state, and no OOM score below its own (no CAP_SYS_RESOURCE here).
fn write_containerd_config(e: &Engine, systemd: bool) {
    let d = e.p("");
    let d = d.trim_end_matches('/');
    let skiff = skiff_bin().display().to_string();
    let cri = r#"plugins."io.containerd.grpc.v1.cri""#;
    let rts = format!("{cri}.containerd.runtimes");
    let toml = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
[metrics]
  address = ""
[{cri}]
  sandbox_image = "{PAUSE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{d}/cni"
  max_conf_num = 1
[{cri}.containerd]
  default_runtime_name = "runc"
[{rts}.runc]
  runtime_type = "io.containerd.runc.v2"
[{rts}.runc.options]
  SystemdCgroup = {systemd}
[{rts}.skiff]
  runtime_type = "io.containerd.runc.v2"
[{rts}.skiff.options]
  BinaryName = "{skiff}"
  Root = "{d}/skiff-root"
  SystemdCgroup = {systemd}
"#
    );
    fs::write(e.path("config.toml"), toml).expect("write containerd config");
}

/// The network mode every pod and container here uses, as kubelet's default:
/// network and IPC shared by the pod, a PID namespace per container.
pub fn namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Pod as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

pub fn pod_config(h: &Harness, name: &str) -> cri::PodSandboxConfig {
    let logs = h.e.path("logs").join(name);
    fs::create_dir_all(&logs).expect("mkdir pod log dir");
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("{name}-uid-{}", std::process::id()),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: logs.display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: h.cgroup_parent(name),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A busybox container running `cmd`, logging to `<name>.log`, with a
/// memory limit and CPU shares as a pod spec's resources give them.
pub fn container(name: &str, cmd: &[&str], memory: i64) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: memory,
                cpu_shares: 256,
                ..Default::default()
            }),
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// The pid in a verbose status's info.
pub fn info_pid(info: &Value) -> i32 {
    info["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in info: {info}")) as i32
}

/// The host directory of `pid`'s cgroup for `controller` (v1), or its v2 cgroup.
pub fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/cgroup: {e}"));
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrls.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup")
                .join(ctrls)
                .join(path.trim_start_matches('/'));
        }
    }
    let v2 = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no {controller} cgroup in /proc/{pid}/cgroup: {text}"));
    Path::new("/sys/fs/cgroup").join(v2.trim_start_matches('/'))
}

/// One file of a cgroup, trimmed.
pub fn cgroup_file(dir: &Path, file: &str) -> String {
    let p = dir.join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// True on a unified (v2-only) cgroup host.
pub fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The namespace `kind` of `pid` as /proc shows it (`net:[4026...]`).
pub fn ns_of(pid: i32, kind: &str) -> String {
    let p = format!("/proc/{pid}/ns/{kind}");
    fs::read_link(&p)
        .unwrap_or_else(|e| panic!("readlink {p}: {e}"))
        .display()
        .to_string()
}
