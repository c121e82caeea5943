//! Seccomp: every action, errno defaults, argument filters with every
//! operator, architectures and flags, load order, the notify listener
//! handshake, and Docker's default profile, checked by what the container
//! process sees (/proc/self/status, errnos, exit signals) and what a listener
//! receives.

use crate::security::{hex, run, seccomp, set_caps, sh, status_field, TempDir};
use crate::support::*;
use serde_json::{json, Value};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

#[test]
fn seccomp_errno_blocks_a_syscall_with_the_configured_errno() {
    if skip_unless_root() {
        return;
    }
    // getcwd with the default errno (EPERM), mkdir with ENOSYS from errnoRet,
    // and the filter is the only one: Seccomp 2, one filter.
    let mut b = sh("/bin/pwd; mkdir /tmp/x; grep ^Seccomp /proc/self/status");
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]}),
    );
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Operation not permitted"),
        "getcwd not blocked: {err}"
    );
    assert!(err.contains("not implemented"), "mkdir not ENOSYS: {err}");
    assert_eq!(status_field(&out, "Seccomp"), "2");
    assert_eq!(status_field(&out, "Seccomp_filters"), "1");
}

#[test]
fn seccomp_default_errno_ret_applies_to_the_default_action() {
    if skip_unless_root() {
        return;
    }
    // errnoRet on a rule; then a default ERRNO with defaultErrnoRet ENOSYS
    // that allows what busybox needs to start and print, but not getcwd.
    let mut b = Bundle::new().args(&["pwd"]);
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}),
    );
    let (code, _, err) = run(&b);
    assert_ne!(code, 0);
    assert!(
        err.contains("Permission denied"),
        "errnoRet 13 is EACCES: {err}"
    );
    let mut b = Bundle::new().args(&["pwd"]);
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
               "syscalls": [{"names": ["execve", "exit_group", "write", "arch_prctl", "set_tid_address",
                 "brk", "mmap", "munmap", "mprotect", "rt_sigaction", "rt_sigprocmask", "getuid",
                 "geteuid", "getpid", "prlimit64", "readlinkat", "set_robust_list", "rseq"],
                 "action": "SCMP_ACT_ALLOW"}]}),
    );
    let (code, _, err) = run(&b);
    assert_ne!(code, 0);
    assert!(
        err.contains("not implemented"),
        "default errno ENOSYS: {err}"
    );
}

#[test]
fn seccomp_kill_and_trap_actions_end_the_process_with_sigsys() {
    if skip_unless_root() {
        return;
    }
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let mut b = Bundle::new().args(&["uname"]);
        seccomp(
            &mut b,
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": action}]}),
        );
        let (code, out, err) = run(&b);
        // 128 + SIGSYS(31): the process died on the syscall, nothing printed.
        assert_eq!(code, 159, "{action}: {out} {err}");
        assert!(out.is_empty(), "{action}: uname printed {out}");
    }
}

#[test]
fn seccomp_trace_without_tracer_fails_the_syscall_and_log_allows_it() {
    if skip_unless_root() {
        return;
    }
    let mut b = sh("mkdir /tmp/t; echo traced=$?; uname >/dev/null; echo logged=$?");
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE"},
            {"names": ["uname"], "action": "SCMP_ACT_LOG"}
        ]}),
    );
    // No tracer: SECCOMP_RET_TRACE makes the syscall fail with ENOSYS.
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("traced=1"), "{out} {err}");
    assert!(out.contains("logged=0"), "{out} {err}");
}

/// personality(2) is what busybox `linux32` (PER_LINUX32 = 8) and `linux64`
/// (PER_LINUX = 0) call: a syscall with a known first argument.
fn personality_outcome(args: Value) -> (bool, bool) {
    let mut b = sh("linux32 true; echo a=$?; linux64 true; echo b=$?");
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": args}]}),
    );
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    (out.contains("a=0"), out.contains("b=0"))
}

#[test]
fn seccomp_argument_filters_cover_every_operator() {
    if skip_unless_root() {
        return;
    }
    // (operator, value, valueTwo) -> is linux32 (arg 8) allowed, is linux64 (arg 0) allowed.
    let cases = [
        ("SCMP_CMP_EQ", 8, None, (false, true)),
        ("SCMP_CMP_NE", 8, None, (true, false)),
        ("SCMP_CMP_LT", 8, None, (true, false)),
        ("SCMP_CMP_LE", 8, None, (false, false)),
        ("SCMP_CMP_GT", 0, None, (false, true)),
        ("SCMP_CMP_GE", 9, None, (true, true)),
        // (arg & 0x8) == 0x8
        ("SCMP_CMP_MASKED_EQ", 8, Some(8), (false, true)),
        // (arg & 0x8) == 0
        ("SCMP_CMP_MASKED_EQ", 8, None, (true, false)),
    ];
    for (op, value, two, want) in cases {
        let mut arg = json!({"index": 0, "value": value, "op": op});
        if let Some(t) = two {
            arg["valueTwo"] = json!(t);
        }
        assert_eq!(
            personality_outcome(json!([arg])),
            want,
            "{op} {value} {two:?}"
        );
    }
    // Two conditions on one argument: either matches (Docker's personality rules).
    let either = json!([{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                        {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]);
    assert_eq!(personality_outcome(either), (false, false));
    // Conditions on different arguments: all must match (arg 1 is never 5).
    let both = json!([{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]);
    assert_eq!(personality_outcome(both), (true, true));
}

#[test]
fn seccomp_with_architectures_and_flags_loads() {
    if skip_unless_root() {
        return;
    }
    let mut b = sh("/bin/pwd; grep ^Seccomp: /proc/self/status");
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
               "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
               "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(err.contains("Operation not permitted"), "{err}");
}

#[test]
fn seccomp_profile_errors_fail_create_with_a_reason() {
    if skip_unless_root() {
        return;
    }
    let bad = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 5}),
            "errnoRet",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
            "default action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}], "listenerPath": "/x"}),
            "write",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "index",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
            "listenerMetadata",
        ),
    ];
    for (profile, word) in bad {
        let mut b = sh("true");
        seccomp(&mut b, profile.clone());
        let (code, _, err) = run(&b);
        assert_ne!(code, 0, "{profile} was accepted");
        assert!(err.contains(word), "{profile}: {err}");
    }
}

#[test]
fn seccomp_is_loaded_after_everything_init_does() {
    if skip_unless_root() {
        return;
    }
    // A profile that allows little more than what `true` needs: had the filter
    // been loaded before init opened the exec fifo, dropped its capabilities or
    // changed user, `start` would fail or hang.
    let mut b = Bundle::new().args(&["true"]);
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [{"names": [
            "execve", "exit_group", "exit", "arch_prctl", "set_tid_address", "brk", "mmap",
            "munmap", "mprotect", "getuid", "geteuid", "getgid", "getegid", "getpid",
            "rt_sigaction", "rt_sigprocmask", "prlimit64", "set_robust_list", "rseq",
            "readlinkat", "readlink", "uname", "getrandom", "prctl",
            // busybox run as a non-root user drops set-id privileges itself.
            "setuid", "setgid", "newfstatat"], "action": "SCMP_ACT_ALLOW"}]}),
    );
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &b).assert_success("create");
    rt.start(&id).assert_success("start");
    let st = rt.wait_for_status(&id, "stopped", Duration::from_secs(10));
    assert_eq!(st["status"], "stopped");
    rt.delete(&id).assert_success("delete");
    // And the same profile as a `run`, to see the exit code.
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{out} {err}");
}

#[test]
fn seccomp_without_no_new_privileges_is_loaded_while_privileged() {
    if skip_unless_root() {
        return;
    }
    let mut b = sh("/bin/pwd; grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status");
    b.config_mut()["process"]["noNewPrivileges"] = json!(false);
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
    assert_eq!(status_field(&out, "Seccomp"), "2");
    assert_eq!(hex(&status_field(&out, "CapEff")), 0);
    assert!(err.contains("Operation not permitted"), "{err}");
}

/// Receive one message with one fd (SCM_RIGHTS) and its payload, to EOF.
pub(crate) fn recv_state_and_fd(conn: &std::os::unix::net::UnixStream) -> (Value, OwnedFd) {
    let mut data = Vec::new();
    let mut fd = None;
    loop {
        let (chunk, mut fds) = recv_with_fds(conn);
        if !fds.is_empty() {
            assert_eq!(fds.len(), 1, "exactly one fd");
            assert!(fd.is_none(), "fds only in the first message");
            fd = Some(fds.remove(0));
        }
        if chunk.is_empty() {
            break;
        }
        data.extend_from_slice(&chunk);
    }
    let v = serde_json::from_slice(&data).unwrap_or_else(|e| panic!("{e}: {}", text(&data)));
    (v, fd.expect("no seccomp fd received"))
}

#[test]
fn seccomp_notify_sends_the_fd_and_state_to_the_listener() {
    if skip_unless_root() {
        return;
    }
    let dir = TempDir::new("notify");
    let sock = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut b = sh("mkdir /tmp/made; echo rc=$?; test -d /tmp/made && echo exists; true");
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
               "listenerMetadata": "meta=1",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let rt = Runtime::skiff();
    let id = rt.new_id();
    // The agent: take the state and fd, then answer every notification with
    // EXDEV without running the syscall.
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (state, fd) = recv_state_and_fd(&conn);
        let mut answered = 0;
        // Until the filtered process is gone (then receive fails).
        while let Ok(req) = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()) {
            let resp = libseccomp::ScmpNotifResp::new_error(
                req.id,
                -libc::EXDEV,
                libseccomp::ScmpNotifRespFlags::empty(),
            );
            let _ = resp.respond(fd.as_raw_fd());
            answered += 1;
        }
        (state, answered)
    });
    let out = rt.run_container_as(&id, &b);
    // Before the join: a create that failed never connected, and the agent
    // would wait in accept() forever.
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    let (state, answered) = agent.join().unwrap();
    assert!(out.stdout_text().contains("rc=1"), "{}", out.stdout_text());
    assert!(
        !out.stdout_text().contains("exists"),
        "mkdir ran despite the agent"
    );
    assert!(
        out.stderr_text().contains("cross-device"),
        "agent's EXDEV: {}",
        out.stderr_text()
    );
    assert!(answered >= 1);
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "meta=1", "{state}");
    assert!(
        state["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{state}"
    );
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    assert_eq!(state["state"]["id"], id.as_str(), "{state}");
    assert_eq!(state["state"]["status"], "creating", "{state}");
    assert_eq!(state["state"]["pid"], state["pid"], "{state}");
    assert_eq!(state["state"]["bundle"], b.path_str(), "{state}");
    rt.assert_no_leaks(&id, &b);
}

#[test]
fn seccomp_notify_listener_unreachable_fails_create() {
    if skip_unless_root() {
        return;
    }
    let mut b = sh("true");
    seccomp(
        &mut b,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let (code, _, err) = run(&b);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/agent.sock"), "{err}");
}

/// Docker's default profile (integration/fixtures, from moby's
/// profiles/seccomp/default.json) as dockerd hands it to the runtime for an
/// amd64 container with `caps`: what `includes`/`excludes` leave, for this arch.
fn docker_default_profile(caps: &[&str]) -> Value {
    let docker: Value =
        serde_json::from_str(include_str!("fixtures/docker-default-seccomp.json")).unwrap();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let version = |s: &str| -> (u32, u32) {
        let mut it = s
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|x| x.parse().ok());
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    let has_all_caps = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .all(|c| caps.contains(&c.as_str().unwrap_or("")))
    };
    let has_any_cap = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .any(|c| caps.contains(&c.as_str().unwrap_or("")))
    };
    let names = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let mut rules = Vec::new();
    for r in docker["syscalls"].as_array().unwrap() {
        let inc = &r["includes"];
        let exc = &r["excludes"];
        if !inc["arches"].is_null() && !names(&inc["arches"]).iter().any(|a| a == "amd64") {
            continue;
        }
        if names(&exc["arches"]).iter().any(|a| a == "amd64") {
            continue;
        }
        if !inc["caps"].is_null() && !has_all_caps(&inc["caps"]) {
            continue;
        }
        if has_any_cap(&exc["caps"]) {
            continue;
        }
        if let Some(min) = inc["minKernel"].as_str() {
            if version(&kernel) < version(min) {
                continue;
            }
        }
        let mut out = json!({"names": r["names"], "action": r["action"]});
        for k in ["args", "errnoRet"] {
            if !r[k].is_null() {
                out[k] = r[k].clone();
            }
        }
        rules.push(out);
    }
    json!({
        "defaultAction": docker["defaultAction"],
        "defaultErrnoRet": docker["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    })
}

#[test]
fn docker_default_profile_loads_and_confines() {
    if skip_unless_root() {
        return;
    }
    let caps = [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_CHOWN",
        "CAP_SETUID",
        "CAP_SETGID",
    ];
    let mut b = sh(
        "set -e; mkdir /tmp/d; echo hi > /tmp/d/f; cat /tmp/d/f; ls / >/dev/null; \
         sh -c 'exit 0'; linux64 true; grep -E '^Seccomp(_filters)?:' /proc/self/status; \
         set +e; unshare -U true; echo unshare=$?; linux32 true 2>/dev/null; echo linux32=$?",
    );
    set_caps(
        &mut b,
        json!({"bounding": caps, "effective": caps, "permitted": caps}),
    );
    seccomp(&mut b, docker_default_profile(&caps));
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.starts_with("hi\n"), "{out}");
    assert!(
        out.contains("Seccomp:\t2") && out.contains("Seccomp_filters:\t1"),
        "{out}"
    );
    // unshare is only allowed with CAP_SYS_ADMIN: EPERM from the profile.
    assert!(out.contains("unshare=1"), "{out}\n{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    // personality(PER_LINUX32) is allowed by Docker's profile.
    assert!(out.contains("linux32=0"), "{out}");
}
