//! Attacks on the container's filesystem view (issue 9, items 6-9 and 13),
//! each from a hostile bundle or from inside a container, checked from the
//! host: what the container could see or write, and what the runtime did.

use crate::security::{sh, TempDir};
use crate::support::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

fn mounts(b: &mut Bundle) -> &mut Vec<Value> {
    b.config_mut()["mounts"].as_array_mut().unwrap()
}
/// A fake procfs in the rootfs at `dir`: `self` -> /fakeself, whose fd/N
/// (for every fd number init could hold) all lead to the directory /decoy.
/// Whatever resolves /proc/self/fd/N through it lands on /decoy.
fn fake_proc(rootfs: &Path, dir: &str) {
    fs::create_dir_all(rootfs.join(dir)).unwrap();
    fs::create_dir_all(rootfs.join("fakeself/fd")).unwrap();
    fs::create_dir_all(rootfs.join("decoy")).unwrap();
    symlink("/fakeself", rootfs.join(dir).join("self")).unwrap();
    symlink("/fakeself", rootfs.join(dir).join("thread-self")).unwrap();
    for n in 0..256 {
        symlink("/decoy", rootfs.join(format!("fakeself/fd/{n}"))).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Item 6: a non-procfs at /proc

#[test]
fn proc_takes_only_a_procfs() {
    if skip_unless_root() {
        return;
    }
    let hostfile = TempDir::new("procdest");
    fs::write(hostfile.path().join("uptime"), "1.00 1.00\n").unwrap();
    // (what is mounted, whether skiff accepts it, whether runc 1.1.5 does,
    // what skiff's refusal says). runc 1.1.5 lets a tmpfs under /proc through
    // (its tmpfs case skips checkProcMount); runc 1.4 checks every mount.
    let cases: Vec<(&str, Value, bool, bool, &str)> = vec![
        (
            "tmpfs at /proc",
            json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}),
            false,
            false,
            "not of type proc",
        ),
        (
            "bind of a rootfs dir at /proc",
            json!({"destination": "/proc", "type": "bind", "source": "rootfs/fakeproc",
                   "options": ["rbind"]}),
            false,
            false,
            "not of type proc",
        ),
        (
            "tmpfs under /proc",
            json!({"destination": "/proc/sys/kernel", "type": "tmpfs", "source": "tmpfs"}),
            false,
            true,
            "inside /proc",
        ),
        (
            "lxcfs-style file under /proc",
            json!({"destination": "/proc/uptime", "type": "bind",
                   "source": hostfile.path().join("uptime"), "options": ["bind"]}),
            true,
            true,
            "",
        ),
    ];
    for (what, m, skiff_ok, runc_ok, why) in cases {
        let mut b = sh("cat /proc/uptime; ls /sys/firmware | wc -l");
        fake_proc(&b.rootfs(), "fakeproc");
        mounts(&mut b).push(m);
        let mut runtimes = vec![("skiff", Runtime::skiff())];
        runtimes.extend(Runtime::runc().map(|r| ("runc", r)));
        for (name, rt) in &runtimes {
            let id = rt.new_id();
            let out = rt.run_container_as(&id, &b);
            let accepted = if *name == "skiff" { skiff_ok } else { runc_ok };
            if accepted {
                out.assert_success(&format!("{name}: {what}"));
                if what.starts_with("lxcfs") {
                    assert!(out.stdout_text().starts_with("1.00 1.00"), "{name}: {what}");
                }
                continue;
            }
            assert_ne!(out.status.code(), Some(0), "{name}: {what} accepted");
            // runc 1.1.5 says "statfs tmpfs: no such file or directory" for a
            // tmpfs at /proc; runc 1.2+ and skiff name the rule.
            if *name == "skiff" {
                let err = out.stderr_text();
                assert!(err.contains(why), "{what}: {err}");
                assert!(err.contains("cannot be mounted because"), "{what}: {err}");
            }
            rt.assert_no_leaks(&id, &b);
        }
    }
}

#[test]
fn exec_fifo_is_not_reopened_through_a_fake_proc() {
    if skip_unless_root() {
        return;
    }
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // No procfs at /proc: the image's /proc directory is a fake whose
    // self/fd/N all lead to a fifo of the image's. Init must not open it
    // (an attacker-chosen file, opened for writing by the runtime).
    let mut b = Bundle::new().args(&["true"]);
    mounts(&mut b).retain(|m| m["destination"] != "/proc");
    b.config_mut()["linux"]["maskedPaths"] = json!([]);
    b.config_mut()["linux"]["readonlyPaths"] = json!([]);
    let r = b.rootfs();
    fs::remove_dir(r.join("proc")).unwrap();
    fs::create_dir_all(r.join("proc")).unwrap();
    fs::create_dir_all(r.join("fakeself/fd")).unwrap();
    symlink("/fakeself", r.join("proc/self")).unwrap();
    for n in 0..256 {
        symlink("/evil.fifo", r.join(format!("fakeself/fd/{n}"))).unwrap();
    }
    nix::unistd::mkfifo(
        &r.join("evil.fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o666),
    )
    .unwrap();
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    // Reading the fifo lets an init blocked opening it go on and write.
    let mut fifo = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(r.join("evil.fifo"))
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..40 {
        let mut buf = [0u8; 16];
        if let Ok(n) = fifo.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(got.is_empty(), "init wrote {got:?} to the image's fifo");
    // runc 1.1.5 fails `start` then (no /proc/self/fd in the image); skiff
    // refuses in `create`, naming the missing procfs.
    assert_ne!(
        out.status.code(),
        Some(0),
        "created without a procfs at /proc"
    );
    assert!(
        out.stderr_text().contains("procfs"),
        "{}",
        out.stderr_text()
    );
    rt.assert_no_leaks(&id, &b);
}

// ---------------------------------------------------------------------------
// Item 8: a read-only bind remounted through a second lookup

#[test]
fn readonly_bind_stays_readonly_when_its_destination_resolves_elsewhere() {
    if skip_unless_root() {
        return;
    }
    // The destination /p/l is "p" (l -> "."); once the volume is bound over
    // /p, the same string leads through the volume's own "l" to /dev/shm. A
    // remount that looks the destination up again makes /dev/shm read-only
    // and leaves the volume writable: the container writes to the host.
    let vol = TempDir::new("robind");
    symlink("/dev/shm", vol.path().join("l")).unwrap();
    let mut b = sh("touch /p/pwned; echo touch=$?; grep -c ' /p ro' /proc/self/mountinfo");
    fs::create_dir(b.rootfs().join("p")).unwrap();
    symlink(".", b.rootfs().join("p/l")).unwrap();
    mounts(&mut b).push(json!({"destination": "/p/l", "type": "bind",
        "source": vol.path(), "options": ["rbind", "ro"]}));
    let rt = Runtime::skiff();
    let out = rt.run_container_as(&rt.new_id(), &b);
    assert!(
        !vol.path().join("pwned").exists(),
        "the container wrote to the host through a read-only bind"
    );
    out.assert_success("run");
    assert!(
        out.stdout_text().starts_with("touch=1\n1"),
        "{}",
        out.stdout_text()
    );
}
