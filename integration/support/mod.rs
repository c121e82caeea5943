//! The harness shared by every integration test module: bundles with a busybox
//! rootfs, runners for skiff (and runc, for differential tests) with a private
//! `--root`, and a leak checker.
//!
//! Declare a test's `Bundle`s before its `Runtime`: locals drop in reverse
//! order, so the runtime then deletes its containers before their bundles go.

// Each area module uses a different subset of these helpers.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::fs::{self, File, Permissions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";
const RUNC: &str = "/usr/sbin/runc";
/// A runtime call that takes longer than this fails the test rather than hanging CI.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How deep below each hierarchy a container's cgroup may sit: here the tests
/// themselves run in memory:/process_api/<hash>, and runtimes nest under that.
const CGROUP_SEARCH_DEPTH: usize = 4;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `<prefix>-<pid>-<n>`: unique within this process and across concurrent ones.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// True, after saying so, when the calling test must be skipped for lack of root.
/// Use as `if skip_unless_root() { return; }`.
pub fn skip_unless_root() -> bool {
    if is_root() {
        return false;
    }
    // libtest names each test's thread after the test.
    let test = thread::current().name().unwrap_or("test").to_string();
    eprintln!("skipping {test}: needs root");
    true
}

/// The binary under test: $SKIFF_BIN, or the one cargo built for this test run.
pub fn skiff_bin() -> PathBuf {
    match std::env::var_os("SKIFF_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_skiff")),
    }
}

/// A fresh directory /tmp/skiff-it-<pid>-<n>.
fn scratch_dir() -> PathBuf {
    let dir = PathBuf::from("/tmp").join(unique("skiff-it"));
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Readable assertions on the result of a runtime call.
pub trait OutputExt {
    fn stdout_text(&self) -> String;
    fn stderr_text(&self) -> String;
    /// Panics, showing the output, unless the command exited 0.
    fn assert_success(&self, what: &str) -> &Self;
    /// Panics, showing the output, unless the command exited with `code`.
    fn assert_code(&self, code: i32, what: &str) -> &Self;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        text(&self.stdout)
    }

    fn stderr_text(&self) -> String {
        text(&self.stderr)
    }

    fn assert_success(&self, what: &str) -> &Self {
        self.assert_code(0, what)
    }

    fn assert_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "{what}: {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout_text(),
            self.stderr_text()
        );
        self
    }
}

// ---------------------------------------------------------------------------
// Bundles

/// The applets of /bin/busybox, listed once per test process.
fn busybox_applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        // A dynamic busybox fails in the rootfs with a baffling "not found".
        assert!(
            is_static_elf(Path::new(BUSYBOX)),
            "{BUSYBOX} is missing or not statically linked: apt-get install busybox-static"
        );
        let out = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| panic!("{BUSYBOX} --list: {e}"));
        assert!(out.status.success(), "{BUSYBOX} --list: {}", out.status);
        text(&out.stdout)
            .lines()
            .filter(|applet| !applet.is_empty() && *applet != "busybox")
            .map(String::from)
            .collect()
    })
}

/// True if `path` is a 64-bit little-endian ELF without a PT_INTERP header,
/// i.e. an executable that needs no dynamic loader.
fn is_static_elf(path: &Path) -> bool {
    const PT_INTERP: u32 = 3;
    let Ok(elf) = fs::read(path) else {
        return false;
    };
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return false;
    }
    let u16_at = |off: usize| usize::from(u16::from_le_bytes([elf[off], elf[off + 1]]));
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let off = phoff + i * phentsize;
        match elf.get(off..off + 4) {
            Some(p_type) => u32::from_le_bytes(p_type.try_into().unwrap()) != PT_INTERP,
            None => false,
        }
    })
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
";
const GROUP: &str = "root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
";

/// A busybox rootfs. Copying a 2 MB binary and making ~270 symlinks takes about
/// a millisecond, less than spawning `cp -a` of a cached template would.
fn make_rootfs(rootfs: &Path) {
    for dir in [
        "bin",
        "dev",
        "etc",
        "home/user",
        "proc",
        "root",
        "sys",
        "tmp",
    ] {
        fs::create_dir_all(rootfs.join(dir)).expect("mkdir in rootfs");
    }
    fs::set_permissions(rootfs.join("tmp"), Permissions::from_mode(0o1777)).expect("chmod tmp");
    // A private copy, never a hard link: a test that writes through the container's
    // /bin/busybox (CVE-2019-5736 style) must not reach the host's or another bundle's.
    let bin = rootfs.join("bin");
    fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox into rootfs");
    for applet in busybox_applets() {
        symlink("busybox", bin.join(applet)).expect("applet symlink");
    }
    fs::write(rootfs.join("etc/passwd"), PASSWD).expect("write /etc/passwd");
    fs::write(rootfs.join("etc/group"), GROUP).expect("write /etc/group");
}

/// What `runc spec` writes, with terminal false (no console socket needed), a
/// writable root, no cgroup mount and no cgroup namespace.
pub fn default_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "skiff-it",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// An OCI bundle in /tmp/skiff-it-<pid>-<n>, removed on drop. config.json is
/// written on creation and again before a `Runtime` uses the bundle if the
/// config was changed since; a test that writes config.json itself (say, a
/// malformed one) keeps its file as long as it does not touch the config after.
pub struct Bundle {
    dir: PathBuf,
    config: Value,
    dirty: Cell<bool>,
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    pub fn new() -> Bundle {
        let dir = scratch_dir();
        make_rootfs(&dir.join("rootfs"));
        let bundle = Bundle {
            dir,
            config: default_config(),
            dirty: Cell::new(false),
        };
        bundle.write();
        bundle
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The bundle path as a command argument (scratch paths are always UTF-8).
    pub fn path_str(&self) -> &str {
        self.dir.to_str().expect("bundle path is UTF-8")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config to edit in place; it is written out before the next runtime call.
    pub fn config_mut(&mut self) -> &mut Value {
        self.dirty.set(true);
        &mut self.config
    }

    /// Sets process.args.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.config_mut()["process"]["args"] = json!(args);
        self
    }

    /// Adds one `KEY=value` to process.env.
    pub fn env(mut self, var: &str) -> Self {
        let env = &mut self.config_mut()["process"]["env"];
        env.as_array_mut()
            .expect("process.env is an array")
            .push(json!(var));
        self
    }

    pub fn hostname(mut self, name: &str) -> Self {
        self.config_mut()["hostname"] = json!(name);
        self
    }

    /// Writes config.json now.
    pub fn write(&self) {
        let json = serde_json::to_vec_pretty(&self.config).expect("serialize config");
        fs::write(self.config_path(), json).expect("write config.json");
        self.dirty.set(false);
    }

    /// Writes config.json if the config changed since it was last written.
    pub fn flush(&self) {
        if self.dirty.get() {
            self.write();
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        remove_scratch(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// Runtimes

/// Runs one runtime binary with a private `--root` in /tmp/skiff-it-<pid>-<n>/root.
/// On drop, force-deletes every container ID it handed out, then removes its directory.
pub struct Runtime {
    bin: PathBuf,
    dir: PathBuf,
    root: PathBuf,
    ids: RefCell<Vec<String>>,
}

impl Runtime {
    pub fn skiff() -> Runtime {
        Runtime::with_binary(skiff_bin())
    }

    /// runc ($RUNC_BIN or /usr/sbin/runc) for differential tests; None, after
    /// saying so, when it is not installed.
    pub fn runc() -> Option<Runtime> {
        let bin = std::env::var_os("RUNC_BIN").map_or_else(|| PathBuf::from(RUNC), PathBuf::from);
        if bin.exists() {
            Some(Runtime::with_binary(bin))
        } else {
            eprintln!("{} not found: skipping the runc side", bin.display());
            None
        }
    }

    pub fn with_binary(bin: impl Into<PathBuf>) -> Runtime {
        let dir = scratch_dir();
        let root = dir.join("root");
        // runc makes its root 0700: state.json holds the whole config.
        fs::create_dir(&root).expect("mkdir root");
        fs::set_permissions(&root, Permissions::from_mode(0o700)).expect("chmod root");
        fs::create_dir(dir.join("io")).expect("mkdir io");
        Runtime {
            bin: bin.into(),
            dir,
            root,
            ids: RefCell::new(Vec::new()),
        }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` directory, where state lives.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh container ID, force-deleted when the runner drops.
    pub fn new_id(&self) -> String {
        let id = unique("skiffit");
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// `<bin> --root <root>`, ready for more arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(&self.root);
        cmd
    }

    /// `<bin> --root <root> args...` (global flags may lead `args`).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        self.output(cmd)
    }

    /// `<bin> --root <root> --log <log> --log-format json args...`: the JSON
    /// log as shims ask for it (global flags may lead `args`).
    pub fn run_json_log(&self, log: &std::path::Path, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.arg("--log")
            .arg(log)
            .args(["--log-format", "json"])
            .args(args);
        self.output(cmd)
    }

    /// Runs `cmd` with stdin from /dev/null and stdout/stderr captured in files.
    /// Not pipes: a container inherits the runtime's stdio, so reading a pipe to EOF
    /// would wait for the container to exit (the go-runc hang in compat.md).
    pub fn output(&self, cmd: Command) -> Output {
        self.try_output(cmd).unwrap_or_else(|msg| panic!("{msg}"))
    }

    fn try_output(&self, mut cmd: Command) -> Result<Output, String> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.join(format!("io/{n}.out"));
        let err_path = self.dir.join(format!("io/{n}.err"));
        let out = File::create(&out_path).map_err(|e| format!("create {out_path:?}: {e}"))?;
        let err = File::create(&err_path).map_err(|e| format!("create {err_path:?}: {e}"))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
        let status = wait_timeout(&mut child, COMMAND_TIMEOUT);
        let stdout = fs::read(&out_path).unwrap_or_default();
        let stderr = fs::read(&err_path).unwrap_or_default();
        match status {
            Some(status) => Ok(Output {
                status,
                stdout,
                stderr,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "{cmd:?} still running after {COMMAND_TIMEOUT:?}\nstdout: {}\nstderr: {}",
                    text(&stdout),
                    text(&stderr)
                ))
            }
        }
    }

    /// `create --bundle B ID`.
    pub fn create(&self, id: &str, bundle: &Bundle) -> Output {
        self.create_with(id, bundle, &[])
    }

    /// `create --bundle B <flags> ID`, e.g. flags `["--pid-file", P]`.
    pub fn create_with(&self, id: &str, bundle: &Bundle, flags: &[&str]) -> Output {
        bundle.flush();
        let mut args = vec!["create", "--bundle", bundle.path_str()];
        args.extend_from_slice(flags);
        args.push(id);
        self.run(&args)
    }

    pub fn start(&self, id: &str) -> Output {
        self.run(&["start", id])
    }

    /// `kill ID SIGNAL` (a name like "SIGKILL"/"KILL" or a number).
    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.run(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Output {
        self.run(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Output {
        self.run(&["delete", "--force", id])
    }

    /// `state ID`, parsed; panics if the call fails or prints something else than JSON.
    pub fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]);
        out.assert_success(&format!("state {id}"));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("state {id}: {e}: {:?}", out.stdout_text()))
    }

    /// Polls `state` until its status is `want`; panics with the last state on timeout.
    pub fn wait_for_status(&self, id: &str, want: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.state(id);
            if state["status"] == want {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "{id} not {want} after {timeout:?}: {state}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `run --bundle B <new id>`: the container's exit status, stdout and stderr
    /// (with the runtime's own messages, since they share stderr).
    pub fn run_container(&self, bundle: &Bundle) -> (ExitStatus, String, String) {
        let out = self.run_container_as(&self.new_id(), bundle);
        (out.status, out.stdout_text(), out.stderr_text())
    }

    /// `run --bundle B ID`.
    pub fn run_container_as(&self, id: &str, bundle: &Bundle) -> Output {
        bundle.flush();
        self.run(&["run", "--bundle", bundle.path_str(), id])
    }

    /// `run` a fresh container of `bundle` and check nothing of it is left:
    /// (exit code, stdout, stderr).
    pub fn run_leak_checked(&self, bundle: &Bundle) -> (i32, String, String) {
        let id = self.new_id();
        let out = self.run_container_as(&id, bundle);
        let r = (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        );
        self.assert_no_leaks(&id, bundle);
        r
    }

    /// See [`assert_no_leaks`].
    pub fn assert_no_leaks(&self, id: &str, bundle: &Bundle) {
        assert_no_leaks(id, &self.root, bundle.path());
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let mut cmd = self.command();
            cmd.args(["delete", "--force", id]);
            // No panic here: this may run while a failed test unwinds.
            if let Err(msg) = self.try_output(cmd) {
                eprintln!("cleanup: {msg}");
            }
        }
        remove_scratch(&self.dir);
    }
}

/// Waits for `child`, polling (1 ms growing to 20 ms) so that a hung runtime
/// turns into a failure after `timeout`; None on timeout.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().expect("wait for runtime") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Mounts, cleanup and leaks

/// Mount points (field 5 of mountinfo, octal escapes undone) of this mount namespace.
fn mount_points() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes a scratch directory. remove_dir_all crosses mount points, so a mount a
/// buggy runtime leaked onto the host under `dir` (say, a bind of / into a rootfs)
/// would have its contents deleted: detach such mounts first, deepest first, and
/// keep the directory if any remain.
fn remove_scratch(dir: &Path) {
    let mut under: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect();
    under.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for mount in &under {
        let Ok(path) = CString::new(mount.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
    if mount_points().iter().any(|m| m.starts_with(dir)) {
        eprintln!("cleanup: leaving {}: mounts remain under it", dir.display());
        return;
    }
    let _ = fs::remove_dir_all(dir);
}

/// True if a mountinfo line names `path` or something below it (and not merely
/// a sibling that shares its prefix, like skiff-it-1-10 for skiff-it-1-1).
fn mentions_path(line: &str, path: &str) -> bool {
    line.match_indices(path).any(|(at, _)| {
        matches!(
            line[at + path.len()..].chars().next(),
            None | Some('/' | ' ')
        )
    })
}

/// Directories named after container `id` (`<id>`, or systemd's `<prefix>-<id>.scope`)
/// in every cgroup hierarchy under /sys/fs/cgroup.
pub fn cgroup_dirs_for(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, scope: &str, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            // file_type does not follow symlinks, so cpu,cpuacct -> cpu is not walked twice.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == id || name.ends_with(scope) {
                found.push(entry.path());
            }
            if depth > 0 {
                walk(&entry.path(), id, scope, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    let scope = format!("-{id}.scope");
    // Depth 0 here is the hierarchies themselves (/sys/fs/cgroup/memory, ...).
    walk(
        Path::new("/sys/fs/cgroup"),
        id,
        &scope,
        CGROUP_SEARCH_DEPTH,
        &mut found,
    );
    found
}

/// Asserts that nothing of container `id` is left once it is deleted: no state dir
/// `<root>/<id>`, no mount on the host naming the bundle, no cgroup named after it.
pub fn assert_no_leaks(id: &str, root: &Path, bundle: &Path) {
    let leaks = leaks(id, root, bundle);
    assert!(
        leaks.is_empty(),
        "container {id} left behind:\n  {}",
        leaks.join("\n  ")
    );
}

/// What container `id` left behind on the host: its state dir `<root>/<id>`, host
/// mounts naming the bundle, cgroups named after it (empty when nothing).
pub fn leaks(id: &str, root: &Path, bundle: &Path) -> Vec<String> {
    let mut leaks = Vec::new();
    let state_dir = root.join(id);
    if state_dir.symlink_metadata().is_ok() {
        leaks.push(format!("state dir {}", state_dir.display()));
    }
    let bundle = bundle.to_string_lossy();
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    for line in info.lines().filter(|line| mentions_path(line, &bundle)) {
        leaks.push(format!("mount: {line}"));
    }
    for dir in cgroup_dirs_for(id) {
        leaks.push(format!("cgroup {}", dir.display()));
    }
    leaks
}

/// One recvmsg on a unix socket: the data and every fd sent with SCM_RIGHTS
/// (console sockets, seccomp notify listeners). Empty data means EOF.
pub fn recv_with_fds(
    conn: &std::os::unix::net::UnixStream,
) -> (Vec<u8>, Vec<std::os::fd::OwnedFd>) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    let mut buf = [0u8; 4096];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg");
    let mut fds = Vec::new();
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel just installed these descriptors for us.
            fds.extend(raw.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        }
    }
    let n = msg.bytes;
    (buf[..n].to_vec(), fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_mountinfo(r"/plain\0"), r"/plain\0");
    }

    #[test]
    fn sibling_paths_are_not_mentions() {
        let line = "1 2 0:3 / /tmp/skiff-it-1-10/rootfs rw - tmpfs tmpfs rw";
        assert!(!mentions_path(line, "/tmp/skiff-it-1-1"));
        assert!(mentions_path(line, "/tmp/skiff-it-1-10"));
        assert!(mentions_path("1 2 0:3 / /tmp/b rw", "/tmp/b"));
    }

    #[test]
    fn busybox_is_static() {
        if Path::new(BUSYBOX).exists() {
            assert!(is_static_elf(Path::new(BUSYBOX)));
        }
        // Debian's dash is dynamically linked: the check can say no.
        if Path::new("/bin/dash").exists() {
            assert!(!is_static_elf(Path::new("/bin/dash")));
        }
    }
}
