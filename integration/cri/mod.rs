//! Kubernetes through containerd's CRI plugin, with skiff as the runtime of a
//! RuntimeClass handler `skiff` (io.containerd.runc.v2 with BinaryName = the
//! skiff under test) beside the default runc handler, driven over the CRI
//! gRPC API the way kubelet drives it (crates.io's k8s-cri, CRI v1).
//!
//! Each test starts its own containerd (config, root, state, sockets under
//! /tmp/skiff-eng-cri*-PID) inside a network namespace the test made and
//! entered with `nsenter --net` (`ip netns exec` would remount /sys and hide
//! the v1 cgroup mounts), with CNI's bridge and host-local IPAM: the bridge,
//! veths and routes live in that namespace, not on the host. The pause and
//! busybox images are made locally and imported with `ctr -n k8s.io`.
//! Every step is checked from the CRI's answer and from the host (/proc,
//! cgroup files), and at the end nothing of the pod may be left: skiff state,
//! cgroups, mounts, network namespace, shim processes.

mod harness;
mod lifecycle;
mod probes;
mod stream;
