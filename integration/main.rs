//! Black-box tests of the built `skiff` binary, one module per area.
//!
//! They need root (namespaces, mounts, cgroups); as another user every test
//! returns early after saying so. See integration/README.md.

mod attacks_ops;
// The seccomp tests link Debian's libseccomp.a too, which needs glibc's
// __fprintf_chk on a musl build (see the file).
mod attacks_rootfs;
mod cgroup_update;
mod cgroups;
mod checkpoint;
mod checkpoint_engines;
mod corpus;
mod cri;
mod differential;
mod engines;
mod exec_tty;
#[cfg(target_env = "musl")]
#[path = "../src/sys/fortify_shim.rs"]
mod fortify_shim;
mod hardening;
mod idmap;
mod init_rule;
mod lifecycle;
mod memory_limit;
mod mounts_parity;
mod netdev;
mod parity;
mod parity2;
mod parity3;
mod process;
mod rootfs;
mod rootless;
mod seccomp;
mod security;
mod support;
mod systemd;
mod timing;
mod validate;
