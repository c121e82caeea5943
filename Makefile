# skiff: build, test, lint, demo and benchmark. Tests, demo and bench need root.

# rustup's toolchain, also when make runs from CI with a minimal PATH.
export PATH := $(HOME)/.cargo/bin:$(PATH)

CARGO ?= cargo
# `skiff --version` prints it on its commit: line, as runc does.
export SKIFF_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)
# The Rust target: musl, or glibc where rustup cannot add musl
# (scripts/rust-target.sh). Every cargo call below and in scripts/ uses it.
export CARGO_BUILD_TARGET := $(shell scripts/rust-target.sh)
SKIFF := ./target/$(CARGO_BUILD_TARGET)/release/skiff

.PHONY: all build deps demo test host-test vm-test vm-image lint bench clean

all: build

build:
	$(CARGO) build --release

deps:
	scripts/install-deps.sh

# A busybox container that says where it runs. `$$` is make's escape for `$`.
demo: deps build
	scripts/mkbundle.sh demo/bundle sh -c 'echo "Hello from skiff: hostname $$(hostname), pid $$$$"; id; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status'
	@[ "$$(id -u)" -eq 0 ] || { echo "make demo: run as root" >&2; exit 1; }
	root=$$(mktemp -d /tmp/skiff-demo.XXXXXX); \
	$(SKIFF) --root "$$root" run --bundle demo/bundle demo-$$$$; rc=$$?; \
	rm -rf "$$root"; exit $$rc

# The host suite, then the VM lane (README.md, "VM lane").
test: host-test vm-test

# Unit tests (no root needed), then black-box tests of the release binary.
host-test: deps build
	$(CARGO) test --release --bins
	$(CARGO) test --release --test integration -- --test-threads=2

# The integration tests inside a Debian 13 guest with systemd and cgroup v2
# (qemu TCG). The guest image is built once per machine and cached in
# /var/cache/skiff-vm. Results: target/vm-lane/. Run a subset with
# `make vm-test VM_TEST_ARGS="cgroups:: lifecycle::"`.
vm-test: deps build
	scripts/vm/lane.sh $(VM_TEST_ARGS)

# Build (or find) the cached guest image and print its directory.
vm-image:
	scripts/vm/build-image.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: build
	scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf demo
