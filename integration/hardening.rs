//! One test per runc advisory class: each mounts the attack against skiff
//! and checks that it fails, from where the attacker or the host would see it.
//! Tests that could damage the host if the defence failed work on private
//! copies (the runtime binary) or restore what they watch (core_pattern).

use crate::security::{all_cap_names, bind, run, set_caps, sh, wait_for, TempDir};
use crate::support::*;
use serde_json::json;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---------------------------------------------------------------------------
// CVE-2019-5736: the runtime binary from inside the container

fn sha(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap()
}

/// A private copy of the binary under test, so a failed defence overwrites
/// only the copy.
fn private_runtime(dir: &Path) -> (Runtime, PathBuf) {
    let copy = dir.join("skiff");
    fs::copy(skiff_bin(), &copy).unwrap();
    (Runtime::with_binary(&copy), copy)
}

#[test]
fn init_runs_from_a_sealed_copy_not_the_host_binary() {
    if skip_unless_root() {
        return;
    }
    // Both ways skiff seals itself: a lower-only overlayfs view (the default
    // when it can mount) and a sealed memfd copy.
    for mode in ["default", "memfd"] {
        let dir = TempDir::new("exe");
        let b = Bundle::new().args(&["true"]);
        b.flush();
        let (rt, bin) = private_runtime(dir.path());
        let before = sha(&bin);
        let id = rt.new_id();
        let mut cmd = rt.command();
        cmd.args(["create", "--bundle", b.path_str(), &id]);
        if mode == "memfd" {
            cmd.env("SKIFF_SEALED_EXE", "memfd");
        }
        rt.output(cmd).assert_success("create");
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        let exe = format!("/proc/{pid}/exe");
        let link = fs::read_link(&exe).unwrap();
        assert_ne!(link, bin, "{mode}: init runs the host binary");
        if mode == "memfd" {
            assert!(
                link.to_string_lossy().starts_with("/memfd:"),
                "{mode}: {link:?}"
            );
        }
        use std::os::unix::fs::MetadataExt;
        let (a, h) = (fs::metadata(&exe).unwrap(), fs::metadata(&bin).unwrap());
        assert!(
            a.dev() != h.dev() || a.ino() != h.ino(),
            "{mode}: init is the host binary"
        );
        assert!(
            fs::read(&exe).unwrap() == before,
            "{mode}: init is not our binary"
        );
        // The CVE-2019-5736 sequence from the host side: hold the file open
        // while init runs, then write through it once init has exec'd.
        let held = fs::File::open(&exe).unwrap();
        assert!(fs::OpenOptions::new().write(true).open(&exe).is_err());
        rt.start(&id).assert_success("start");
        rt.wait_for_status(&id, "stopped", Duration::from_secs(10));
        let again = format!("/proc/self/fd/{}", held.as_raw_fd());
        // memfd: opening for append works, writing does not (EPERM);
        // overlay: no open for writing at all (EROFS).
        if let Ok(mut f) = fs::OpenOptions::new().append(true).open(&again) {
            use std::io::Write;
            let e = f.write_all(b"#!/bin/sh\necho pwned\n").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{mode}: {e}");
        }
        assert!(fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&again)
            .is_err());
        assert!(sha(&bin) == before, "{mode}: the runtime binary changed");
        rt.delete(&id).assert_success("delete");
    }
}

#[test]
fn container_cannot_overwrite_the_runtime_through_proc_exe() {
    if skip_unless_root() {
        return;
    }
    // Container A is created (its init, the runtime, waits for `start`);
    // container B shares A's PID namespace and holds every capability, so it
    // can open /proc/1/exe. B keeps that open while A starts (init execs
    // `sleep`, the file is no longer busy), then tries to write through it.
    for mode in ["default", "memfd"] {
        proc_exe_attack(mode);
    }
}

/// `mode`: how the runtime seals itself (see init_runs_from_a_sealed_copy...).
fn proc_exe_attack(mode: &str) {
    let dir = TempDir::new("5736");
    let shared = TempDir::new("5736-shared");
    fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let a = Bundle::new().args(&["sleep", "30"]);
    let script = "exec 3</proc/1/exe || { echo open-failed > /shared/result; exit 2; }; \
        readlink /proc/1/exe > /shared/link; touch /shared/opened; i=0; \
        while [ ! -e /shared/go ]; do usleep 20000; i=$((i+1)); [ $i -gt 500 ] && exit 3; done; \
        { echo pwned >> /proc/self/fd/3; echo append=$?; echo pwned > /proc/self/fd/3; echo trunc=$?; } \
          > /shared/result 2>&1; touch /shared/done";
    let mut bb = sh(script);
    let (rt, bin) = private_runtime(dir.path());
    let before = sha(&bin);
    let ida = rt.new_id();
    a.flush();
    let mut cmd = rt.command();
    cmd.args(["create", "--bundle", a.path_str(), &ida]);
    if mode == "memfd" {
        cmd.env("SKIFF_SEALED_EXE", "memfd");
    }
    rt.output(cmd).assert_success("create A");
    let apid = rt.state(&ida)["pid"].as_i64().unwrap();
    let all = json!(all_cap_names());
    set_caps(
        &mut bb,
        json!({"bounding": all, "permitted": all, "effective": all}),
    );
    bind(&mut bb, shared.path(), "/shared");
    for ns in bb.config_mut()["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
    {
        if ns["type"] == "pid" {
            ns["path"] = json!(format!("/proc/{apid}/ns/pid"));
        }
    }
    let idb = rt.new_id();
    rt.create(&idb, &bb).assert_success("create B");
    rt.start(&idb).assert_success("start B");
    assert!(
        wait_for(&shared.path().join("opened"), Duration::from_secs(10)),
        "B did not open /proc/1/exe: {:?}",
        fs::read_to_string(shared.path().join("result"))
    );
    let link = fs::read_to_string(shared.path().join("link")).unwrap();
    assert_ne!(
        link.trim(),
        bin.to_str().unwrap(),
        "A's init, seen from B, is the host binary"
    );
    rt.start(&ida).assert_success("start A");
    fs::write(shared.path().join("go"), "").unwrap();
    assert!(
        wait_for(&shared.path().join("done"), Duration::from_secs(10)),
        "B did not finish"
    );
    let result = fs::read_to_string(shared.path().join("result")).unwrap();
    assert!(
        result.contains("append=1") && result.contains("trunc=1"),
        "{mode}: {result}"
    );
    assert!(
        sha(&bin) == before,
        "the runtime binary was overwritten: {result}"
    );
    for id in [&ida, &idb] {
        rt.kill(id, "KILL");
    }
    for id in [&idb, &ida] {
        rt.wait_for_status(id, "stopped", Duration::from_secs(10));
        rt.delete(id).assert_success("delete");
    }
}

// ---------------------------------------------------------------------------
// CVE-2024-21626: host fds and the host working directory

#[test]
fn no_host_fd_or_cwd_reaches_the_container() {
    if skip_unless_root() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let host_dir = TempDir::new("21626");
    fs::write(host_dir.path().join("host-secret"), "x").unwrap();
    // Judged from the host, on the container process itself: a shell listing
    // its own fds would show its own pipes and saved descriptors.
    let b = sh("sleep 30");
    b.flush();
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let mut cmd = rt.command();
    cmd.args(["run", "--detach", "--bundle", b.path_str(), &id]);
    // The caller leaks a host directory at fd 5 and 9 (no CLOEXEC) and runs
    // the runtime from a host directory.
    let d = fs::File::open(host_dir.path()).unwrap();
    let raw = d.as_raw_fd();
    cmd.current_dir(host_dir.path());
    // SAFETY: dup2 between fork and exec, on fds we own.
    unsafe {
        cmd.pre_exec(move || {
            for to in [5, 9] {
                if libc::dup2(raw, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let out = rt.output(cmd);
    out.assert_success("run with leaked fds");
    let pid = rt.wait_for_status(&id, "running", Duration::from_secs(5))["pid"]
        .as_i64()
        .unwrap();
    let mut fds: Vec<u32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    fds.sort();
    assert_eq!(fds, [0, 1, 2], "fds of the container process");
    // The cwd is the container's root directory itself (same inode), not the
    // caller's directory.
    use std::os::unix::fs::MetadataExt;
    let cwd = fs::metadata(format!("/proc/{pid}/cwd")).unwrap();
    let root = fs::metadata(format!("/proc/{pid}/root")).unwrap();
    let host = fs::metadata(host_dir.path()).unwrap();
    assert_eq!((cwd.dev(), cwd.ino()), (root.dev(), root.ino()));
    assert_ne!((cwd.dev(), cwd.ino()), (host.dev(), host.ino()));
    rt.kill(&id, "KILL");
}

#[test]
fn cwd_through_a_leaked_fd_is_refused() {
    if skip_unless_root() {
        return;
    }
    // runc's CVE-2024-21626: process.cwd /proc/self/fd/N, N an fd of the
    // runtime that points at a host directory. Whatever N, the process must
    // not start outside its root.
    for n in 3..=12 {
        let mut b = Bundle::new().args(&["/bin/pwd"]);
        b.config_mut()["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let (code, out, err) = run(&b);
        if code == 0 {
            assert!(
                out.starts_with('/') && !out.contains("unreachable"),
                "fd {n}: {out}"
            );
            assert!(!out.starts_with("/proc/self/fd"), "fd {n}: {out}");
        } else {
            assert!(err.contains("cwd"), "fd {n}: {err}");
        }
    }
}

// ---------------------------------------------------------------------------
// CVE-2021-30465 and friends: mount destinations through symlinks

fn host_mounts() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

#[test]
fn symlinked_mount_destinations_stay_in_the_rootfs() {
    if skip_unless_root() {
        return;
    }
    let target = format!("skiff-escape-{}", std::process::id());
    let outside = TempDir::new("30465-outside");
    let mut b = sh(&format!(
        "ls -d /{target} /inside/{target} 2>&1; grep -c {target} /proc/self/mountinfo"
    ));
    let r = b.rootfs();
    // An absolute symlink to / and a relative one climbing far above the rootfs.
    std::os::unix::fs::symlink("/", r.join("abs")).unwrap();
    let climb = format!("../../../../../../../..{}", outside.path().display());
    std::os::unix::fs::symlink(&climb, r.join("climb")).unwrap();
    // The directory the climbing link names, as it exists inside the rootfs.
    let climbed_dir = r.join(outside.path().strip_prefix("/").unwrap());
    fs::create_dir_all(&climbed_dir).unwrap();
    fs::create_dir(r.join("inside")).unwrap();
    let mounts = b.config_mut()["mounts"].as_array_mut().unwrap();
    mounts
        .push(json!({"destination": format!("/abs/{target}"), "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(
        json!({"destination": format!("/climb/{target}"), "type": "tmpfs", "source": "tmpfs"}),
    );
    let before = host_mounts();
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &b).assert_success("create");
    // While the container exists: nothing on the host.
    assert!(
        !Path::new(&format!("/{target}")).exists(),
        "created /{target} on the host"
    );
    assert!(
        !outside.path().join(&target).exists(),
        "created a directory outside the rootfs"
    );
    assert_eq!(
        host_mounts().matches(&target).count(),
        before.matches(&target).count()
    );
    // Inside, both landed under the rootfs.
    assert!(r.join(&target).is_dir());
    assert!(climbed_dir.join(&target).is_dir(), "{climbed_dir:?}");
    rt.delete_force(&id);
}

#[test]
fn mount_destination_swapped_for_a_symlink_does_not_escape() {
    if skip_unless_root() {
        return;
    }
    // The race of CVE-2021-30465: while containers are created, another
    // party (here a thread; there, a container sharing the volume) swaps a
    // directory on the mount path for a symlink to "/" and back.
    let target = format!("skiff-race-{}", std::process::id());
    let b = Bundle::new().args(&["true"]);
    let vol = b.rootfs().join("vol");
    fs::create_dir_all(vol.join("dir")).unwrap();
    let mut b = b;
    b.config_mut()["mounts"].as_array_mut().unwrap().push(
        json!({"destination": format!("/vol/dir/{target}"), "type": "tmpfs", "source": "tmpfs"}),
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let vol = vol.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::rename(vol.join("dir"), vol.join("real"));
                let _ = std::os::unix::fs::symlink("/", vol.join("dir"));
                std::thread::yield_now();
                let _ = fs::remove_file(vol.join("dir"));
                let _ = fs::rename(vol.join("real"), vol.join("dir"));
            }
        })
    };
    let rt = Runtime::skiff();
    for _ in 0..25 {
        let id = rt.new_id();
        let _ = rt.run_container_as(&id, &b);
        assert!(
            !Path::new(&format!("/{target}")).exists(),
            "mounted over the host's /"
        );
        assert!(
            !host_mounts().contains(&target),
            "a mount leaked to the host"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
}

// ---------------------------------------------------------------------------
// CVE-2025-31133: /dev/null used for masking

/// A bundle whose /dev comes from the image (no tmpfs /dev mount).
fn image_dev_bundle(script: &str) -> Bundle {
    let mut b = sh(script);
    let mounts = b.config_mut()["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| {
        m["destination"] != "/dev"
            && m["destination"] != "/dev/pts"
            && m["destination"] != "/dev/shm"
            && m["destination"] != "/dev/mqueue"
    });
    b
}

#[test]
fn dev_null_symlink_is_not_used_for_masking() {
    if skip_unless_root() {
        return;
    }
    let core = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    for evil in ["symlink", "file"] {
        let b = image_dev_bundle("echo '|/tmp/evil' > /proc/timer_list; echo wrote=$?; cat /proc/timer_list | head -c 40");
        let null = b.rootfs().join("dev/null");
        match evil {
            "symlink" => {
                std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", &null).unwrap()
            }
            _ => fs::write(&null, "not a device").unwrap(),
        }
        let (code, out, err) = run(&b);
        let after = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
        if after != core {
            let _ = fs::write("/proc/sys/kernel/core_pattern", &core);
        }
        assert_eq!(
            after, core,
            "host core_pattern changed via a /dev/null {evil}"
        );
        assert_ne!(code, 0, "{evil}: masking went ahead: {out}");
        assert!(err.contains("/dev/null"), "{evil}: {err}");
    }
}

// ---------------------------------------------------------------------------
// CVE-2025-52565: /dev/console

#[test]
fn dev_console_symlink_does_not_redirect_the_console_mount() {
    if skip_unless_root() {
        return;
    }
    let core = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let dir = TempDir::new("console");
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b =
        image_dev_bundle("echo '|/tmp/evil' > /dev/console; tty; readlink /dev/console; echo done");
    b.config_mut()["process"]["terminal"] = json!(true);
    b.config_mut()["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
    );
    std::os::unix::fs::symlink(
        "/proc/sys/kernel/core_pattern",
        b.rootfs().join("dev/console"),
    )
    .unwrap();
    fs::create_dir_all(b.rootfs().join("dev/pts")).unwrap();
    b.flush();
    let reader = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (_, master) = recv_console(&conn);
        let mut f = fs::File::from(master);
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    });
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.run(&[
        "run",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.path_str(),
        &id,
    ]);
    let after = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    if after != core {
        let _ = fs::write("/proc/sys/kernel/core_pattern", &core);
    }
    assert_eq!(
        after, core,
        "host core_pattern written through /dev/console"
    );
    if out.status.success() {
        let tty = reader.join().unwrap();
        assert!(tty.contains("/dev/pts/"), "{tty}");
    }
}

/// The console socket protocol: one message with the master fd.
fn recv_console(conn: &std::os::unix::net::UnixStream) -> (Vec<u8>, OwnedFd) {
    let (data, fds) = recv_with_fds(conn);
    (data, fds.into_iter().next().expect("no master fd"))
}

// ---------------------------------------------------------------------------
// CVE-2025-52881: writes to /proc redirected by mounts

#[test]
fn procfs_writes_cannot_be_redirected_by_mounts() {
    if skip_unless_root() {
        return;
    }
    // A config that binds the host's (global) core_pattern over the sysctl
    // file skiff writes, and over the container's oom_score_adj: the runtime
    // must write the real files, never what the mounts put there.
    let core = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let decoy = TempDir::new("52881");
    fs::write(decoy.path().join("shmmax"), "decoy\n").unwrap();
    let mut b = sh("cat /proc/sys/kernel/shmmax; cat /proc/sys/kernel/msgmax");
    b.config_mut()["linux"]["sysctl"] = json!({"kernel.shmmax": "424242", "kernel.msgmax": "9999"});
    b.config_mut()["process"]["oomScoreAdj"] = json!(123);
    let mounts = b.config_mut()["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/proc/sys/kernel/shmmax", "type": "bind",
                       "source": "/proc/sys/kernel/core_pattern", "options": ["bind"]}),
    );
    mounts.push(
        json!({"destination": "/proc/sys/kernel/msgmax", "type": "bind",
                       "source": decoy.path().join("shmmax"), "options": ["bind"]}),
    );
    mounts.push(
        json!({"destination": "/proc/1/oom_score_adj", "type": "bind",
                       "source": "/proc/sys/kernel/core_pattern", "options": ["bind"]}),
    );
    let (code, out, err) = run(&b);
    let after = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    if after != core {
        let _ = fs::write("/proc/sys/kernel/core_pattern", &core);
    }
    assert_eq!(after, core, "host core_pattern was written: {out} {err}");
    assert_eq!(
        fs::read_to_string(decoy.path().join("shmmax")).unwrap(),
        "decoy\n",
        "decoy written"
    );
    // Either the mounts are refused, or the container runs with the real values
    // written behind them.
    if code == 0 {
        assert!(
            out.lines().next().is_some_and(|l| l.trim() == core.trim()),
            "{out}"
        );
    }
}

// ---------------------------------------------------------------------------
// Masked and read-only paths from inside

#[test]
fn masked_and_readonly_paths_cannot_be_unmasked_or_remounted() {
    if skip_unless_root() {
        return;
    }
    let b = sh(
        "umount /proc/timer_list; echo u1=$?; umount -l /sys/firmware; echo u2=$?; \
         mount -o remount,rw /proc/sys; echo r1=$?; mount -o remount,rw,bind /proc/sys; echo r2=$?; \
         mount -t proc proc /mnt 2>/dev/null; echo p=$?; mount --bind /proc /mnt; echo b=$?; \
         echo 1 > /proc/sys/kernel/shmmax; echo w=$?; echo x > /proc/sysrq-trigger; echo s=$?; \
         echo timer=$(wc -c < /proc/timer_list) firmware=$(ls /sys/firmware | wc -l)",
    );
    fs::create_dir_all(b.rootfs().join("mnt")).unwrap();
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    for attempt in ["u1", "u2", "r1", "r2", "p", "b", "w", "s"] {
        assert!(
            !out.contains(&format!("{attempt}=0")),
            "{attempt} succeeded:\n{out}\n{err}"
        );
    }
    assert!(out.contains("timer=0 firmware=0"), "{out}");
}
