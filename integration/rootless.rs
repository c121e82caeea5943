//! Rootless mode (issue 14): skiff run by a user who is not root, with a
//! config from `skiff spec --rootless`, compared with runc 1.1.5 run by the
//! same user on the same bundle.
//!
//! The tests make a system user `skiff-rootless-it` with subordinate id
//! ranges (for newuidmap/newgidmap, Debian's `uidmap`, which `make deps`
//! installs) and run every command as that user with `setpriv`.

use crate::support::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const USER: &str = "skiff-rootless-it";
/// The subordinate range the tests give the user when it has none.
const SUB_START: u32 = 1_410_000;
const SUB_COUNT: u32 = 65536;

struct TestUser {
    uid: u32,
    gid: u32,
    sub_uid: u32,
    sub_gid: u32,
}

fn id_of(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, USER]).output().ok()?;
    text(&out.stdout).trim().parse().ok()
}

/// The start of `USER`'s range in /etc/subuid or /etc/subgid, added if missing.
fn sub_range(file: &str) -> u32 {
    let have = fs::read_to_string(file).unwrap_or_default();
    if let Some(start) = have.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() == 3 && f[0] == USER).then(|| f[1].parse().ok())?
    }) {
        return start;
    }
    let mut text = have;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{USER}:{SUB_START}:{SUB_COUNT}\n"));
    fs::write(file, text).unwrap_or_else(|e| panic!("write {file}: {e}"));
    SUB_START
}

/// The test user, made once per test run; panics (never skips) when it
/// cannot be had, since every rootless test needs it.
fn user() -> &'static TestUser {
    static U: OnceLock<TestUser> = OnceLock::new();
    U.get_or_init(|| {
        if id_of("-u").is_none() {
            let out = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    USER,
                ])
                .output()
                .expect("run useradd");
            // The VM lane runs each test in its own process, two at a time:
            // another rootless test may have made the user meanwhile.
            assert!(
                out.status.success() || id_of("-u").is_some(),
                "useradd {USER}: {}",
                text(&out.stderr)
            );
        }
        for helper in ["/usr/bin/newuidmap", "/usr/bin/newgidmap"] {
            assert!(
                Path::new(helper).exists(),
                "{helper} missing: install uidmap (make deps)"
            );
        }
        TestUser {
            uid: id_of("-u").expect("uid of the test user"),
            gid: id_of("-g").expect("gid of the test user"),
            sub_uid: sub_range("/etc/subuid"),
            sub_gid: sub_range("/etc/subgid"),
        }
    })
}

/// A runtime binary run as the test user, with a private XDG_RUNTIME_DIR (so
/// skiff's default `--root` is `$XDG_RUNTIME_DIR/skiff`, runc's
/// `$XDG_RUNTIME_DIR/runc`), and the containers it made force-deleted on drop.
struct AsUser {
    bin: PathBuf,
    dir: PathBuf,
    xdg: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl AsUser {
    fn new(bin: &Path) -> AsUser {
        let u = user();
        let dir = PathBuf::from("/tmp").join(unique("skiff-rl"));
        fs::create_dir(&dir).expect("mkdir scratch");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod scratch");
        // A copy the user can reach whatever the checkout's permissions.
        let copy = dir.join(bin.file_name().expect("binary name"));
        fs::copy(bin, &copy).expect("copy runtime binary");
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod binary");
        let xdg = dir.join("xdg");
        fs::create_dir(&xdg).expect("mkdir xdg");
        std::os::unix::fs::chown(&xdg, Some(u.uid), Some(u.gid)).expect("chown xdg");
        fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).expect("chmod xdg");
        AsUser {
            bin: copy,
            dir,
            xdg,
            ids: Default::default(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let u = user();
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", u.uid))
            .arg(format!("--regid={}", u.gid))
            .arg("--clear-groups")
            .arg("--")
            .arg("env")
            .arg("-i")
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .arg(format!("USER={USER}"))
            .arg(format!("XDG_RUNTIME_DIR={}", self.xdg.display()))
            .arg(&self.bin)
            .args(args)
            .current_dir("/");
        cmd
    }

    /// Output through files, not pipes: `create` leaves init holding its
    /// stdio until `start`, so a pipe would not see EOF (compat.md's go-runc
    /// hang).
    fn run(&self, args: &[&str]) -> Output {
        self.output(self.command(args))
    }

    /// Run `cmd` with its stdout and stderr in files of the scratch dir.
    fn output(&self, mut cmd: Command) -> Output {
        let n = unique("io");
        let (out_path, err_path) = (
            self.dir.join(format!("{n}.out")),
            self.dir.join(format!("{n}.err")),
        );
        let status = cmd
            .stdin(std::process::Stdio::null())
            .stdout(fs::File::create(&out_path).expect("create stdout file"))
            .stderr(fs::File::create(&err_path).expect("create stderr file"))
            .status()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        Output {
            status,
            stdout: fs::read(&out_path).unwrap_or_default(),
            stderr: fs::read(&err_path).unwrap_or_default(),
        }
    }

    fn new_id(&self) -> String {
        let id = unique("skiffrl");
        self.ids.borrow_mut().push(id.clone());
        id
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id]);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `spec --rootless` as written by `rt` run as the test user, with `args`.
fn rootless_config(rt: &AsUser, args: &[&str]) -> Value {
    let out_dir = rt.dir.join(unique("spec"));
    fs::create_dir(&out_dir).expect("mkdir spec dir");
    let u = user();
    std::os::unix::fs::chown(&out_dir, Some(u.uid), Some(u.gid)).expect("chown spec dir");
    let dir = out_dir.to_str().expect("utf-8");
    let out = rt.run(&["spec", "--rootless", "--bundle", dir]);
    assert!(
        out.status.success(),
        "spec --rootless: {}",
        text(&out.stderr)
    );
    let mut c: Value =
        serde_json::from_str(&fs::read_to_string(out_dir.join("config.json")).expect("read spec"))
            .expect("parse spec");
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(args);
    c
}

fn bundle_with(config: Value) -> Bundle {
    let mut b = Bundle::new();
    *b.config_mut() = config;
    b.flush();
    b
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn runc_bin() -> Option<PathBuf> {
    Runtime::runc().map(|r| r.bin().to_path_buf())
}

/// The lifecycle as the user: root of the container is the user on the host,
/// state under $XDG_RUNTIME_DIR/skiff, exec, ps, kill, delete; no cgroup made
/// (this user may write none); nothing left. runc 1.1.5 maps the same.
#[test]
fn lifecycle_as_an_unprivileged_user() {
    if skip_unless_root() {
        return;
    }
    let u = user();
    let want_map = format!("0 {} 1", u.uid);
    let mut runtimes = vec![("skiff", AsUser::new(&skiff_bin()))];
    if let Some(r) = runc_bin() {
        runtimes.push(("runc", AsUser::new(&r)));
    }
    for (name, rt) in &runtimes {
        let config = rootless_config(rt, &["sh", "-c", "id -u; cat /proc/self/uid_map"]);
        let b = bundle_with(config);
        let id = rt.new_id();
        let out = ok(&rt.run(&["run", "--bundle", b.path_str(), &id]), name);
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"0"), "{name}: {out}");
        assert_eq!(words[1..].join(" "), want_map, "{name}: {out}");
    }
    // The detached lifecycle, skiff alone from here (runc's own is above).
    let rt = &runtimes[0].1;
    let b = bundle_with(rootless_config(rt, &["sleep", "60"]));
    let id = rt.new_id();
    let out = rt.run(&["create", "--bundle", b.path_str(), &id]);
    ok(&out, "create");
    let state_dir = rt.xdg.join("skiff").join(&id);
    let meta = fs::metadata(&state_dir).expect("state under $XDG_RUNTIME_DIR/skiff");
    assert_eq!(meta.uid(), u.uid, "state dir owner");
    ok(&rt.run(&["start", &id]), "start");
    let state: Value = serde_json::from_str(&ok(&rt.run(&["state", &id]), "state")).expect("json");
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_i64().expect("pid");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("init status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains(&u.uid.to_string())),
        "init runs as the user on the host: {status}"
    );
    assert_eq!(ok(&rt.run(&["exec", &id, "id", "-u"]), "exec").trim(), "0");
    let ps = ok(&rt.run(&["ps", "--format", "json", &id]), "ps");
    assert!(ps.contains(&pid.to_string()), "ps lists init {pid}: {ps}");
    assert!(cgroup_dirs_for(&id).is_empty(), "no cgroup for {id}");
    ok(&rt.run(&["kill", &id, "KILL"]), "kill");
    rt.run(&["delete", "--force", &id]);
    assert!(
        !state_dir.exists(),
        "state dir left: {}",
        state_dir.display()
    );
    assert_no_leaks(&id, &rt.xdg.join("skiff"), b.path());
}

/// More than the user's own id: newuidmap/newgidmap write the ranges from
/// /etc/subuid and /etc/subgid, as runc does.
#[test]
fn subordinate_ranges_through_newuidmap() {
    if skip_unless_root() {
        return;
    }
    let u = user();
    let mut runtimes = vec![("skiff", AsUser::new(&skiff_bin()))];
    if let Some(r) = runc_bin() {
        runtimes.push(("runc", AsUser::new(&r)));
    }
    for (name, rt) in &runtimes {
        let mut c = rootless_config(
            rt,
            &[
                "sh",
                "-c",
                "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g",
            ],
        );
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": u.uid, "size": 1},
            {"containerID": 1, "hostID": u.sub_uid, "size": 65536}
        ]);
        c["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": u.gid, "size": 1},
            {"containerID": 1, "hostID": u.sub_gid, "size": 65536}
        ]);
        let b = bundle_with(c);
        let id = rt.new_id();
        let out = ok(&rt.run(&["run", "--bundle", b.path_str(), &id]), name);
        let lines: Vec<String> = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            lines,
            vec![
                format!("0 {} 1", u.uid),
                format!("1 {} 65536", u.sub_uid),
                format!("0 {} 1", u.gid),
                format!("1 {} 65536", u.sub_gid),
                "1000".to_string(),
                "1000".to_string(),
            ],
            "{name}"
        );
    }
}

/// A directory the user owns on the host, bound into the container: root in
/// the container owns it and may write it; the file is the user's on the host.
#[test]
fn bind_mount_of_a_user_owned_directory() {
    if skip_unless_root() {
        return;
    }
    let u = user();
    let rt = AsUser::new(&skiff_bin());
    let shared = rt.dir.join("shared");
    fs::create_dir(&shared).expect("mkdir shared");
    std::os::unix::fs::chown(&shared, Some(u.uid), Some(u.gid)).expect("chown shared");
    let mut c = rootless_config(&rt, &["sh", "-c", "stat -c %u:%g /mnt && echo hi >/mnt/f"]);
    c["mounts"].as_array_mut().expect("mounts").push(json!({
        "destination": "/mnt", "type": "bind", "source": shared,
        "options": ["rbind", "rw"]
    }));
    let b = bundle_with(c);
    // The mount point exists, as in a user's own image: the user may not
    // create it in this root-owned rootfs.
    fs::create_dir(b.rootfs().join("mnt")).expect("mkdir rootfs/mnt");
    let id = rt.new_id();
    let out = ok(&rt.run(&["run", "--bundle", b.path_str(), &id]), "run");
    assert_eq!(out.trim(), "0:0");
    let meta = fs::metadata(shared.join("f")).expect("file written in the container");
    assert_eq!((meta.uid(), meta.gid()), (u.uid, u.gid));
}

/// A limit this user cannot set is an error that names it, as runc's "cannot
/// set ... limit: container could not join or create cgroup"; nothing left.
#[test]
fn limit_without_a_writable_cgroup_is_an_error() {
    if skip_unless_root() {
        return;
    }
    let mut runtimes = vec![("skiff", AsUser::new(&skiff_bin()))];
    if let Some(r) = runc_bin() {
        runtimes.push(("runc", AsUser::new(&r)));
    }
    for (name, rt) in &runtimes {
        let mut c = rootless_config(rt, &["true"]);
        c["linux"]["resources"] = json!({"pids": {"limit": 10}});
        let b = bundle_with(c);
        let id = rt.new_id();
        let out = rt.run(&["run", "--bundle", b.path_str(), &id]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        // runc 1.1.5: "cannot set pids limit: container could not join or
        // create cgroup"; runc 1.1.15 (the VM guest): "rootless needs no
        // limits + no cgrouppath when no permission is granted for cgroups".
        // skiff names the limit as 1.1.5 did.
        assert!(
            err.contains("cgroup") && (*name == "runc" || err.contains("pids")),
            "{name} names the limit and the cgroup: {err}"
        );
        let root = rt.xdg.join(if *name == "skiff" { "skiff" } else { "runc" });
        assert!(!root.join(&id).exists(), "{name}: state left");
    }
}

/// Another user's containers: a user cannot read or signal root's.
#[test]
fn another_users_container_is_refused() {
    if skip_unless_root() {
        return;
    }
    let root_rt = Runtime::skiff();
    let mut b = Bundle::new();
    b.config_mut()["process"]["args"] = json!(["sleep", "60"]);
    let id = root_rt.new_id();
    let out = root_rt.create(&id, &b);
    assert!(
        out.status.success(),
        "create as root: {}",
        text(&out.stderr)
    );
    let rt = AsUser::new(&skiff_bin());
    let root_dir = root_rt.root().to_str().expect("utf-8").to_string();
    for args in [
        vec!["state", id.as_str()],
        vec!["kill", id.as_str(), "KILL"],
    ] {
        let mut full = vec!["--root", root_dir.as_str()];
        full.extend(args.iter().copied());
        let out = rt.run(&full);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("ermission denied"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        root_rt.state(&id)["status"],
        "created",
        "root's container untouched"
    );
}

/// Rootless podman as the user, with skiff as its runtime (podman calls it as
/// root of podman's user namespace, so `--rootless auto` applies there too):
/// run with an exit code, exec, exec -t, stop by SIGTERM, rm; nothing of
/// skiff's left under the user's $XDG_RUNTIME_DIR/skiff.
#[test]
fn rootless_podman_runs_execs_stops_and_removes_with_skiff() {
    if skip_unless_root() || !crate::engines::ensure_packages(&["podman"]) {
        return;
    }
    let u = user();
    let rt = AsUser::new(&skiff_bin());
    // Rootless podman leaves a pause process holding its user namespace; its
    // PID file is in the runtime dir this test removes, so the process must
    // go with it, also when the test fails (dropped before `rt`).
    let _pause = PausePid(rt.xdg.join("libpod/tmp/pause.pid"));
    let home = rt.dir.join("home");
    fs::create_dir(&home).expect("mkdir home");
    // The image: a busybox rootfs as a tarball the user can read.
    let b = Bundle::new();
    let tar = rt.dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(b.rootfs())
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success(), "tar of the rootfs");
    // No network (no slirp4netns/pasta needed), the file event logger, vfs
    // storage in the scratch directory; cgroupfs, since this user has no
    // systemd session.
    let conf = rt.dir.join("containers.conf");
    fs::write(
        &conf,
        "[containers]\nnetns = \"none\"\n[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n",
    )
    .expect("write containers.conf");
    let storage = rt.dir.join("storage.conf");
    fs::write(
        &storage,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            rt.dir.join("graph").display(),
            rt.dir.join("run").display()
        ),
    )
    .expect("write storage.conf");
    for p in [&home, &tar] {
        std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).expect("chown");
    }
    let podman_line = |args: &str| {
        format!(
            "USER={USER} HOME={home} XDG_RUNTIME_DIR={xdg} CONTAINERS_CONF={conf} CONTAINERS_STORAGE_CONF={storage} \
             podman --runtime {skiff} {args}",
            home = home.display(),
            xdg = rt.xdg.display(),
            conf = conf.display(),
            storage = storage.display(),
            skiff = rt.bin.display(),
        )
    };
    let sh = |line: &str| -> Output {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", u.uid))
            .arg(format!("--regid={}", u.gid))
            .arg("--init-groups")
            .args(["--", "sh", "-c", line])
            .current_dir("/");
        rt.output(cmd)
    };
    let expect = |line: &str, code: i32, has: &str| {
        let out = sh(&podman_line(line));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "podman {line}: {all}");
        assert!(all.contains(has), "podman {line}: want {has:?} in {all}");
        text(&out.stdout)
    };
    expect(&format!("import {} skiff-rl-bb", tar.display()), 0, "");
    expect(
        "run --rm skiff-rl-bb sh -c 'cat /proc/self/uid_map; exit 5'",
        5,
        &format!("{}", u.uid),
    );
    expect(
        "run -d --name rl-long skiff-rl-bb sh -c \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"",
        0,
        "",
    );
    // skiff made the container: its state is in the user's skiff root.
    let skiff_root = rt.xdg.join("skiff");
    let states: Vec<_> = fs::read_dir(&skiff_root)
        .map(|d| d.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert_eq!(states.len(), 1, "one container in {}", skiff_root.display());
    expect("exec rl-long sh -c 'echo in-exec; exit 3'", 3, "in-exec");
    let tty = sh(&format!(
        "script -qec {} /dev/null",
        shell_quote(&podman_line("exec -t rl-long tty"))
    ));
    assert!(
        text(&tty.stdout).contains("/dev/pts/"),
        "exec -t: {}{}",
        text(&tty.stdout),
        text(&tty.stderr)
    );
    let t = std::time::Instant::now();
    expect("stop -t 20 rl-long", 0, "rl-long");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(15),
        "SIGTERM was not delivered"
    );
    expect("rm rl-long", 0, "rl-long");
    let left = expect("ps -aq", 0, "");
    assert!(left.trim().is_empty(), "containers left: {left}");
    let left: Vec<_> = fs::read_dir(&skiff_root)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "skiff state left: {left:?}");
    let _ = sh(&podman_line("rmi -a -f"));
}

/// Kills the process whose PID the file names, when dropped.
struct PausePid(PathBuf);

impl Drop for PausePid {
    fn drop(&mut self) {
        let pid = fs::read_to_string(&self.0)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        if let Some(pid) = pid.filter(|p| *p > 1) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Where systemd is PID 1 on cgroup v2 (the VM lane's guest): the user's own
/// systemd instance (a lingering session, with memory and pids delegated as
/// systemd 252+ does for user@.service) makes the container a scope under it
/// with the limits as properties. runc's rule for the path (runc 1.1+,
/// libcontainer/cgroups/systemd, rootless): the manager's ControlGroup, then
/// the slice (default user.slice), then `runc-<id>.scope`.
#[test]
fn systemd_user_scope_gets_the_limits() {
    if skip_unless_root() {
        return;
    }
    if !Path::new("/run/systemd/system").is_dir()
        || !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        eprintln!(
            "skipping rootless::systemd_user_scope_gets_the_limits: needs systemd as PID 1 on cgroup v2 (the VM lane runs it)"
        );
        return;
    }
    let u = user();
    let linger = |on: bool| {
        let st = Command::new("loginctl")
            .arg(if on {
                "enable-linger"
            } else {
                "disable-linger"
            })
            .arg(USER)
            .status()
            .expect("loginctl");
        assert!(st.success(), "loginctl linger {on}");
    };
    linger(true);
    struct Unlinger;
    impl Drop for Unlinger {
        fn drop(&mut self) {
            let _ = Command::new("loginctl")
                .args(["disable-linger", USER])
                .status();
        }
    }
    let _unlinger = Unlinger;
    let xdg = PathBuf::from(format!("/run/user/{}", u.uid));
    let private = xdg.join("systemd/private");
    let t = std::time::Instant::now();
    while !private.exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(180),
            "the user's systemd instance did not start ({} missing)",
            private.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // runc and skiff reach the user's instance over the session bus, which
    // dbus-user-session provides; the VM guest image does not have it yet.
    let bus = xdg.join("bus");
    let t = std::time::Instant::now();
    while !bus.exists() && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    if !bus.exists() {
        eprintln!(
            "skipping rootless::systemd_user_scope_gets_the_limits: no session bus at {} (install dbus-user-session)",
            bus.display()
        );
        return;
    }
    let rt = AsUser::new(&skiff_bin());
    let root = rt.xdg.join("root");
    let as_user = |args: &[&str]| -> Output {
        let mut full = vec!["--root", root.to_str().expect("utf-8"), "--systemd-cgroup"];
        full.extend_from_slice(args);
        let cmd = rt.command(&full);
        // `env -i` in rt.command resets the environment: give the bus path there.
        let argv: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .map(|a| {
                if a.starts_with("XDG_RUNTIME_DIR=") {
                    format!("XDG_RUNTIME_DIR={}", xdg.display())
                } else {
                    a
                }
            })
            .collect();
        let mut cmd = Command::new("setpriv");
        cmd.args(&argv);
        rt.output(cmd)
    };
    let mut c = rootless_config(&rt, &["sleep", "60"]);
    c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    let b = bundle_with(c);
    let id = unique("skiffrl");
    let out = as_user(&["create", "--bundle", b.path_str(), &id]);
    ok(&out, "create --systemd-cgroup as the user");
    let unit = format!("runc-{id}.scope");
    let dir = PathBuf::from(format!(
        "/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service/user.slice/{unit}",
        uid = u.uid
    ));
    let read = |f: &str| {
        fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()))
            .trim()
            .to_string()
    };
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("pids.max"), "50");
    let state: Value = serde_json::from_str(&ok(&as_user(&["state", &id]), "state")).expect("json");
    let pid = state["pid"].as_i64().expect("pid");
    assert!(
        read("cgroup.procs").lines().any(|l| l == pid.to_string()),
        "init in the scope"
    );
    let show = Command::new("setpriv")
        .arg(format!("--reuid={}", u.uid))
        .arg(format!("--regid={}", u.gid))
        .arg("--clear-groups")
        .args(["--", "env", "-i"])
        .arg(format!("XDG_RUNTIME_DIR={}", xdg.display()))
        .args([
            "systemctl",
            "--user",
            "show",
            "-p",
            "MemoryMax",
            "-p",
            "TasksMax",
            "-p",
            "Delegate",
            &unit,
        ])
        .output()
        .expect("systemctl --user show");
    let props = text(&show.stdout);
    for want in ["MemoryMax=67108864", "TasksMax=50", "Delegate=yes"] {
        assert!(
            props.contains(want),
            "{want} in {props} {}",
            text(&show.stderr)
        );
    }
    // The delegated cgroup is the user's: pause, resume and stats work.
    ok(&as_user(&["pause", &id]), "pause");
    assert_eq!(read("cgroup.freeze"), "1");
    let state: Value = serde_json::from_str(&ok(&as_user(&["state", &id]), "state")).expect("json");
    assert_eq!(state["status"], "paused");
    ok(&as_user(&["resume", &id]), "resume");
    assert_eq!(read("cgroup.freeze"), "0");
    let stats: Value =
        serde_json::from_str(&ok(&as_user(&["events", "--stats", &id]), "events --stats"))
            .expect("stats json");
    assert!(
        stats["data"]["pids"]["current"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "pids in the stats: {stats}"
    );
    ok(&as_user(&["delete", "--force", &id]), "delete");
    assert!(!dir.exists(), "scope cgroup left: {}", dir.display());
}
