//! Checkpoint and restore driven by engines with skiff as their runtime
//! (issue 13): podman's `container checkpoint` / `restore` (also through an
//! exported tarball) and containerd's `ctr task checkpoint` and
//! `ctr containers checkpoint --task` / `restore --live`. A busybox container
//! counts in a loop; after each restore the count goes on from where it was,
//! read from inside, and skiff's state and the cgroup say the same outside.

use crate::checkpoint::{freezer_state, skip_unless_criu};
use crate::engines::{
    assert_root_empty, ensure_packages, eventually, mounts_under, scripts, Engine, Out,
};
use crate::support::{assert_no_leaks, skiff_bin, skip_unless_root};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

const IMAGE: &str = "docker.io/library/skiff-busybox:latest";
/// Counts in /tmp/count, after a mark drawn once at start: a process that
/// was started again instead of restored shows another mark.
const COUNTER: &str = "m=$(cat /proc/sys/kernel/random/uuid); i=0; while :; do i=$((i+1)); \
                       echo $m $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done";

/// The counter's mark and count.
type Sample = (String, u64);

/// skiff's view of container `id` in `root` (None: it does not exist).
fn skiff_state(root: &Path, id: &str) -> Option<Value> {
    let out = Command::new(skiff_bin())
        .arg("--root")
        .arg(root)
        .args(["state", id])
        .output()
        .expect("skiff state");
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("state JSON"))
}

fn parse_count(out: &Out) -> Sample {
    let line = out.stdout.trim();
    let parsed = line
        .split_once(' ')
        .and_then(|(m, c)| Some((m.to_string(), c.parse().ok()?)));
    parsed.unwrap_or_else(|| panic!("a count from the container: {line:?}"))
}

/// Polls `read` until the count reaches `min.1` with the same mark as `min`
/// (the same process, counting on); returns the sample.
fn wait_count(what: &str, min: &Sample, mut read: impl FnMut() -> Sample) -> Sample {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let c = read();
        assert_eq!(
            c.0, min.0,
            "{what}: the counter started again ({min:?} -> {c:?})"
        );
        if c.1 >= min.1 {
            return c;
        }
        assert!(
            Instant::now() < end,
            "{what}: count {c:?} never reached {min:?}"
        );
        thread::sleep(Duration::from_millis(500));
    }
}

/// The next sample after `c` must be of the same process and not smaller.
fn continues(what: &str, before: &Sample, after: &Sample) {
    assert_eq!(
        after.0, before.0,
        "{what}: the process was started again, not restored"
    );
    assert!(
        after.1 >= before.1,
        "{what}: count went back ({before:?} -> {after:?})"
    );
}

fn plus(c: &Sample, n: u64) -> Sample {
    (c.0.clone(), c.1 + n)
}

/// Running, not frozen, in skiff's state and in its cgroup.
fn assert_running(root: &Path, id: &str) -> i64 {
    let st = skiff_state(root, id).unwrap_or_else(|| panic!("skiff has no container {id}"));
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().expect("pid");
    let f = freezer_state(pid);
    assert!(f == "0" || f == "THAWED", "cgroup of {id} frozen: {f:?}");
    pid
}

struct Podman<'a> {
    e: &'a Engine,
}

impl Podman<'_> {
    fn new(e: &Engine) -> Podman<'_> {
        let manager = if Path::new("/run/systemd/system").is_dir() {
            "systemd"
        } else {
            "cgroupfs"
        };
        fs::create_dir_all(e.path("tmp")).expect("mkdir tmp");
        fs::write(
            e.path("containers.conf"),
            format!(
                "[containers]\nnetns = \"none\"\n[engine]\ncgroup_manager = \"{manager}\"\n\
                 events_logger = \"file\"\nevents_logfile_path = \"{}\"\ntmp_dir = \"{}\"\n\
                 volume_path = \"{}\"\n",
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
        Podman { e }
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.e.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.e.path("storage.conf"))
            .arg("--runtime")
            .arg(skiff_bin())
            .args(args);
        self.e.run(c)
    }

    fn count(&self, name: &str) -> Sample {
        parse_count(self.run(&["exec", name, "cat", "/tmp/count"]).ok())
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.run(&["inspect", "-f", format, name])
            .ok()
            .stdout
            .trim()
            .to_string()
    }
}

fn make_image(e: &Engine) {
    let mut cmd = Command::new(scripts().join("busybox-image.sh"));
    cmd.arg(e.path("image")).arg(IMAGE);
    e.run(cmd).ok();
}

#[test]
fn podman_checkpoint_restore_and_export_import_with_skiff() {
    if skip_unless_root()
        || skip_unless_criu("podman_checkpoint_restore_and_export_import_with_skiff")
        || !ensure_packages(&["podman"])
    {
        return;
    }
    let e = Engine::new("pmck");
    let p = Podman::new(&e);
    make_image(&e);
    p.run(&["import", &e.p("image/rootfs.tar"), "skiff-busybox"])
        .ok();
    let root = Path::new("/run/skiff");
    let id = p
        .run(&[
            "run",
            "-d",
            "--name",
            "ck",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "skiff-busybox",
            "sh",
            "-c",
            COUNTER,
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let mut ids = vec![id.clone()];
    let first = p.count("ck");
    let c0 = wait_count("podman run", &plus(&(first.0.clone(), 0), 20), || {
        p.count("ck")
    });
    let pid0 = assert_running(root, &id);

    // checkpoint: podman says exited+checkpointed, skiff has no container left.
    p.run(&["container", "checkpoint", "ck"]).ok();
    assert_eq!(
        p.inspect("ck", "{{.State.Status}} {{.State.Checkpointed}}"),
        "exited true"
    );
    assert!(
        skiff_state(root, &id).is_none(),
        "skiff state of {id} after checkpoint"
    );
    p.run(&["container", "restore", "ck"]).ok();
    assert_eq!(
        p.inspect("ck", "{{.State.Status}} {{.State.Restored}}"),
        "running true"
    );
    let pid1 = assert_running(root, &id);
    assert_ne!(pid1, pid0, "a restored process");
    let c1 = p.count("ck");
    continues("podman restore", &c0, &c1);
    wait_count("after restore", &plus(&c1, 5), || p.count("ck"));

    // --leave-running (podman sends it twice): same process, still counting.
    let c2 = p.count("ck");
    p.run(&["container", "checkpoint", "--leave-running", "ck"])
        .ok();
    assert_eq!(p.inspect("ck", "{{.State.Status}}"), "running");
    assert_eq!(assert_running(root, &id), pid1, "the same process");
    wait_count("after --leave-running", &plus(&c2, 5), || p.count("ck"));

    // --export to a tarball, remove the container, --import it again.
    let tar = e.p("ck.tar");
    let c3 = p.count("ck");
    p.run(&["container", "checkpoint", "--export", &tar, "ck"])
        .ok();
    p.run(&["rm", "-f", "ck"]).ok();
    assert!(skiff_state(root, &id).is_none(), "skiff state after rm");
    let out = p.run(&["container", "restore", "--import", &tar]);
    out.ok();
    let id2 = out.stdout.trim().to_string();
    ids.push(id2.clone());
    assert_eq!(p.inspect("ck", "{{.State.Status}}"), "running");
    assert_running(root, &id2);
    let c4 = p.count("ck");
    continues("podman restore --import", &c3, &c4);
    wait_count("after import", &plus(&c4, 5), || p.count("ck"));
    p.run(&["rm", "-f", "-t", "0", "ck"]).ok();

    ids.sort();
    ids.dedup();
    for id in &ids {
        let bundle = e
            .path("storage/overlay-containers")
            .join(id)
            .join("userdata");
        eventually("podman cleanup", || !root.join(id).exists());
        assert_no_leaks(id, root, &bundle);
    }
    p.run(&["rmi", "-a", "-f"]).ok();
    for m in mounts_under(&e.path("storage/overlay")).iter().rev() {
        let _ = Command::new("umount").arg(m).status();
    }
}

/// containerd 1.7's two ways (facts from `ctr --help` in the Debian 13
/// guest): `ctr task checkpoint` (pause, `checkpoint --leave-running`,
/// resume: the task runs on) and `ctr containers checkpoint --task --image
/// --rw` with `ctr containers restore --live --rw`, which recreates the task
/// from the images (`restore --detach -no-subreaper ...` through the shim;
/// without --image ctr's restore fails with "media type not found").
#[test]
fn containerd_task_checkpoint_and_live_restore_with_skiff() {
    if skip_unless_root()
        || skip_unless_criu("containerd_task_checkpoint_and_live_restore_with_skiff")
        || !ensure_packages(&["containerd"])
    {
        return;
    }
    let mut e = Engine::new("ctdck");
    e.stop = vec![
        scripts().join("containerd.sh").display().to_string(),
        "stop".into(),
        e.p(""),
    ];
    let mut start = Command::new(scripts().join("containerd.sh"));
    start.arg("start").arg(e.path(""));
    e.run(start).ok();
    make_image(&e);
    let ns = format!("skiffck{}", std::process::id());
    let ctr = |args: &[&str]| {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(e.path("containerd.sock"))
            .arg("-n")
            .arg(&ns)
            .args(args);
        e.run(c)
    };
    ctr(&["images", "import", &e.p("image/oci.tar")]).ok();
    let skiff = skiff_bin().display().to_string();
    let fifo = e.p("fifo");
    let root = e.path("runc");
    let root_s = root.display().to_string();
    ctr(&[
        "run",
        "-d",
        "--fifo-dir",
        &fifo,
        "--runc-binary",
        &skiff,
        "--runc-root",
        &root_s,
        IMAGE,
        "c1",
        "sh",
        "-c",
        COUNTER,
    ])
    .ok();
    let ns_root = root.join(&ns);
    let n = std::cell::Cell::new(0);
    let count = || {
        n.set(n.get() + 1);
        let exec_id = format!("e{}", n.get());
        parse_count(
            ctr(&[
                "task",
                "exec",
                "--fifo-dir",
                &fifo,
                "--exec-id",
                &exec_id,
                "c1",
                "cat",
                "/tmp/count",
            ])
            .ok(),
        )
    };
    let first = count();
    let c0 = wait_count("ctr run", &(first.0.clone(), 10), count);
    let pid0 = assert_running(&ns_root, "c1");

    // ctr task checkpoint: containerd pauses the task, has skiff dump it
    // with --leave-running, and resumes it: the task runs on. (Into a
    // directory: a second checkpoint into containerd's content store in one
    // namespace fails in ctr 1.7 itself, "content ... already exists".)
    let dir = e.path("task-ck");
    ctr(&[
        "task",
        "checkpoint",
        "--image-path",
        &dir.display().to_string(),
        "c1",
    ])
    .ok();
    assert!(dir.join("inventory.img").exists(), "CRIU images in {dir:?}");
    assert_eq!(assert_running(&ns_root, "c1"), pid0, "the same process");
    let c1 = count();
    continues("ctr task checkpoint", &c0, &c1);
    wait_count("after ctr task checkpoint", &plus(&c1, 5), count);

    // A checkpoint with the image and rw layer; the task is killed and the
    // container removed; restore --live brings it back, counting on.
    let c2 = count();
    ctr(&[
        "containers",
        "checkpoint",
        "--task",
        "--image",
        "--rw",
        "c1",
        "checkpoint/c1:skiff",
    ])
    .ok();
    ctr(&["task", "kill", "-s", "SIGKILL", "c1"]).ok();
    eventually("c1 to stop", || {
        ctr(&["task", "ls"]).stdout.contains("STOPPED")
    });
    ctr(&["task", "delete", "c1"]).ok();
    ctr(&["containers", "delete", "c1"]).ok();
    assert!(skiff_state(&ns_root, "c1").is_none(), "c1 gone from skiff");
    ctr(&[
        "containers",
        "restore",
        "--live",
        "--rw",
        "c1",
        "checkpoint/c1:skiff",
    ])
    .ok();
    let pid1 = assert_running(&ns_root, "c1");
    assert_ne!(pid1, pid0, "a restored process");
    let c3 = count();
    continues("ctr containers restore --live", &c2, &c3);
    wait_count("after restore --live", &plus(&c3, 5), count);

    ctr(&["task", "kill", "-s", "SIGKILL", "c1"]).ok();
    eventually("c1 to stop", || {
        ctr(&["task", "ls"]).stdout.contains("STOPPED")
    });
    ctr(&["task", "delete", "c1"]).ok();
    ctr(&["containers", "delete", "c1"]).ok();
    let bundle = e
        .path("state/io.containerd.runtime.v2.task")
        .join(&ns)
        .join("c1");
    assert_no_leaks("c1", &ns_root, &bundle);
    assert_root_empty(&ns_root);
    // containerd's parent cgroup for the namespace (the engine's, empty now).
    for dir in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = fs::remove_dir(dir.path().join(&ns));
    }
    let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(&ns));
}
