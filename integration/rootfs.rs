//! The container's filesystem as the process inside sees it: mounts and their
//! options, devices, masked and read-only paths, the read-only root, and that
//! nothing of it shows on the host.

use crate::support::*;
use serde_json::json;

/// Run `script` in a fresh busybox container; returns (exit code, stdout, stderr).
fn sh(bundle: Bundle, script: &str) -> (i32, String, String) {
    Runtime::skiff().run_leak_checked(&bundle.args(&["sh", "-c", script]))
}

/// The mountinfo line whose mount point is `mp` (inside the container).
fn mount_line<'a>(mountinfo: &'a str, mp: &str) -> Option<&'a str> {
    mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(mp))
}

#[test]
fn config_mounts_have_their_options() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let host_dir = b.path().join("shared");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello"), "from host").unwrap();
    b.config_mut()["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/data", "type": "bind", "source": host_dir, "options": ["rbind", "ro", "nosuid"]}),
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "size=1m", "mode=700"]}),
    ]);
    let (code, out, err) = sh(b, "cat /data/hello; echo; cat /proc/self/mountinfo; stat -c %a /scratch; touch /data/x 2>&1 || echo RO-OK");
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("from host"), "{out}");
    let data = mount_line(&out, "/data").expect("/data mounted");
    assert!(data.contains(" ro,") && data.contains("nosuid"), "{data}");
    let scratch = mount_line(&out, "/scratch").expect("/scratch mounted");
    assert!(
        scratch.contains("noexec") && scratch.contains("tmpfs"),
        "{scratch}"
    );
    assert!(out.contains("\n700\n"), "tmpfs mode: {out}");
    assert!(out.contains("RO-OK"), "write to ro bind must fail: {out}");
}

#[test]
fn default_devices_and_symlinks_exist() {
    if skip_unless_root() {
        return;
    }
    let (code, out, err) = sh(
        Bundle::new(),
        "for d in null zero full random urandom tty; do stat -c '%n %t:%T %F' /dev/$d; done; for l in fd stdin ptmx; do readlink /dev/$l; done",
    );
    assert_eq!(code, 0, "{err}");
    for want in [
        "/dev/null 1:3 character special file",
        "/dev/zero 1:5",
        "/dev/full 1:7",
        "/dev/random 1:8",
        "/dev/urandom 1:9",
        "/dev/tty 5:0",
        "/proc/self/fd\n/proc/self/fd/0\npts/ptmx",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
}

#[test]
fn linux_devices_are_created_with_owner_and_mode() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config_mut()["linux"]["devices"] = json!([
        {"path": "/dev/skiff-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1000}
    ]);
    let (code, out, err) = sh(b, "stat -c '%t:%T %a %u:%g' /dev/skiff-null");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "1:3 640 1000:1000");
}

#[test]
fn masked_and_readonly_paths_hold() {
    if skip_unless_root() {
        return;
    }
    let (code, out, err) = sh(
        Bundle::new(),
        "wc -c < /proc/keys; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo WROTE || echo RO; grep ' /proc/sys ' /proc/self/mountinfo",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "/proc/keys is masked by /dev/null");
    assert_eq!(
        lines[1].trim(),
        "0",
        "/sys/firmware is masked by an empty tmpfs"
    );
    assert_eq!(lines[2], "RO");
    assert!(lines[3].contains(" ro,"), "{}", lines[3]);
}

#[test]
fn masks_cannot_be_undone_from_inside() {
    if skip_unless_root() {
        return;
    }
    // Even root in the container (with the default capabilities, no
    // CAP_SYS_ADMIN) cannot unmount the mask or remount /proc/sys writable.
    let (code, out, err) = sh(
        Bundle::new(),
        "umount /proc/keys 2>/dev/null && echo UNMASKED; mount -o remount,rw /proc/sys 2>/dev/null && echo RW; wc -c < /proc/keys",
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("UNMASKED") && !out.contains("RW"), "{out}");
    assert_eq!(out.trim(), "0");
}

#[test]
fn readonly_root_is_readonly() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config_mut()["root"]["readonly"] = json!(true);
    let (code, out, err) = sh(
        b,
        "touch /x 2>/dev/null && echo WROTE || echo RO; touch /dev/shm/ok && echo SHM",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "RO\nSHM\n");
}

#[test]
fn relative_root_path_and_symlink_escape_stay_inside() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    // A symlink in the image pointing at the host's /etc: the mount must land
    // on <rootfs>/etc/skiff-target, never on the host's /etc.
    std::os::unix::fs::symlink("/etc", b.rootfs().join("evil")).unwrap();
    let src = b.path().join("src");
    std::fs::create_dir(&src).unwrap();
    b.config_mut()["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/evil/skiff-target", "type": "bind", "source": src, "options": ["bind"]}));
    let (code, _out, err) = sh(b, "true");
    assert_eq!(code, 0, "{err}");
    assert!(
        !std::path::Path::new("/etc/skiff-target").exists(),
        "mount escaped to the host"
    );
}

#[test]
fn hostname_domainname_sysctl_applied() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new().hostname("box1");
    b.config_mut()["domainname"] = json!("example.org");
    b.config_mut()["linux"]["sysctl"] =
        json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456"});
    b.config_mut()["linux"]["readonlyPaths"] = json!([]);
    let (code, out, err) = sh(b, "hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "box1\nexample.org\n1\n123456\n");
}

#[test]
fn failing_mount_names_the_mount_and_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let mut b = Bundle::new();
    b.config_mut()["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}));
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    // runc's words (1.1.5 through 1.5): `error mounting "none" to rootfs at
    // "/x": no such device` (quotes escaped in the log line).
    let err = err.replace("\\\"", "\"");
    assert!(
        err.contains(r#"error mounting "none" to rootfs at "/x""#)
            && err.to_lowercase().contains("no such device"),
        "{err}"
    );
    rt.assert_no_leaks(&id, &b);
}

#[test]
fn rootfs_propagation_is_applied_to_the_container_root() {
    if skip_unless_root() {
        return;
    }
    for (mode, shared) in [
        ("rshared", true),
        ("rprivate", false),
        ("", false),
        ("runbindable", false),
    ] {
        let mut b = Bundle::new();
        b.config_mut()["linux"]["rootfsPropagation"] = json!(mode);
        let (code, out, err) = sh(b, "awk '$5 == \"/\"' /proc/self/mountinfo");
        assert_eq!(code, 0, "{err}");
        assert!(!out.is_empty());
        assert_eq!(out.contains("shared:"), shared, "{mode}: {out}");
        assert!(!out.contains("master:"), "{mode}: {out}");
        assert_eq!(
            out.contains("unbindable"),
            mode == "runbindable",
            "{mode}: {out}"
        );
    }
}

/// The bundle's config with /dev bind-mounted from `devdir` instead of a tmpfs,
/// and `devices` as linux.devices.
fn dev_bound_from(b: &mut Bundle, devdir: &std::path::Path, devices: serde_json::Value) {
    let mounts = b.config_mut()["mounts"].as_array_mut().unwrap();
    let dev = mounts
        .iter_mut()
        .find(|m| m["destination"] == "/dev")
        .expect("a /dev mount");
    *dev = json!({"destination": "/dev", "type": "bind", "source": devdir, "options": ["rbind"]});
    b.config_mut()["linux"]["devices"] = devices;
}

#[test]
fn existing_file_at_a_device_path_is_never_replaced() {
    if skip_unless_root() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    // /dev is a directory of the caller's (here the bundle's): a regular file
    // at a device path is the caller's data, not something to unlink.
    let mut b = Bundle::new();
    let devdir = b.path().join("devdir");
    std::fs::create_dir(&devdir).unwrap();
    std::fs::write(devdir.join("precious"), "keep me").unwrap();
    dev_bound_from(
        &mut b,
        &devdir,
        json!([{"path": "/dev/precious", "type": "c", "major": 1, "minor": 3}]),
    );
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/dev/precious") && err.contains("regular file"),
        "{err}"
    );
    let meta = std::fs::symlink_metadata(devdir.join("precious")).unwrap();
    assert!(meta.is_file(), "replaced by {:?}", meta.file_type());
    assert_eq!(std::fs::read(devdir.join("precious")).unwrap(), b"keep me");
    rt.assert_no_leaks(&id, &b);

    // The same node already there (char 1:3) is kept as it is: same inode.
    let mut b = Bundle::new().args(&["true"]);
    let devdir = b.path().join("devdir");
    std::fs::create_dir(&devdir).unwrap();
    let null = devdir.join("null");
    let made = std::process::Command::new("mknod")
        .args([null.to_str().unwrap(), "c", "1", "3"])
        .status()
        .unwrap();
    assert!(made.success());
    let ino = std::fs::metadata(&null).unwrap().ino();
    dev_bound_from(
        &mut b,
        &devdir,
        json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]),
    );
    let (code, _, err) = Runtime::skiff().run_leak_checked(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::metadata(&null).unwrap().ino(),
        ino,
        "node replaced"
    );
}

#[test]
fn device_path_outside_dev_is_refused() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let precious = b.rootfs().join("etc/precious");
    std::fs::create_dir_all(precious.parent().unwrap()).unwrap();
    std::fs::write(&precious, "keep me").unwrap();
    b.config_mut()["linux"]["devices"] = json!([
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
        {"path": "/dev/../etc/precious", "type": "c", "major": 1, "minor": 3}
    ]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("linux.devices") && err.contains("/dev/../etc/precious"),
        "{err}"
    );
    let meta = std::fs::symlink_metadata(&precious).unwrap();
    assert!(meta.is_file(), "replaced by {:?}", meta.file_type());
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
    rt.assert_no_leaks(&id, &b);
}
