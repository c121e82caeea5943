//! A bounded, deterministic fuzzer over config loading and validation, run by
//! `cargo test` (and so by `make test`): no nightly toolchain or cargo-fuzz
//! needed. From a set of seed configs it makes mutants two ways, byte-level
//! (bit flips, splices, inserted tokens: mostly invalid JSON that must be
//! refused cleanly) and structural (valid JSON with fields replaced, removed
//! or added with hostile values: the inputs that reach validation), and
//! drives each through everything that runs on a config before init starts:
//! parsing into the spec types, `spec::validate`, `spec::load` (for a
//! sample, through a real bundle file), the security preflight, the
//! capability plan and the seccomp compiler. Any panic fails the test and
//! prints the input. SKIFF_FUZZ_ITERS raises the iteration count for longer
//! runs.

use crate::security::{capabilities, seccomp, task};
use crate::spec;
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Field names of the spec (so structural mutants hit real fields) and the
/// values that tend to break parsers and validators.
const KEYS: &[&str] = &[
    "ociVersion",
    "process",
    "root",
    "mounts",
    "linux",
    "hooks",
    "hostname",
    "domainname",
    "args",
    "env",
    "cwd",
    "user",
    "uid",
    "gid",
    "umask",
    "additionalGids",
    "capabilities",
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
    "rlimits",
    "type",
    "soft",
    "hard",
    "noNewPrivileges",
    "oomScoreAdj",
    "apparmorProfile",
    "selinuxLabel",
    "scheduler",
    "policy",
    "nice",
    "priority",
    "flags",
    "runtime",
    "deadline",
    "period",
    "ioPriority",
    "class",
    "execCPUAffinity",
    "initial",
    "final",
    "terminal",
    "consoleSize",
    "namespaces",
    "path",
    "uidMappings",
    "gidMappings",
    "containerID",
    "hostID",
    "size",
    "sysctl",
    "seccomp",
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
    "names",
    "action",
    "errnoRet",
    "index",
    "value",
    "valueTwo",
    "op",
    "personality",
    "domain",
    "maskedPaths",
    "readonlyPaths",
    "mountLabel",
    "devices",
    "major",
    "minor",
    "fileMode",
    "timeOffsets",
    "secs",
    "nanosecs",
    "destination",
    "source",
    "options",
    "readonly",
    "prestart",
    "createRuntime",
    "poststart",
    "timeout",
    "resources",
];

fn hostile_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(7),
        json!(4294967295u64),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.5),
        json!(""),
        json!("/"),
        json!("../../.."),
        json!("a\u{0}b"),
        json!("CAP_TEST"),
        json!("CAP_SYS_ADMIN"),
        json!("CAP_SYS_RESOURCE"),
        json!("SCMP_ACT_NOTIFY"),
        json!("SCMP_ACT_ERRNO"),
        json!("SCMP_ACT_KILL_PROCESS"),
        json!("SCMP_ARCH_X86"),
        json!("SCMP_CMP_MASKED_EQ"),
        json!("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
        json!("SCHED_DEADLINE"),
        json!("SCHED_ISO"),
        json!("IOPRIO_CLASS_RT"),
        json!("LINUX32"),
        json!("0-3,7"),
        json!("99999999999-1"),
        json!("user"),
        json!("write"),
        json!([]),
        json!({}),
        json!([null]),
        json!(["CAP_KILL", "CAP_TEST"]),
        json!([{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]),
        json!({"names": [], "action": "SCMP_ACT_ALLOW"}),
    ]
}

const TOKENS: &[&str] = &[
    "null",
    "-1",
    "1e309",
    "18446744073709551616",
    "\"\"",
    "[]",
    "{}",
    "\"\\u0000\"",
    ",",
    ":",
    "\"CAP_TEST\"",
    "[[[[[[[[",
    "}}}}",
    "\"\\ud800\"",
    "true",
    "-0",
    "0.0000001",
];

fn seeds() -> Vec<Value> {
    let mut full = spec::default_spec(false);
    full["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
    full["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL", "CAP_SYS_RESOURCE"]);
    full["process"]["scheduler"] =
        json!({"policy": "SCHED_BATCH", "nice": 3, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    full["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 4});
    full["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "0-1"});
    full["process"]["oomScoreAdj"] = json!(100);
    full["process"]["user"]["additionalGids"] = json!([5, 10]);
    full["linux"]["personality"] = json!({"domain": "LINUX32", "flags": []});
    full["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"});
    full["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
        "listenerPath": "/run/agent.sock",
        "listenerMetadata": "x",
        "syscalls": [
            {"names": ["read", "write", "exit_group", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"},
                      {"index": 1, "value": 2, "valueTwo": 3, "op": "SCMP_CMP_GE"}]},
            {"names": ["kill"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
            {"names": ["tkill"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["tgkill"], "action": "SCMP_ACT_TRAP"},
            {"names": ["getpid"], "action": "SCMP_ACT_LOG"}
        ]
    });
    full["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 1, "nanosecs": 2}});
    // Offsets need a new time namespace (runc 1.2's validator).
    if let Some(n) = full["linux"]["namespaces"].as_array_mut() {
        n.push(json!({"type": "time"}));
    }
    full["hooks"] = json!({"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 1}]});
    vec![spec::default_spec(false), spec::default_spec(true), full]
}

/// A random place in `v` (any depth) to mutate: pick a path of child
/// positions first, then walk it.
fn random_node<'a>(v: &'a mut Value, rng: &mut Rng) -> &'a mut Value {
    let mut path = Vec::new();
    let mut cur: &Value = v;
    for _ in 0..rng.below(6) {
        let n = match cur {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        if n == 0 {
            break;
        }
        let i = rng.below(n);
        path.push(i);
        cur = match cur {
            Value::Object(m) => m.values().nth(i).unwrap_or(cur),
            Value::Array(a) => &a[i],
            _ => cur,
        };
    }
    walk(v, &path)
}

fn walk<'a>(v: &'a mut Value, path: &[usize]) -> &'a mut Value {
    let Some((&i, rest)) = path.split_first() else {
        return v;
    };
    let has_child = match &*v {
        Value::Object(m) => i < m.len(),
        Value::Array(a) => i < a.len(),
        _ => false,
    };
    if !has_child {
        return v;
    }
    match v {
        Value::Object(m) => match m.values_mut().nth(i) {
            Some(c) => walk(c, rest),
            None => unreachable!("index checked above"),
        },
        Value::Array(a) => walk(&mut a[i], rest),
        _ => unreachable!("checked above"),
    }
}

fn mutate_structure(v: &mut Value, rng: &mut Rng, hostile: &[Value]) {
    for _ in 0..=rng.below(3) {
        let node = random_node(v, rng);
        match rng.below(6) {
            0 => *node = rng.pick(hostile).clone(),
            1 => {
                if let Value::Object(m) = node {
                    let k = rng.pick(KEYS).to_string();
                    m.insert(k, rng.pick(hostile).clone());
                }
            }
            2 => {
                if let Value::Object(m) = node {
                    if let Some(k) = m.keys().nth(rng.below(m.len())).cloned() {
                        m.remove(&k);
                    }
                }
            }
            3 => {
                if let Value::Array(a) = node {
                    if let Some(x) = a.get(rng.below(a.len())).cloned() {
                        a.push(x);
                    }
                }
            }
            4 => {
                if let Value::Array(a) = node {
                    a.push(rng.pick(hostile).clone());
                }
            }
            _ => {
                // A hostile value below a real key, wherever it lands.
                if let Value::Object(m) = node {
                    let k = rng.pick(KEYS).to_string();
                    m.insert(k, json!({ *rng.pick(KEYS): rng.pick(hostile).clone() }));
                }
            }
        }
    }
}

fn mutate_bytes(b: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..=rng.below(4) {
        if b.is_empty() {
            b.extend_from_slice(b"{}");
        }
        let at = rng.below(b.len());
        match rng.below(5) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next() as u8,
            2 => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            3 => {
                let t = rng.pick(TOKENS).as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            _ => {
                let end = (at + rng.below(32)).min(b.len());
                let chunk = b[at..end].to_vec();
                let to = rng.below(b.len());
                b.splice(to..to, chunk);
            }
        }
    }
}

/// Everything that runs on a config before init starts. Errors are fine;
/// panics are bugs.
fn exercise(bytes: &[u8]) {
    // The path config.json takes (fixups of the raw JSON, then the types).
    let Ok(spec) = spec::parse(bytes) else {
        return;
    };
    let _ = spec::validate(&spec);
    let _ = crate::security::preflight(&spec);
    if let Some(p) = spec.process() {
        if let Some(c) = p.capabilities() {
            let host = capabilities::Host {
                grantable: !(1 << 24),
                last_cap: 40,
            };
            let _ = capabilities::plan(c, host);
            let _ = capabilities::plan(c, host.in_new_userns());
        }
        let _ = task::validate(p, None);
        let _ = task::initial_affinity(p);
    }
    if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        let _ = crate::cgroups::config::Resources::from_spec(r);
    }
    for m in spec.mounts().iter().flatten() {
        let _ = crate::rootfs::options::parse(&m.options().clone().unwrap_or_default());
    }
    for kind in HOOK_KINDS {
        for h in crate::hooks::of_kind(spec.hooks().as_ref(), kind) {
            let _ = crate::hooks::deadline(h.timeout());
        }
    }
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        // Compiles the filter; nothing is loaded.
        let _ = seccomp::build(s);
        let _ = seccomp::process_state(&spec, &json!({"pid": 1}));
    }
}

const HOOK_KINDS: [crate::hooks::Kind; 6] = [
    crate::hooks::Kind::Prestart,
    crate::hooks::Kind::CreateRuntime,
    crate::hooks::Kind::CreateContainer,
    crate::hooks::Kind::StartContainer,
    crate::hooks::Kind::Poststart,
    crate::hooks::Kind::Poststop,
];

/// What `update` does with a resources document before touching a cgroup:
/// the merge over the current resources, the typed parse, the conversion.
fn exercise_update(bytes: &[u8]) {
    let Ok(update) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    let merged = crate::container::resources::merge_resources(json!({}), &update);
    if let Ok(r) = serde_json::from_value::<oci_spec::runtime::LinuxResources>(merged) {
        let _ = crate::cgroups::config::Resources::from_spec(&r);
    }
}

/// Resources documents (`update -r`, linux.resources) around real fields.
fn resource_seeds() -> Vec<Value> {
    vec![
        json!({"memory": {"limit": 1048576, "swap": 2097152}, "cpu": {"shares": 512, "quota": 1000,
               "period": 100000, "cpus": "0-1", "mems": "0"}, "pids": {"limit": 10},
               "hugepageLimits": [{"pageSize": "2MB", "limit": 4096}],
               "blockIO": {"weight": 100, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]},
               "unified": {"memory.high": "max"}}),
        json!({"hugepageLimits": [{"pageSize": "1\u{e9}B", "limit": 1}, {"pageSize": "\u{e9}", "limit": 1}]}),
        json!({"cpu": {"idle": 1, "realtimeRuntime": -1}, "network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 1}]}}),
    ]
}

#[test]
fn resources_and_update_never_panic() {
    let seeds = resource_seeds();
    let mut hostile = hostile_values();
    hostile.extend([
        json!("2\u{e9}B"),
        json!("\u{1F600}MB"),
        json!("KB"),
        json!("B"),
    ]);
    if let Some((i, bytes)) = first_panic(&seeds, &hostile, 0x0123_4567_89ab_cdef, exercise_update)
    {
        panic!(
            "resources #{i} panicked: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

/// Signal names and numbers, mount options, hook timeouts and memory sizes
/// from random and hostile strings: refused or parsed, never a panic.
#[test]
fn small_parsers_never_panic() {
    let words = [
        "KILL",
        "SIGKILL",
        "9",
        "-1",
        "0",
        "65",
        "RTMIN",
        "RTMIN+",
        "RTMIN+99999999999",
        "RTMAX-",
        "rtmax-3",
        "SIG",
        "",
        " ",
        "\u{e9}",
        "SIGRTMIN+1\u{e9}",
        "2147483648",
        "ro",
        "rro",
        "mode=",
        "size=1\u{e9}",
        "idmap",
        "uid=",
        "100m",
        "1.5G",
        "64KiB",
        "1e400",
        "9999999999999999999999m",
        ".",
        "-0",
    ];
    let mut rng = Rng(0xfeed_face_dead_beef);
    for i in 0..iterations() {
        let mut b = rng.pick(&words).as_bytes().to_vec();
        if i % 2 == 1 {
            mutate_bytes(&mut b, &mut rng);
        }
        let s = String::from_utf8_lossy(&b).into_owned();
        let t = rng.next() as i64;
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _ = crate::signal::parse(&s);
            let _ = crate::rootfs::options::parse(&[s.clone(), "rbind".into()]);
            let _ = crate::cli::update::ram_in_bytes(&s);
            let _ = crate::hooks::deadline(Some(t));
            let _ = crate::hooks::deadline(Some(i64::MAX));
        }));
        assert!(r.is_ok(), "input {s:?} / timeout {t} panicked");
    }
}

fn iterations() -> usize {
    std::env::var("SKIFF_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 2000 } else { 20000 })
}

/// Feed `iterations()` mutations of `seeds` (a third byte-level, the rest
/// structural with `hostile` values) to `f`; the first input that panics,
/// with its number. The panic hook is kept quiet meanwhile.
fn first_panic(
    seeds: &[Value],
    hostile: &[Value],
    seed: u64,
    f: fn(&[u8]),
) -> Option<(usize, Vec<u8>)> {
    let mut rng = Rng(seed);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    for i in 0..iterations() {
        let mut v = rng.pick(seeds).clone();
        let bytes = if i % 3 == 0 {
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            mutate_bytes(&mut b, &mut rng);
            b
        } else {
            mutate_structure(&mut v, &mut rng, hostile);
            serde_json::to_vec(&v).unwrap_or_default()
        };
        if catch_unwind(AssertUnwindSafe(|| f(&bytes))).is_err() {
            failure = Some((i, bytes));
            break;
        }
    }
    std::panic::set_hook(hook);
    failure
}

#[test]
fn config_loading_never_panics() {
    let seeds = seeds();
    let hostile = hostile_values();
    if let Some((i, bytes)) = first_panic(&seeds, &hostile, 0x5eed_cafe_f00d_d00d, exercise) {
        panic!(
            "config input #{i} panicked; run exercise() on it to see where:\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn load_reads_mutated_bundles_without_panicking() {
    let dir = std::env::temp_dir().join(format!("skiff-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let seeds = seeds();
    let hostile = hostile_values();
    let mut rng = Rng(0xdead_beef_0123_4567);
    for _ in 0..200 {
        let mut v = rng.pick(&seeds).clone();
        mutate_structure(&mut v, &mut rng, &hostile);
        std::fs::write(dir.join("config.json"), serde_json::to_vec(&v).unwrap()).unwrap();
        let r = catch_unwind(|| {
            let _ = spec::load(&dir);
        });
        assert!(r.is_ok(), "spec::load panicked on {v}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn seeds_are_valid() {
    // The seeds must reach validation, or the fuzzer only tests the parser.
    for s in seeds() {
        let spec = spec::parse(&serde_json::to_vec(&s).unwrap()).unwrap();
        spec::validate(&spec).unwrap();
        if let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            seccomp::build(sc).unwrap();
        }
    }
}
