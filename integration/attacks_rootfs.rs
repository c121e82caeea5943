//! Attacks on the container's filesystem view (issue 9, items 6-9 and 13),
//! each from a hostile bundle or from inside a container, checked from the
//! host: what the container could see or write, and what the runtime did.

use crate::security::{sh, TempDir};
use crate::support::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::symlink;

fn mounts(b: &mut Bundle) -> &mut Vec<serde_json::Value> {
    b.config_mut()["mounts"].as_array_mut().unwrap()
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
