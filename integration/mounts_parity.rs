//! Mount options and mount semantics where skiff must do what runc does
//! (issue 11): the recursive mount attributes, the flags a bind gets, tmpfs
//! modes, binds through dangling symlinks, masked paths. runc 1.1.5
//! (/usr/sbin/runc) runs the same bundle where it is the oracle; where runc
//! 1.2-1.5 changed the behaviour, the expectation names the version.

use crate::support::*;
use serde_json::{json, Value};

/// Run `script` in `b` under `rt`: (exit code, stdout, stderr).
fn run_in(rt: &Runtime, b: &mut Bundle, script: &str) -> (i32, String, String) {
    b.config_mut()["process"]["args"] = json!(["sh", "-c", script]);
    let (st, out, err) = rt.run_container(b);
    (st.code().unwrap_or(-1), out, err)
}

/// The same script under skiff (leak-checked) and, when installed, runc.
fn both(b: &mut Bundle, script: &str) -> (String, Option<String>) {
    let skiff = Runtime::skiff();
    let (code, out, err) = run_in(&skiff, b, script);
    assert_eq!(code, 0, "skiff: {err}");
    let runc = Runtime::runc().map(|rc| {
        let (code, out, err) = run_in(&rc, b, script);
        assert_eq!(code, 0, "runc: {err}");
        out
    });
    (out, runc)
}

fn add_mounts(b: &mut Bundle, ms: &[Value]) {
    b.config_mut()["mounts"]
        .as_array_mut()
        .unwrap()
        .extend(ms.iter().cloned());
}

/// The mount options field of the mountinfo line for `mp`.
fn opts_of<'a>(mountinfo: &'a str, mp: &str) -> &'a str {
    mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(mp))
        .and_then(|l| l.split(' ').nth(5))
        .unwrap_or_else(|| panic!("{mp} not mounted in {mountinfo}"))
}

const WRITABLE: &str = "for d in /data /data/sub /src/sub; do touch $d/f 2>/dev/null && echo $d rw || echo $d ro; done; cat /proc/self/mountinfo";

#[test]
fn rro_makes_the_bind_and_its_submounts_read_only() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    std::fs::create_dir_all(b.rootfs().join("src/sub")).unwrap();
    let src = b.rootfs().join("src");
    // The submount comes from an earlier config mount (inside the
    // container's mount namespace, never the host's).
    add_mounts(
        &mut b,
        &[
            json!({"destination": "/src/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
            json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "rro"]}),
        ],
    );
    let (out, runc) = both(&mut b, WRITABLE);
    for o in [Some(&out), runc.as_ref()].into_iter().flatten() {
        // runc 1.1.5: rro applies MOUNT_ATTR_RDONLY with AT_RECURSIVE to the
        // bind only; the mount it was cloned from stays writable.
        assert!(
            o.starts_with("/data ro\n/data/sub ro\n/src/sub rw\n"),
            "{o}"
        );
        assert!(opts_of(o, "/data/sub").starts_with("ro"), "{o}");
    }
}

#[test]
fn recursive_attributes_apply_to_filesystem_mounts_too() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    add_mounts(
        &mut b,
        &[
            json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["rnoexec", "rnosuid", "rnodev", "nosymfollow", "size=1m"]}),
        ],
    );
    let (out, runc) = both(&mut b, "cat /proc/self/mountinfo");
    let has = |t: &str, want: &str| t.split(',').any(|x| x == want);
    let t = opts_of(&out, "/t");
    for want in ["nosuid", "nodev", "noexec", "nosymfollow"] {
        assert!(has(t, want), "{want} missing: {t}");
    }
    // runc 1.1.5 applies the r* attributes to bind mounts only and silently
    // drops them elsewhere (seen: "rw,relatime,nosymfollow"); skiff applies
    // what the config asks, as the runtime-spec requires. Both agree on the
    // plain nosymfollow.
    if let Some(r) = runc {
        assert!(has(opts_of(&r, "/t"), "nosymfollow"), "{r}");
    }
}

#[test]
fn unknown_bind_options_are_refused_by_name() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    std::fs::create_dir(b.path().join("shared")).unwrap();
    add_mounts(
        &mut b,
        &[
            json!({"destination": "/data", "type": "bind", "source": "shared", "options": ["rbind", "frobnicate"]}),
        ],
    );
    // runc 1.1.5 passes the word to mount(2) as data, which a bind ignores:
    // the option is silently dropped. runtime-spec: "Runtimes MUST generate
    // an error when invalid or unsupported values are encountered."
    let (code, _, err) = run_in(&Runtime::skiff(), &mut b, "true");
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown mount option") && err.contains("frobnicate"),
        "{err}"
    );
}

/// mountinfo's (mount point, options) of the lines under `prefixes`.
fn mount_opts(mountinfo: &str, prefixes: &[&str]) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (mp, opts) = (*f.get(4)?, *f.get(5)?);
            prefixes
                .iter()
                .any(|p| mp == *p || mp.starts_with(&format!("{p}/")))
                .then(|| format!("{mp} {opts}"))
        })
        .collect()
}

#[test]
fn binds_get_exactly_the_flags_asked_for() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    std::fs::create_dir(b.rootfs().join("src")).unwrap();
    let src = b.rootfs().join("src");
    let bind = |dest: &str, opts: &[&str]| json!({"destination": dest, "type": "bind", "source": src, "options": opts});
    add_mounts(
        &mut b,
        &[
            json!({"destination": "/src", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "noatime", "size=1m"]}),
            bind("/d1", &["bind", "ro"]),
            bind("/d2", &["rbind", "nosuid"]),
            bind("/d3", &["rbind", "rw"]),
            bind("/d4", &["rbind", "nodiratime"]),
        ],
    );
    let (out, runc) = both(&mut b, "cat /proc/self/mountinfo");
    let got = mount_opts(&out, &["/d1", "/d2", "/d3", "/d4"]);
    // Seen with runc 1.1.5: a bind with flags is remounted with exactly
    // them (the source's nosuid, nodev, noexec go), atime kept unless an
    // atime flag is named; a bind with no flags (or only "rw") keeps all.
    let want = [
        "/d1 ro,noatime",
        "/d2 rw,nosuid,noatime",
        "/d3 rw,nosuid,nodev,noexec,noatime",
        "/d4 rw,nodiratime,relatime",
    ];
    assert_eq!(got, want, "{out}");
    if let Some(r) = runc {
        assert_eq!(
            mount_opts(&r, &["/d1", "/d2", "/d3", "/d4"]),
            want,
            "runc: {r}"
        );
    }
}

#[test]
fn read_only_dev_is_made_read_only_after_its_submounts() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    for m in b.config_mut()["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    let script = "touch /dev/x 2>/dev/null && echo dev-rw || echo dev-ro; test -c /dev/null && echo null; cat /proc/self/mountinfo";
    let (out, runc) = both(&mut b, script);
    for o in [Some(&out), runc.as_ref()].into_iter().flatten() {
        assert!(o.starts_with("dev-ro\nnull\n"), "{o}");
        assert!(opts_of(o, "/dev").starts_with("ro,"), "{o}");
        assert!(opts_of(o, "/dev/pts").starts_with("rw,"), "{o}");
    }
}

#[test]
fn tmpfs_mode_explicit_else_inherited_else_1777() {
    if skip_unless_root() {
        return;
    }
    // A fresh bundle per runtime: the first run leaves /c and /e behind.
    let script = "stat -c '%n %a' /a /b /c /e";
    let (code, out, err) = run_in(&Runtime::skiff(), &mut tmpfs_mode_bundle(), script);
    assert_eq!(code, 0, "{err}");
    // runc 1.2.0+ (opencontainers/runc#3912, in 1.1 from #3916; #4973 for
    // "only when the directory existed"): no mode= over an existing
    // directory inherits its mode, an explicit mode= wins, a directory the
    // runtime creates gets tmpfs's 1777.
    assert_eq!(out, "/a 710\n/b 750\n/c 1777\n/e 700\n");
    // runc 1.1.5 chmods the tmpfs to the directory's mode even over an
    // explicit mode= (the bug #3912 fixed): /b is 710 there; runc 1.1.15
    // (the VM lane's) has the fix backported and shows 750.
    if let Some(rc) = Runtime::runc() {
        let (code, r, err) = run_in(&rc, &mut tmpfs_mode_bundle(), script);
        assert_eq!(code, 0, "{err}");
        assert!(
            r == "/a 710\n/b 710\n/c 1777\n/e 700\n" || r == "/a 710\n/b 750\n/c 1777\n/e 700\n",
            "runc: {r}"
        );
    }
}

fn tmpfs_mode_bundle() -> Bundle {
    let mut b = Bundle::new();
    for d in ["a", "b"] {
        let p = b.rootfs().join(d);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o710)).unwrap();
    }
    let tmpfs = |dest: &str, opts: &[&str]| json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts});
    add_mounts(
        &mut b,
        &[
            tmpfs("/a", &["size=1m"]),
            tmpfs("/b", &["size=1m", "mode=750"]),
            tmpfs("/c", &["size=1m"]),
            tmpfs("/e", &["size=1m", "mode=700"]),
        ],
    );
    b
}

#[test]
fn binds_through_dangling_symlinks_create_the_target() {
    if skip_unless_root() {
        return;
    }
    let make = || {
        let mut b = Bundle::new();
        std::fs::create_dir(b.path().join("srcdir")).unwrap();
        std::fs::write(b.path().join("srcdir/f"), "dir\n").unwrap();
        std::fs::write(b.path().join("srcfile"), "file\n").unwrap();
        std::os::unix::fs::symlink("/missing/dir", b.rootfs().join("ldir")).unwrap();
        std::os::unix::fs::symlink("../nothere/file", b.rootfs().join("lfile")).unwrap();
        add_mounts(
            &mut b,
            &[
                json!({"destination": "/ldir", "type": "bind", "source": "srcdir", "options": ["rbind"]}),
                json!({"destination": "/lfile", "type": "bind", "source": "srcfile", "options": ["rbind"]}),
            ],
        );
        b
    };
    let script = "cat /ldir/f /lfile /missing/dir/f /nothere/file";
    // Seen with runc 1.1.5: the destination is resolved in the rootfs and
    // the missing target of the link is created, the mount lands there.
    let want = "dir\nfile\ndir\nfile\n";
    let (code, out, err) = run_in(&Runtime::skiff(), &mut make(), script);
    assert_eq!((code, out.as_str()), (0, want), "{err}");
    if let Some(rc) = Runtime::runc() {
        let (code, out, err) = run_in(&rc, &mut make(), script);
        assert_eq!((code, out.as_str()), (0, want), "runc: {err}");
    }
}

#[test]
fn masked_directories_share_one_tmpfs_and_duplicates_are_fine() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    b.config_mut()["linux"]["maskedPaths"] = json!([
        "/sys/firmware",
        "/proc/acpi",
        "/sys/firmware",
        "/proc/keys",
        "/proc/keys"
    ]);
    let (code, out, err) = run_in(
        &Runtime::skiff(),
        &mut b,
        "stat -c %d /sys/firmware /proc/acpi; ls /sys/firmware | wc -l; wc -c < /proc/keys",
    );
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().map(str::trim).collect();
    // runc 1.5: masked directories are clones of one read-only tmpfs (one
    // device number); runc 1.1.5 mounts a tmpfs per directory.
    assert_eq!(l.len(), 4, "{out}");
    assert_eq!(l[0], l[1], "one tmpfs for every masked directory: {out}");
    assert_eq!(&l[2..], ["0", "0"], "{out}");
}
