#!/bin/sh
# Make a busybox image without any network, for engines to import:
#   DIR/rootfs/        busybox-static and its applets, /etc/passwd and /etc/group
#   DIR/rootfs.tar     the rootfs as one tarball (docker import, podman import)
#   DIR/oci.tar        an OCI image layout archive of it, tagged REF (ctr images import)
# usage: busybox-image.sh DIR REF [CMD-JSON]
# CMD-JSON: the image's Cmd as a JSON array (default ["sh"]); the CRI test's
# pause image is this busybox with a command that waits for a signal.
set -eu
dir=$1
ref=$2
cmd=${3:-'["sh"]'}
here=$(cd "$(dirname "$0")" && pwd)
"$here/../mkbundle.sh" "$dir" true >/dev/null
tar -C "$dir/rootfs" --numeric-owner -cf "$dir/rootfs.tar" .
python3 - "$dir" "$ref" "$cmd" <<'PY'
import hashlib, io, json, os, sys, tarfile

d, ref, cmd = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
layer = open(os.path.join(d, "rootfs.tar"), "rb").read()

def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data

arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
layer_digest, _ = blob(layer)
config = json.dumps({
    "architecture": arch, "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": cmd},
    "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
}).encode()
config_digest, _ = blob(config)
manifest = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": config_digest, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest, "size": len(layer)}],
}).encode()
manifest_digest, _ = blob(manifest)
index = json.dumps({
    "schemaVersion": 2,
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": manifest_digest, "size": len(manifest),
                   "platform": {"architecture": arch, "os": "linux"},
                   "annotations": {"io.containerd.image.name": ref,
                                   "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]}}],
}).encode()

with tarfile.open(os.path.join(d, "oci.tar"), "w") as out:
    def add(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", index)
    for digest, data in ((layer_digest, layer), (config_digest, config), (manifest_digest, manifest)):
        add("blobs/sha256/" + digest.split(":")[1], data)
PY
