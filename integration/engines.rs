//! Real container engines driving skiff, the way their users do: containerd
//! (`ctr`, skiff as the runc binary of io.containerd.runc.v2), Docker
//! (`dockerd --add-runtime skiff=...`) and podman (`--runtime skiff`).
//!
//! Each test installs its engine from Debian's packages when missing (and is
//! skipped, saying so, only when that is impossible), starts it with private
//! state directories and sockets under /tmp/skiff-eng-*, imports a busybox
//! image made locally (no network), and at the end checks that nothing of its
//! containers is left: skiff state dirs, cgroups, mounts, processes.

use crate::support::{assert_no_leaks, skiff_bin, skip_unless_root, text};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// One engine command that takes longer than this fails the test.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The busybox image as every engine knows it.
const IMAGE: &str = "docker.io/library/skiff-busybox:latest";
/// podman's default rlimits exceed this host's hard limits (no CAP_SYS_RESOURCE).
const PODMAN_ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// apt must not run twice at once (engine tests may run in parallel).
static INSTALL: Mutex<()> = Mutex::new(());

pub(crate) fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/engines")
}

/// Installs `pkgs` when missing. False, after saying why, when they cannot be
/// installed (then the test is skipped); any other failure fails the test.
pub(crate) fn ensure_packages(pkgs: &[&str]) -> bool {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let status = Command::new(scripts().join("ensure-packages.sh"))
        .args(pkgs)
        .stdin(Stdio::null())
        .status()
        .expect("run ensure-packages.sh");
    match status.code() {
        Some(0) => true,
        Some(2) => {
            let test = thread::current().name().unwrap_or("test").to_string();
            eprintln!("skipping {test}: cannot install {}", pkgs.join(" "));
            false
        }
        _ => panic!("ensure-packages.sh {}: {status}", pkgs.join(" ")),
    }
}

/// What an engine command did.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    what: String,
}

impl Out {
    pub(crate) fn ok(&self) -> &Out {
        self.code(0)
    }

    pub(crate) fn code(&self, want: i32) -> &Out {
        assert_eq!(
            self.code,
            Some(want),
            "{}\nstdout: {}\nstderr: {}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    fn fails(&self) -> &Out {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "{} should have failed\nstdout: {}\nstderr: {}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    pub(crate) fn has(&self, needle: &str) -> &Out {
        assert!(
            self.stdout.contains(needle),
            "{}: stdout lacks {needle:?}\nstdout: {}\nstderr: {}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    pub(crate) fn err_has(&self, needle: &str) -> &Out {
        assert!(
            self.stderr.contains(needle),
            "{}: stderr lacks {needle:?}\nstdout: {}\nstderr: {}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    fn line(&self) -> String {
        self.stdout.trim().to_string()
    }
}

/// A private directory for one engine, and the engine running in it. Drop
/// stops the engine, checks that nothing is left and removes the directory.
pub(crate) struct Engine {
    dir: PathBuf,
    io: std::cell::Cell<usize>,
    pub(crate) stop: Vec<String>,
    /// Processes that must be gone once the engine stopped (daemon, shims).
    marker: String,
}

impl Engine {
    pub(crate) fn new(name: &str) -> Engine {
        let dir = PathBuf::from(format!("/tmp/skiff-eng-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("io")).expect("mkdir engine dir");
        Engine {
            marker: dir.display().to_string(),
            dir,
            io: std::cell::Cell::new(0),
            stop: Vec::new(),
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub(crate) fn p(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// Runs `cmd` (stdin from `input`, or /dev/null) with output in files,
    /// so a container holding our stdout cannot hang the test.
    fn run_with(&self, mut cmd: Command, input: Option<&str>) -> Out {
        let n = self.io.get();
        self.io.set(n + 1);
        let out_p = self.dir.join(format!("io/{n}.out"));
        let err_p = self.dir.join(format!("io/{n}.err"));
        let stdin = match input {
            Some(data) => {
                let in_p = self.dir.join(format!("io/{n}.in"));
                fs::write(&in_p, data).expect("write stdin file");
                Stdio::from(File::open(&in_p).expect("open stdin file"))
            }
            None => Stdio::null(),
        };
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(stdin)
            .stdout(File::create(&out_p).expect("create stdout file"))
            .stderr(File::create(&err_p).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(10));
        };
        let out = Out {
            code: status.and_then(|s| s.code()),
            stdout: text(&fs::read(&out_p).unwrap_or_default()),
            stderr: text(&fs::read(&err_p).unwrap_or_default()),
            what,
        };
        assert!(status.is_some(), "{} timed out: {}", out.what, out.stderr);
        out
    }

    pub(crate) fn run(&self, cmd: Command) -> Out {
        self.run_with(cmd, None)
    }

    /// Runs a shell command line under `script`, so the engine's client has a
    /// terminal (ctr -t, docker -t, podman -t need one).
    fn in_terminal(&self, line: &str, input: Option<&str>) -> Out {
        let mut cmd = Command::new("script");
        cmd.args(["-qec", line, "/dev/null"]);
        self.run_with(cmd, input)
    }

    /// Makes the busybox image files (rootfs.tar, oci.tar) in the engine dir.
    fn make_image(&self) {
        let mut cmd = Command::new(scripts().join("busybox-image.sh"));
        cmd.arg(self.path("image")).arg(IMAGE);
        self.run(cmd).ok();
    }
}

/// Mount points (field 5 of mountinfo) at or under `dir`.
pub(crate) fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == d || m.starts_with(&format!("{d}/")))
        .map(String::from)
        .collect()
}

/// PIDs whose command line mentions `marker`.
pub(crate) fn processes_mentioning(marker: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let me = std::process::id() as i32;
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = text(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push((pid, cmdline));
        }
    }
    found
}

impl Drop for Engine {
    fn drop(&mut self) {
        if !self.stop.is_empty() {
            let mut cmd = Command::new(&self.stop[0]);
            cmd.args(&self.stop[1..]);
            let _ = cmd.stdin(Stdio::null()).status();
        }
        // The engine and its shims take a moment to go.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !processes_mentioning(&self.marker).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        let procs = processes_mentioning(&self.marker);
        let mounts = mounts_under(&self.dir);
        for (pid, _) in &procs {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        for m in mounts.iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        if mounts_under(&self.dir).is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
        if !thread::panicking() {
            assert!(procs.is_empty(), "processes left behind: {procs:?}");
            assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
        }
    }
}

/// No container directory left in a skiff --root.
pub(crate) fn assert_root_empty(root: &Path) {
    let left: Vec<String> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.is_empty(),
        "skiff state left in {}: {left:?}",
        root.display()
    );
}

/// Polls `f` until it returns true (engines update their state asynchronously).
pub(crate) fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// containerd

#[test]
fn containerd_runs_execs_and_deletes_with_skiff() {
    if skip_unless_root() || !ensure_packages(&["containerd"]) {
        return;
    }
    let mut e = Engine::new("ctd");
    e.stop = vec![
        scripts().join("containerd.sh").display().to_string(),
        "stop".into(),
        e.p(""),
    ];
    let mut start = Command::new(scripts().join("containerd.sh"));
    start.arg("start").arg(e.path(""));
    e.run(start).ok();
    e.make_image();
    let ns = format!("skiff{}", std::process::id());
    let ctr = |args: &[&str]| {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(e.path("containerd.sock"))
            .arg("-n")
            .arg(&ns)
            .args(args);
        c
    };
    e.run(ctr(&["images", "import", &e.p("image/oci.tar")]))
        .ok();
    let skiff = skiff_bin().display().to_string();
    let fifo = e.p("fifo");
    let root = e.p("runc");
    let rt = [
        "--fifo-dir",
        fifo.as_str(),
        "--runc-binary",
        skiff.as_str(),
        "--runc-root",
        root.as_str(),
    ];
    let run = |extra: &[&str], id: &str, cmd: &[&str]| {
        let mut a = vec!["run"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&rt);
        a.push(IMAGE);
        a.push(id);
        a.extend_from_slice(cmd);
        ctr(&a)
    };

    // run: output, exit status, container removed.
    let out = e.run(run(&["--rm"], "c-run", &["sh", "-c", "echo hello; exit 7"]));
    out.code(7).has("hello");

    // run -t: the process has a pty as its terminal.
    let ctr_line = format!("ctr --address {} -n {ns} {}", e.p("containerd.sock"), "{}");
    let rt_line = rt.join(" ");
    e.in_terminal(
        &ctr_line.replace(
            "{}",
            &format!("run --rm -t {rt_line} {IMAGE} c-tty sh -c 'tty; exit 6'"),
        ),
        None,
    )
    .code(6)
    .has("/dev/pts/0");

    // A long-running task for exec and kill.
    e.run(run(
        &["-d"],
        "c-long",
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.1; done",
        ],
    ))
    .ok();
    let exec = |extra: &[&str], id: &str, cmd: &[&str]| {
        let mut a = vec!["task", "exec", "--fifo-dir", fifo.as_str()];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--exec-id", id, "c-long"]);
        a.extend_from_slice(cmd);
        ctr(&a)
    };
    e.run(exec(
        &[],
        "e1",
        &["sh", "-c", "echo in-exec; cat /proc/1/cmdline; exit 3"],
    ))
    .code(3)
    .has("in-exec")
    .has("trap");
    e.in_terminal(
        &ctr_line.replace(
            "{}",
            &format!("task exec --fifo-dir {fifo} -t --exec-id e2 c-long sh -c 'tty; exit 4'"),
        ),
        None,
    )
    .code(4)
    .has("/dev/pts/");
    // A command that does not exist: containerd shows skiff's own message,
    // and the container lives on.
    e.run(exec(&[], "e3", &["no-such-command"]))
        .fails()
        .err_has("executable file not found");
    e.run(ctr(&["task", "ls"])).ok().has("RUNNING");

    // kill: SIGTERM reaches the process (its trap sets the exit status).
    e.run(ctr(&["task", "kill", "-s", "SIGTERM", "c-long"]))
        .ok();
    eventually("c-long to stop", || {
        e.run(ctr(&["task", "ls"])).stdout.contains("STOPPED")
    });
    let del = e.run(ctr(&["task", "delete", "c-long"]));
    del.ok();
    e.run(ctr(&["container", "delete", "c-long"])).ok();

    // kill -9 of a running task, then delete.
    e.run(run(&["-d"], "c-kill", &["sleep", "1000"])).ok();
    e.run(ctr(&["task", "kill", "-s", "SIGKILL", "c-kill"]))
        .ok();
    eventually("c-kill to stop", || {
        e.run(ctr(&["task", "ls"])).stdout.contains("STOPPED")
    });
    e.run(ctr(&["task", "delete", "c-kill"])).ok();
    e.run(ctr(&["container", "delete", "c-kill"])).ok();

    let ns_root = e.path("runc").join(&ns);
    for id in ["c-run", "c-tty", "c-long", "c-kill"] {
        let bundle = e
            .path("state/io.containerd.runtime.v2.task")
            .join(&ns)
            .join(id);
        assert_no_leaks(id, &ns_root, &bundle);
    }
    assert_root_empty(&ns_root);
    e.run(ctr(&["images", "rm", IMAGE])).ok();
    remove_parent_cgroups(&ns);
}

/// containerd puts containers under a cgroup named after the namespace; it is
/// the engine's (not skiff's) and stays empty once they are gone: remove it.
fn remove_parent_cgroups(name: &str) {
    for e in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = fs::remove_dir(e.path().join(name));
    }
}

// ---------------------------------------------------------------------------
// Docker

/// systemd is PID 1 with unified cgroup v2 (the VM lane's guest): engines
/// default to the systemd cgroup driver there.
fn systemd_host() -> bool {
    Path::new("/run/systemd/system").is_dir() && unified_cgroups()
}

/// `systemctl show -p P` of a unit for each P, the values in that order
/// (one `show` with several -p prints them in systemd's own order).
fn unit_props(unit: &str, props: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("systemctl");
    cmd.arg("show");
    for p in props {
        cmd.arg("-p").arg(p);
    }
    let out = cmd.arg(unit).output().expect("run systemctl show");
    let out = text(&out.stdout);
    props
        .iter()
        .map(|p| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{p}=")))
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// True on a unified cgroup v2 host (the VM lane's guest), false on a hybrid one.
fn unified_cgroups() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A limit as a Docker container sees it in its /sys/fs/cgroup: a v1
/// hierarchy's file on a hybrid host; on a unified one its own cgroup's v2
/// file (Docker gives containers a private cgroup namespace there).
fn limit_file(controller: &str) -> &'static str {
    match (unified_cgroups(), controller) {
        (false, "memory") => "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        (false, "cpu") => "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        (false, _) => "/sys/fs/cgroup/pids/pids.max",
        (true, "memory") => "/sys/fs/cgroup/memory.max",
        (true, "cpu") => "/sys/fs/cgroup/cpu.max",
        (true, _) => "/sys/fs/cgroup/pids.max",
    }
}

struct Docker<'a> {
    e: &'a Engine,
}

impl Docker<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        // Debian's client, not whatever else is first in PATH.
        let mut c = Command::new("/usr/bin/docker");
        c.arg("-H")
            .arg(format!("unix://{}", self.e.p("docker.sock")))
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        self.e.run(self.cmd(args))
    }

    fn input(&self, args: &[&str], input: &str) -> Out {
        self.e.run_with(self.cmd(args), Some(input))
    }

    /// `docker run --rm <opts> IMAGE <cmd>` with Docker's default runtime,
    /// which dockerd.sh makes skiff.
    fn rm(&self, opts: &[&str], cmd: &[&str]) -> Out {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(opts);
        a.push("skiff-busybox");
        a.extend_from_slice(cmd);
        self.run(&a)
    }

    /// The full docker command line for `script`.
    fn line(&self, args: &str) -> String {
        format!(
            "/usr/bin/docker -H unix://{} {args}",
            self.e.p("docker.sock")
        )
    }

    fn info(&self, what: &str) -> String {
        self.run(&["info", "--format", what]).ok().line()
    }

    fn inspect(&self, what: &str, id: &str) -> String {
        self.run(&["inspect", "-f", what, id]).ok().line()
    }
}

#[test]
fn docker_everyday_commands_work_with_runtime_skiff() {
    if skip_unless_root() || !ensure_packages(&["docker.io"]) {
        return;
    }
    let mut e = Engine::new("dk");
    e.stop = vec![
        scripts().join("dockerd.sh").display().to_string(),
        "stop".into(),
        e.p(""),
    ];
    let mut start = Command::new(scripts().join("dockerd.sh"));
    start
        .arg("start")
        .arg(e.path(""))
        .arg(skiff_bin().display().to_string());
    e.run(start).ok();
    e.make_image();
    let d = Docker { e: &e };
    d.run(&["import", &e.p("image/rootfs.tar"), "skiff-busybox"])
        .ok();
    d.run(&["info"]).ok().has("skiff");
    // skiff is the default runtime; on a systemd host (the VM lane's guest)
    // Docker's default cgroup driver is systemd, so containers are scopes.
    assert_eq!(d.info("{{.DefaultRuntime}}"), "skiff");
    let systemd = systemd_host();
    if systemd {
        assert_eq!(d.info("{{.CgroupDriver}}"), "systemd");
    }
    let mut ids = Vec::new();

    // run, with exit codes and output; a missing command is 127 as with runc.
    d.rm(&[], &["sh", "-c", "echo hello; exit 3"])
        .code(3)
        .has("hello");
    d.rm(&[], &["no-such-command"])
        .code(127)
        .err_has("executable file not found");
    // -i: stdin reaches the process; -t and -it: it gets a terminal.
    d.input(
        &[
            "run",
            "--rm",
            "-i",
            "--runtime",
            "skiff",
            "skiff-busybox",
            "cat",
        ],
        "piped stdin\n",
    )
    .ok()
    .has("piped stdin");
    e.in_terminal(
        &d.line("run --rm -t --runtime skiff skiff-busybox sh -c 'tty; exit 5'"),
        None,
    )
    .code(5)
    .has("/dev/pts/0");
    e.in_terminal(
        &d.line("run --rm -it --runtime skiff skiff-busybox sh -c 'read x; echo got:$x'"),
        Some("typed\n"),
    )
    .ok()
    .has("got:typed");
    // env, user, workdir.
    d.rm(
        &["-e", "FOO=bar", "-u", "1000:1000", "-w", "/tmp"],
        &[
            "sh",
            "-c",
            "echo $FOO; id -u; id -g; pwd; echo to-stdout > /dev/stdout",
        ],
    )
    .ok()
    .has("bar\n1000\n1000\n/tmp\nto-stdout");

    // A long-running container for exec, top, stats, update, pause, logs, stop
    // (with the default runtime: no --runtime).
    let id = d
        .run(&[
            "run",
            "-d",
            "skiff-busybox",
            "sh",
            "-c",
            "echo started; trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done",
        ])
        .ok()
        .line();
    ids.push(id.clone());
    assert_eq!(d.inspect("{{.HostConfig.Runtime}}", &id), "skiff");
    let scope = format!("docker-{id}.scope");
    if systemd {
        let s = unit_props(&scope, &["ActiveState", "Delegate"]);
        assert_eq!(s, ["active", "yes"], "{scope}");
    }
    d.run(&["exec", &id, "sh", "-c", "echo in-exec; exit 4"])
        .code(4)
        .has("in-exec");
    d.run(&["exec", "-u", "1000", &id, "id", "-u"])
        .ok()
        .has("1000");
    d.run(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/etc",
        &id,
        "sh",
        "-c",
        "echo $X; pwd",
    ])
    .ok()
    .has("1\n/etc");
    e.in_terminal(&d.line(&format!("exec -t {id} tty")), None)
        .ok()
        .has("/dev/pts/");
    e.in_terminal(
        &d.line(&format!(
            "exec -it -u 1000 {id} sh -c 'read x; echo $x; id -u; tty'"
        )),
        Some("exec-typed\n"),
    )
    .ok()
    .has("exec-typed")
    .has("1000")
    .has("/dev/pts/");
    d.run(&["exec", &id, "no-such-command"]).fails();
    d.run(&["top", &id]).ok().has("while");
    let stats = d
        .run(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.MemUsage}} {{.PIDs}}",
            &id,
        ])
        .ok()
        .line();
    assert!(!stats.starts_with("0B"), "docker stats: {stats}");
    d.run(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--pids-limit",
        "77",
        &id,
    ])
    .ok();
    d.run(&["exec", &id, "cat", limit_file("memory"), limit_file("pids")])
        .ok()
        .has("67108864\n77");
    if systemd {
        // The update reached systemd too, so a daemon-reload or a later
        // change of the unit does not put the old limits back.
        let s = unit_props(&scope, &["MemoryMax", "TasksMax"]);
        assert_eq!(s, ["67108864", "77"], "{scope}");
    }
    d.run(&["pause", &id]).ok();
    assert_eq!(d.inspect("{{.State.Status}}", &id), "paused");
    d.run(&["exec", &id, "true"]).fails();
    d.run(&["unpause", &id]).ok();
    assert_eq!(d.inspect("{{.State.Status}}", &id), "running");
    d.run(&["exec", &id, "true"]).ok();
    let t = Instant::now();
    d.run(&["stop", "-t", "20", &id]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "SIGTERM was not delivered"
    );
    assert_eq!(d.inspect("{{.State.ExitCode}}", &id), "0");
    d.run(&["logs", &id]).ok().has("started").has("got-term");
    // restart: a new init process, running again.
    let pid1 = d.inspect("{{.State.Pid}}", &id);
    d.run(&["restart", "-t", "1", &id]).ok();
    assert_eq!(d.inspect("{{.State.Status}}", &id), "running");
    assert_ne!(d.inspect("{{.State.Pid}}", &id), pid1);
    d.run(&["kill", &id]).ok();
    eventually("docker kill", || {
        d.inspect("{{.State.Status}}", &id) == "exited"
    });
    assert_eq!(d.inspect("{{.State.ExitCode}}", &id), "137");
    d.run(&["rm", &id]).ok();
    if systemd {
        // No unit and no cgroup directory left.
        eventually("the scope to go", || {
            unit_props(&scope, &["LoadState"]) == ["not-found"]
        });
        let dir = Path::new("/sys/fs/cgroup/system.slice").join(&scope);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    // Volumes: bind mounts, named volumes, read-only; tmpfs; read-only root.
    let host = e.path("hostdir");
    fs::create_dir_all(&host).expect("mkdir hostdir");
    fs::write(host.join("f"), "from-host").expect("write host file");
    let bind = format!("{}:/data", host.display());
    d.rm(
        &["-v", &bind],
        &["sh", "-c", "cat /data/f; echo from-container > /data/g"],
    )
    .ok()
    .has("from-host");
    assert_eq!(
        fs::read_to_string(host.join("g")).expect("file written by container"),
        "from-container\n"
    );
    d.run(&["volume", "create", "skiffvol"]).ok();
    d.rm(&["-v", "skiffvol:/v"], &["sh", "-c", "echo kept > /v/x"])
        .ok();
    d.rm(&["-v", "skiffvol:/v:ro"], &["cat", "/v/x"])
        .ok()
        .has("kept");
    d.rm(&["-v", "skiffvol:/v:ro"], &["touch", "/v/y"])
        .fails()
        .err_has("Read-only file system");
    d.rm(
        &["--tmpfs", "/scratch:size=1m"],
        &["grep", " /scratch ", "/proc/mounts"],
    )
    .ok()
    .has("tmpfs /scratch tmpfs")
    .has("size=1024k");
    d.rm(&["--read-only"], &["touch", "/x"])
        .fails()
        .err_has("Read-only file system");

    // Capabilities and security options.
    d.rm(&[], &["grep", "CapEff", "/proc/self/status"])
        .ok()
        .has("00000000a80425fb");
    d.rm(
        &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
        &["grep", "CapEff", "/proc/self/status"],
    )
    .ok()
    .has("0000000000001000");
    d.rm(
        &[],
        &["grep", "-E", "Seccomp:|NoNewPrivs", "/proc/self/status"],
    )
    .ok()
    .has("NoNewPrivs:\t0")
    .has("Seccomp:\t2");
    d.rm(
        &[
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            "seccomp=unconfined",
        ],
        &["grep", "-E", "Seccomp:|NoNewPrivs", "/proc/self/status"],
    )
    .ok()
    .has("NoNewPrivs:\t1")
    .has("Seccomp:\t0");
    // Docker's default seccomp profile refuses what it should.
    d.rm(&[], &["unshare", "-m", "true"]).fails();

    // Resource limits, ulimits, sysctls, devices.
    d.rm(
        &["--memory", "32m", "--cpus", "0.5", "--pids-limit", "50"],
        &[
            "cat",
            limit_file("memory"),
            limit_file("cpu"),
            limit_file("pids"),
        ],
    )
    .ok()
    // cgroup v2's cpu.max holds quota and period.
    .has(if unified_cgroups() {
        "33554432\n50000 100000\n50"
    } else {
        "33554432\n50000\n50"
    });
    d.rm(
        &["--ulimit", "nofile=512:1024"],
        &["sh", "-c", "ulimit -n; ulimit -Hn"],
    )
    .ok()
    .has("512\n1024");
    d.rm(
        &[
            "--sysctl",
            "kernel.msgmax=9999",
            "--sysctl",
            "net.ipv4.ip_forward=1",
        ],
        &[
            "cat",
            "/proc/sys/kernel/msgmax",
            "/proc/sys/net/ipv4/ip_forward",
        ],
    )
    .ok()
    .has("9999\n1");
    d.rm(
        &["--device", "/dev/null:/dev/mynull"],
        &[
            "sh",
            "-c",
            "echo x > /dev/mynull && stat -c '%t,%T' /dev/mynull",
        ],
    )
    .ok()
    .has("1,3");
    // The device cgroup: a node the container may make but not open.
    d.rm(
        &[],
        &["sh", "-c", "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda"],
    )
    .fails()
    .err_has("Operation not permitted");

    // Leftovers: skiff state, bundles' mounts, cgroups of every container.
    let root = e.path("exec/runtime-runc/moby");
    let tasks = e.path("exec/containerd/daemon/io.containerd.runtime.v2.task/moby");
    let all = d.run(&["ps", "-aq", "--no-trunc"]).ok().stdout.clone();
    assert!(all.trim().is_empty(), "containers left: {all}");
    for id in &ids {
        assert_no_leaks(id, &root, &tasks.join(id));
    }
    assert_root_empty(&root);
}

// ---------------------------------------------------------------------------
// podman

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// podman's own default: the systemd driver where systemd is PID 1 (the VM
/// lane's guest, and most hosts), cgroupfs where it is not.
fn podman_cgroup_manager() -> &'static str {
    if Path::new("/run/systemd/system").is_dir() {
        "systemd"
    } else {
        "cgroupfs"
    }
}

/// The IDs of the containers in podman's file event log (one JSON object a line).
fn podman_event_ids(log: &Path) -> Vec<String> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|ev| ev["Type"] == "container")
        .filter_map(|ev| ev["ID"].as_str().map(String::from))
        .collect()
}

struct Podman<'a> {
    e: &'a Engine,
}

impl Podman<'_> {
    /// skiff's own default --root: podman's cleanup (`podman container
    /// cleanup`, run by conmon when a container exits) does not pass
    /// --runtime-flag on, so a private root would not be seen by it.
    fn globals(&self) -> Vec<String> {
        vec![
            "--runtime".into(),
            skiff_bin().display().to_string(),
            "--cgroup-manager".into(),
            podman_cgroup_manager().into(),
            "--events-backend".into(),
            "file".into(),
        ]
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.e.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.e.path("storage.conf"))
            .args(self.globals())
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        self.e.run(self.cmd(args))
    }

    fn line(&self, args: &str) -> String {
        format!(
            "CONTAINERS_CONF={} CONTAINERS_STORAGE_CONF={} podman {} {args}",
            self.e.p("containers.conf"),
            self.e.p("storage.conf"),
            self.globals().join(" ")
        )
    }

    fn status(&self, id: &str) -> String {
        self.run(&["inspect", "-f", "{{.State.Status}}", id])
            .ok()
            .line()
    }
}

#[test]
fn podman_runs_execs_pauses_and_removes_with_skiff() {
    if skip_unless_root() || !ensure_packages(&["podman"]) {
        return;
    }
    let e = Engine::new("pm");
    fs::create_dir_all(e.path("tmp")).expect("mkdir tmp");
    fs::write(
        e.path("containers.conf"),
        format!(
            "[containers]\nnetns = \"none\"\n[engine]\ncgroup_manager = \"{}\"\n\
             events_logger = \"file\"\nevents_logfile_path = \"{}\"\ntmp_dir = \"{}\"\n\
             volume_path = \"{}\"\n",
            podman_cgroup_manager(),
            e.p("events.log"),
            e.p("tmp"),
            e.p("volumes")
        ),
    )
    .expect("write containers.conf");
    fs::write(
        e.path("storage.conf"),
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            e.p("storage"),
            e.p("run")
        ),
    )
    .expect("write storage.conf");
    e.make_image();
    let p = Podman { e: &e };
    p.run(&["import", &e.p("image/rootfs.tar"), "skiff-busybox"])
        .ok();
    let ul = PODMAN_ULIMITS.join(" ");
    let run = |opts: &[&str], cmd: &[&str]| {
        let mut a = vec!["run"];
        a.extend_from_slice(opts);
        a.extend_from_slice(&PODMAN_ULIMITS);
        a.push("skiff-busybox");
        a.extend_from_slice(cmd);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };

    // Every container's ID, to check that skiff left nothing of it.
    let cid = |n: &str| e.p(&format!("cid-{n}"));
    let (c1, c2, c3) = (cid("1"), cid("2"), cid("3"));
    let r = run(
        &["--rm", "--cidfile", &c1],
        &["sh", "-c", "echo hello; exit 5"],
    );
    p.run(&args(&r)).code(5).has("hello");
    // -i and -t.
    let r = run(&["--rm", "-i", "--cidfile", &c2], &["cat"]);
    p.e.run_with(p.cmd(&args(&r)), Some("podman stdin\n"))
        .ok()
        .has("podman stdin");
    e.in_terminal(
        &p.line(&format!(
            "run --rm -t --cidfile {c3} {ul} skiff-busybox sh -c 'tty; exit 4'"
        )),
        None,
    )
    .code(4)
    .has("/dev/pts/0");

    // A long-running container: exec, pause, unpause, stop, start, rm.
    let r = run(
        &["-d", "--name", "skiff-long"],
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        ],
    );
    let id = p.run(&args(&r)).ok().line();
    let scope = format!("libpod-{id}.scope");
    if systemd_host() {
        // --cgroup-manager systemd: the container is a scope systemd knows.
        let s = unit_props(&scope, &["ActiveState", "Delegate"]);
        assert_eq!(s, ["active", "yes"], "{scope}");
    }
    p.run(&["exec", "skiff-long", "sh", "-c", "echo in-exec; exit 3"])
        .code(3)
        .has("in-exec");
    e.in_terminal(&p.line("exec -t skiff-long tty"), None)
        .ok()
        .has("/dev/pts/");
    p.run(&["exec", "skiff-long", "no-such-command"]).fails();
    p.run(&["pause", "skiff-long"]).ok();
    assert_eq!(p.status("skiff-long"), "paused");
    p.run(&["unpause", "skiff-long"]).ok();
    assert_eq!(p.status("skiff-long"), "running");
    let t = Instant::now();
    p.run(&["stop", "-t", "20", "skiff-long"]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "SIGTERM was not delivered"
    );
    assert_eq!(p.status("skiff-long"), "exited");
    p.run(&["start", "skiff-long"]).ok();
    assert_eq!(p.status("skiff-long"), "running");
    p.run(&["exec", "skiff-long", "true"]).ok();
    p.run(&["rm", "-f", "-t", "0", "skiff-long"]).ok();
    let left = p.run(&["ps", "-aq"]).ok().line();
    assert!(left.is_empty(), "containers left: {left}");
    if systemd_host() {
        assert_eq!(unit_props(&scope, &["LoadState"]), ["not-found"], "{scope}");
        // Limits through the systemd driver, read back inside (podman gives
        // the container a private cgroup namespace on cgroup v2).
        let c4 = cid("4");
        let r = run(
            &[
                "--rm",
                "--cidfile",
                &c4,
                "--memory",
                "32m",
                "--pids-limit",
                "50",
            ],
            &[
                "cat",
                "/sys/fs/cgroup/memory.max",
                "/sys/fs/cgroup/pids.max",
            ],
        );
        p.run(&args(&r)).ok().has("33554432\n50");
    }

    let root = Path::new("/run/skiff");
    let mut ids = vec![id];
    for f in [&c1, &c2, &c3, &cid("4")] {
        // podman 4.3 (Debian 12) keeps a --rm container's --cidfile; podman
        // 5 (Debian 13, the VM lane) removes it with the container.
        if let Ok(cid) = fs::read_to_string(f) {
            ids.push(cid.trim().to_string());
        }
    }
    // So also every container podman's event log (the file logger) names.
    ids.extend(podman_event_ids(&e.path("events.log")));
    ids.sort();
    ids.dedup();
    assert!(
        ids.len() >= 4,
        "container IDs from --cidfile and events.log: {ids:?}"
    );
    for id in &ids {
        let bundle = e
            .path("storage/overlay-containers")
            .join(id)
            .join("userdata");
        // podman removes a --rm container in the background (conmon's exit command).
        eventually("podman cleanup", || !root.join(id).exists());
        assert_no_leaks(id, root, &bundle);
    }
    p.run(&["rmi", "-a", "-f"]).ok();
    // podman has no daemon to undo the overlay driver's bind mount of its own
    // home (storage/overlay, made private): that one is the engine's, not a
    // container's, so take it away before the leak check of the directory.
    let home = e.path("storage/overlay");
    for m in mounts_under(&home).iter().rev() {
        let _ = Command::new("umount").arg(m).status();
    }
}
