//! Idmapped mounts (issue 11): `mounts[].uidMappings/gidMappings` and the
//! `idmap`/`ridmap` options. runc 1.1.5 has none of it (it passes `idmap`
//! to a bind as data, which the bind ignores, and drops the mappings), so
//! every expectation here is runc 1.2's, from its tests/integration/
//! idmap.bats and libcontainer/configs/validate (checkIDMapMounts): a file
//! the source records as owned by N shows as the id N maps to through the
//! mount's mappings, then as the container sees that host id.
//!
//! Sources live in the bundle, on the host's /tmp (ext4 here, ext4 or tmpfs
//! in the VM lane: both support idmapped mounts).

use crate::support::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{chown, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The container's user namespace of runc's idmap tests: 0 -> 100000.
fn user_namespace(b: &mut Bundle) {
    let c = b.config_mut();
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

fn map(container: u32, host: u32, size: u32) -> Value {
    json!([{"containerID": container, "hostID": host, "size": size}])
}

/// `<bundle>/<name>` with `a` owned 0:0 and `b` owned 1000:1001 on disk.
fn source(b: &Bundle, name: &str) -> PathBuf {
    let dir = b.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    for (f, uid, gid) in [("a", 0, 0), ("b", 1000, 1001)] {
        fs::write(dir.join(f), f).unwrap();
        chown(dir.join(f), Some(uid), Some(gid)).unwrap();
    }
    dir
}

fn bind(src: &Path, dest: &str, options: &[&str]) -> Value {
    json!({"source": src, "destination": dest, "type": "bind", "options": options})
}

/// Adds `m`, with its mount point made in the rootfs beforehand: the
/// container's root (host uid 100000) may not create it in a rootfs that
/// belongs to the host's root.
fn add_mount(b: &mut Bundle, m: Value) {
    if let Some(d) = m["destination"].as_str() {
        fs::create_dir_all(b.rootfs().join(d.trim_start_matches('/'))).unwrap();
    }
    b.config_mut()["mounts"].as_array_mut().unwrap().push(m);
}

/// `stat -c %n=%u:%g` of `paths` inside the container, leak-checked.
fn stat_in(b: &mut Bundle, paths: &[&str]) -> String {
    let script = format!("stat -c %n=%u:%g {}", paths.join(" "));
    b.config_mut()["process"]["args"] = json!(["sh", "-c", script]);
    let rt = Runtime::skiff();
    let (code, out, err) = rt.run_leak_checked(b);
    assert_eq!(code, 0, "stat in the container failed: {err}");
    out
}

fn assert_owners(out: &str, want: &[&str]) {
    for w in want {
        assert!(
            out.lines().any(|l| l == *w),
            "expected {w:?} in the container's stat output:\n{out}"
        );
    }
}

/// runc 1.2 "simple idmap mount [userns]" and "idmap mount (idmap flag,
/// implied mapping)": `idmap` without mappings of its own takes the
/// container's, so the source's own ids show unchanged inside (a plain bind
/// of the same source shows them unmapped: the overflow id), and a file the
/// container's root creates is root's on disk.
#[test]
fn idmap_uses_the_container_mappings() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    user_namespace(&mut b);
    let src = source(&b, "src");
    add_mount(&mut b, bind(&src, "/idm", &["bind", "idmap"]));
    add_mount(&mut b, bind(&src, "/plain", &["bind"]));
    let script = "touch /idm/new && stat -c %n=%u:%g /idm/a /idm/b /plain/a";
    b.config_mut()["process"]["args"] = json!(["sh", "-c", script]);
    let rt = Runtime::skiff();
    let (code, out, err) = rt.run_leak_checked(&b);
    assert_eq!(code, 0, "{err}");
    assert_owners(
        &out,
        &["/idm/a=0:0", "/idm/b=1000:1001", "/plain/a=65534:65534"],
    );
    let new = fs::metadata(src.join("new")).unwrap();
    assert_eq!(
        (new.uid(), new.gid()),
        (0, 0),
        "owner on disk of a file made through the idmapped mount"
    );
}

/// runc 1.2 "idmap mount (complicated mapping) [userns]": mappings of the
/// mount's own, other than the container's. On disk 0 -> host 101000 ->
/// 1000 in the container; gid 0 -> 102000 -> 2000.
#[test]
fn own_mappings_differ_from_the_containers() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    user_namespace(&mut b);
    let src = source(&b, "src");
    let mut m = bind(&src, "/own", &["bind"]);
    m["uidMappings"] = map(0, 101000, 2000);
    m["gidMappings"] = map(0, 102000, 2000);
    add_mount(&mut b, m);
    let out = stat_in(&mut b, &["/own/a", "/own/b"]);
    assert_owners(&out, &["/own/a=1000:2000", "/own/b=2000:3001"]);
}

/// runc 1.2 "multiple idmap mounts (different mappings) [no userns]": several
/// mounts of one source, each with its own mappings, in a container without
/// a user namespace (where host ids are the container's).
#[test]
fn several_mounts_with_different_mappings_without_userns() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    let src = source(&b, "src");
    for (dest, u, g) in [("/m1", 5000, 5000), ("/m2", 7000, 8000)] {
        let mut m = bind(&src, dest, &["bind"]);
        m["uidMappings"] = map(0, u, 2000);
        m["gidMappings"] = map(0, g, 2000);
        add_mount(&mut b, m);
    }
    add_mount(&mut b, bind(&src, "/plain", &["bind"]));
    let out = stat_in(&mut b, &["/m1/a", "/m1/b", "/m2/a", "/m2/b", "/plain/b"]);
    assert_owners(
        &out,
        &[
            "/m1/a=5000:5000",
            "/m1/b=6000:6001",
            "/m2/a=7000:8000",
            "/m2/b=8000:9001",
            "/plain/b=1000:1001",
        ],
    );
}

/// runc 1.2 "idmap mount (idmap flag)" and "(ridmap flag) [userns]": with
/// `rbind` the whole tree is cloned, `idmap` maps its top mount only (files
/// of a submount show unmapped: the overflow id), `ridmap` every mount. The
/// submount is a tmpfs made in a private mount namespace the runtime runs
/// in, never on the host.
#[test]
fn ridmap_maps_submounts_and_idmap_does_not() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    user_namespace(&mut b);
    let src = source(&b, "tree");
    fs::create_dir(src.join("sub")).unwrap();
    add_mount(&mut b, bind(&src, "/ti", &["rbind", "idmap"]));
    add_mount(&mut b, bind(&src, "/tr", &["rbind", "ridmap"]));
    let script = "stat -c %n=%u:%g /ti/a /ti/sub/c /tr/a /tr/sub/c";
    b.config_mut()["process"]["args"] = json!(["sh", "-c", script]);
    b.flush();
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let sub = src.join("sub");
    let setup = format!(
        "mount -t tmpfs -o mode=755 idmap-sub {s} && echo c > {s}/c && chown 7:8 {s}/c && exec \"$0\" --root \"$1\" run --bundle \"$2\" \"$3\"",
        s = sub.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &setup])
        .arg(rt.bin())
        .arg(rt.root())
        .arg(b.path())
        .arg(&id);
    let out = rt.output(cmd);
    out.assert_success("run with a submount in the source");
    assert_owners(
        &out.stdout_text(),
        &[
            "/ti/a=0:0",
            "/ti/sub/c=65534:65534",
            "/tr/a=0:0",
            "/tr/sub/c=7:8",
        ],
    );
    rt.assert_no_leaks(&id, &b);
}

/// `run` of a bundle (with a container user namespace when `userns`) with
/// the mount `make` returns: refused, the message naming the mount, the
/// field and runc's words, nothing left behind.
fn assert_refused(userns: bool, make: impl Fn(&Bundle) -> Value, field: &str, words: &str) {
    let mut b = Bundle::new();
    if userns {
        user_namespace(&mut b);
    }
    let m = make(&b);
    add_mount(&mut b, m);
    b.config_mut()["process"]["args"] = json!(["true"]);
    let n = b.config()["mounts"].as_array().unwrap().len() - 1;
    let rt = Runtime::skiff();
    let (code, _, err) = rt.run_leak_checked(&b);
    assert_eq!(code, 1, "must be refused: {err}");
    let want = format!("mounts[{n}] (/t): {field}: {words}");
    assert!(err.contains(&want), "expected {want:?} in: {err}");
}

/// What runc 1.2's validator refuses, with the field named: a non-bind
/// mount, and idmapping without both uid and gid mappings (none of the
/// mount's own and no container user namespace to take them from, or only
/// uidMappings).
#[test]
fn refusals_name_the_field() {
    if skip_unless_root() {
        return;
    }
    let bind_only = "id-mapped mounts are only supported for bind-mounts";
    let both = "id-mapped mounts must have both uid and gid mappings specified";
    let tmpfs = |_: &Bundle| json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]});
    assert_refused(true, tmpfs, "option idmap", bind_only);
    let no_maps = |b: &Bundle| bind(&source(b, "s"), "/t", &["bind", "idmap"]);
    assert_refused(false, no_maps, "option idmap", both);
    let uid_only = |b: &Bundle| {
        let mut m = bind(&source(b, "s"), "/t", &["rbind"]);
        m["uidMappings"] = map(0, 1000, 10);
        m
    };
    assert_refused(true, uid_only, "uidMappings/gidMappings", both);
}

/// The source's own flags stay locked in a container with a user namespace,
/// as for any mount the container inherits: runc 1.2 clones the source in
/// the container's mount namespace, where the kernel locked them, so the
/// container's root cannot remount a read-only source read-write. An `ro`
/// the config asks for is the container's own and can be undone (the same
/// under runc, which applies it from inside the user namespace). The
/// read-only source is a bind made in a private mount namespace the runtime
/// runs in, never on the host.
#[test]
fn source_flags_stay_locked_in_a_user_namespace() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new();
    user_namespace(&mut b);
    let caps = json!(["CAP_SYS_ADMIN"]);
    b.config_mut()["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let ro_src = source(&b, "rosrc");
    let rw_src = source(&b, "rwsrc");
    add_mount(&mut b, bind(&ro_src, "/locked", &["bind", "idmap"]));
    add_mount(&mut b, bind(&rw_src, "/mine", &["bind", "idmap", "ro"]));
    let script = "for d in /locked /mine; do \
        touch $d/f 2>/dev/null && echo $d writable || echo $d read-only; \
        mount -o remount,bind,rw $d 2>/dev/null && echo $d remounted || echo $d locked; done";
    b.config_mut()["process"]["args"] = json!(["sh", "-c", script]);
    b.flush();
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let setup = format!(
        "mount --bind {s} {s} && mount -o remount,bind,ro {s} && exec \"$0\" --root \"$1\" run --bundle \"$2\" \"$3\"",
        s = ro_src.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &setup])
        .arg(rt.bin())
        .arg(rt.root())
        .arg(b.path())
        .arg(&id);
    let out = rt.output(cmd);
    out.assert_success("run with a read-only source");
    let text = out.stdout_text();
    for want in [
        "/locked read-only",
        "/locked locked",
        "/mine read-only",
        "/mine remounted",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "expected {want:?} in:\n{text}"
        );
    }
    rt.assert_no_leaks(&id, &b);
}
