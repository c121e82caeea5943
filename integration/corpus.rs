//! The differential corpus (issue 11, "How to prove it"): generated bundles and
//! command sequences, each varying one thing from the base busybox bundle, run
//! under runc (the oracle, /usr/sbin/runc) and skiff with private `--root`s and
//! unique IDs. Compared per case: exit status, the class of the error (not its
//! words), what the container sees (the probe's output) and what the host sees
//! afterwards (state dir, mounts, cgroups). The table is in corpus/cases.rs.
//!
//! `CORPUS_JOBS` sets how many cases run at once (default 3), `CORPUS_FILTER`
//! runs only the cases whose name contains it, `CORPUS_VERBOSE=1` prints each
//! case's observations.

mod cases;

use crate::support::*;
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// One change to the base bundle. String values may say `{bundle}`, replaced
/// by the bundle's path before the config is written.
#[derive(Clone)]
pub enum Edit {
    /// Set the value at a JSON pointer, creating missing objects on the way.
    Set(&'static str, Value),
    /// Remove the member at a JSON pointer.
    Del(&'static str),
    /// Append to the array at a JSON pointer (created if missing).
    Push(&'static str, Value),
    /// config.json is this text, verbatim (malformed configs).
    Raw(&'static str),
    /// A file in the bundle (relative path, contents after `{bundle}` substitution).
    File(&'static str, String),
    /// A directory in the bundle, with this mode.
    Dir(&'static str, u32),
}

/// What the case runs.
#[derive(Clone)]
pub enum Body {
    /// `run` the bundle with `sh -c <probe>` as its process.
    Run(String),
    /// Runtime calls in order on one container (process `sleep 60` unless edited).
    /// Each step is a command line after the global flags, with `{id}` and
    /// `{bundle}` substituted; `create` and `run-d` are short for the full form;
    /// `wait-stopped` polls the state; `sleep` waits 300 ms.
    Seq(Vec<String>),
}

/// What skiff must show where it is not simply runc 1.1.5's behaviour.
#[derive(Clone, Default)]
pub struct Want {
    pub code: Option<i32>,
    pub class: Option<&'static str>,
    /// Text some line of the output must hold (the probe's output, or a seq
    /// step's line).
    pub has: Option<&'static str>,
    /// Text no line of the output may hold.
    pub lacks: Option<&'static str>,
}

#[derive(Clone)]
pub enum Expect {
    /// runc 1.1.5 and skiff agree on everything.
    Same,
    /// runc 1.2+ changed the behaviour, or the runtime-spec asks for more than
    /// runc 1.1.5 does: skiff must match `Want` (the note names the version);
    /// everything `Want` does not mention must still agree.
    Newer(&'static str, Want),
    /// skiff differs and runc is right, but the fix is large: printed, never failed.
    Known(&'static str),
    /// Another helper is implementing it: skiff should match `Want` when that
    /// lands; printed, never failed.
    Pending(&'static str, Want),
}

#[derive(Clone)]
pub struct Case {
    pub name: String,
    pub edits: Vec<Edit>,
    pub body: Body,
    /// A bundle file the case's hooks write, read after the run.
    pub host_file: Option<&'static str>,
    pub expect: Expect,
}

impl Case {
    pub fn run(name: impl Into<String>, probe: impl Into<String>) -> Case {
        Case {
            name: name.into(),
            edits: Vec::new(),
            body: Body::Run(probe.into()),
            host_file: None,
            expect: Expect::Same,
        }
    }
    pub fn seq(name: impl Into<String>, steps: &[&str]) -> Case {
        Case {
            body: Body::Seq(steps.iter().map(|s| s.to_string()).collect()),
            ..Case::run(name, "")
        }
    }
    pub fn set(mut self, ptr: &'static str, v: Value) -> Case {
        self.edits.push(Edit::Set(ptr, v));
        self
    }
    pub fn del(mut self, ptr: &'static str) -> Case {
        self.edits.push(Edit::Del(ptr));
        self
    }
    pub fn push(mut self, ptr: &'static str, v: Value) -> Case {
        self.edits.push(Edit::Push(ptr, v));
        self
    }
    pub fn mount(self, m: Value) -> Case {
        self.push("/mounts", m)
    }
    pub fn raw(mut self, text: &'static str) -> Case {
        self.edits.push(Edit::Raw(text));
        self
    }
    pub fn file(mut self, rel: &'static str, body: impl Into<String>) -> Case {
        self.edits.push(Edit::File(rel, body.into()));
        self
    }
    pub fn dir(mut self, rel: &'static str, mode: u32) -> Case {
        self.edits.push(Edit::Dir(rel, mode));
        self
    }
    pub fn host_file(mut self, rel: &'static str) -> Case {
        self.host_file = Some(rel);
        self
    }
    pub fn newer(mut self, note: &'static str, want: Want) -> Case {
        self.expect = Expect::Newer(note, want);
        self
    }
    pub fn known(mut self, note: &'static str) -> Case {
        self.expect = Expect::Known(note);
        self
    }
    pub fn pending(mut self, note: &'static str, want: Want) -> Case {
        self.expect = Expect::Pending(note, want);
        self
    }
}

/// What one runtime showed for one case.
#[derive(Clone, Debug, PartialEq)]
struct Obs {
    code: i32,
    class: &'static str,
    /// The probe's output, or one line per seq step; bundle path and ID replaced.
    out: String,
    /// "clean", or what was left on the host.
    host: String,
    /// Raw stderr, for the report only.
    err: String,
}

/// Error messages sorted into a few classes, so runc's and skiff's different
/// words for the same failure compare equal. The first matching rule wins.
/// Deliberately coarse: runc finds many bad values when it writes them and
/// skiff when it loads the config, so "invalid" and "failed" are one class.
const CLASSES: &[(&str, &[&str])] = &[
    ("exists", &["already exists", "exists already"]),
    (
        "no-container",
        &[
            "container does not exist",
            "\" does not exist",
            "container not found",
        ],
    ),
    (
        "state",
        &[
            "not running",
            "not stopped",
            "is stopped",
            "cannot start",
            "not created",
            "already started",
            "already paused",
            "not paused",
            "is running",
            "is created",
            "container is ",
            "process already finished",
        ],
    ),
    ("hook", &["hook #", "running hook", "hook ran"]),
    (
        "exec-not-found",
        &["executable file not found", "exec format error"],
    ),
];

fn classify(code: i32, stderr: &str) -> &'static str {
    if code == 0 {
        return "ok";
    }
    let err: String = stderr
        .lines()
        .filter(|l| !l.contains("level=warning"))
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    if err.trim().is_empty() {
        return "quiet";
    }
    for (class, words) in CLASSES {
        if words.iter().any(|w| err.contains(w)) {
            return class;
        }
    }
    "error"
}

/// Sets `v` at `ptr`, creating objects on the way.
fn set_at(root: &mut Value, ptr: &str, v: Value) {
    let mut cur = root;
    let keys: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    for key in &keys[..keys.len() - 1] {
        cur = match cur {
            Value::Array(a) => &mut a[key.parse::<usize>().expect("array index")],
            other => {
                let o = other.as_object_mut().expect("object on the path");
                o.entry(key.to_string()).or_insert_with(|| json!({}))
            }
        };
    }
    let last = keys[keys.len() - 1];
    match cur {
        Value::Array(a) => a[last.parse::<usize>().expect("array index")] = v,
        other => {
            other
                .as_object_mut()
                .expect("object")
                .insert(last.to_string(), v);
        }
    }
}

fn substitute(v: &mut Value, bundle: &str) {
    match v {
        Value::String(s) => *s = s.replace("{bundle}", bundle),
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, bundle)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, bundle)),
        _ => {}
    }
}

/// A fresh bundle with the case's edits applied.
fn make_bundle(case: &Case) -> Bundle {
    let mut b = Bundle::new();
    let path = b.path_str().to_string();
    match &case.body {
        Body::Run(probe) => b.config_mut()["process"]["args"] = json!(["sh", "-c", probe]),
        Body::Seq(_) => b.config_mut()["process"]["args"] = json!(["sleep", "60"]),
    }
    let mut raw = None;
    for e in &case.edits {
        let c = b.config_mut();
        match e {
            Edit::Set(p, v) => set_at(c, p, v.clone()),
            Edit::Del(p) => {
                let (parent, key) = p.rsplit_once('/').expect("pointer");
                if let Some(o) = c.pointer_mut(parent).and_then(|x| x.as_object_mut()) {
                    o.remove(key);
                }
            }
            Edit::Push(p, v) => {
                if c.pointer(p).is_none() {
                    set_at(c, p, json!([]));
                }
                c.pointer_mut(p)
                    .and_then(|a| a.as_array_mut())
                    .expect("array")
                    .push(v.clone());
            }
            Edit::Raw(t) => raw = Some(*t),
            Edit::File(rel, body) => {
                let f = b.path().join(rel);
                std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
                std::fs::write(&f, body.replace("{bundle}", &path)).expect("write file");
                if rel.ends_with(".sh") {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::Permissions::from_mode(0o755);
                    std::fs::set_permissions(&f, mode).expect("chmod");
                }
            }
            Edit::Dir(rel, mode) => {
                use std::os::unix::fs::PermissionsExt;
                let d = b.path().join(rel);
                std::fs::create_dir_all(&d).expect("mkdir");
                let mode = std::fs::Permissions::from_mode(*mode);
                std::fs::set_permissions(&d, mode).expect("chmod");
            }
        }
    }
    substitute(b.config_mut(), &path);
    b.flush();
    if let Some(t) = raw {
        std::fs::write(b.config_path(), t).expect("write raw config");
    }
    b
}

/// Bundle paths and IDs differ between the two runs: name them alike.
fn normalize(s: &str, b: &Bundle, id: &str) -> String {
    s.replace(b.path_str(), "<bundle>").replace(id, "<id>")
}

fn host_view(rt: &Runtime, id: &str, b: &Bundle) -> String {
    let l = leaks(id, rt.root(), b.path());
    if l.is_empty() {
        "clean".into()
    } else {
        // Which kinds of thing leaked, not their paths (which differ per runtime).
        let mut kinds: Vec<&str> = l
            .iter()
            .map(|x| x.split(' ').next().unwrap_or(""))
            .collect();
        kinds.dedup();
        format!("left {}", kinds.join(","))
    }
}

/// Runs `case` under `rt` in a fresh bundle.
fn observe(rt: &Runtime, case: &Case) -> Obs {
    let b = make_bundle(case);
    let id = rt.new_id();
    let (code, class, mut out, err) = match &case.body {
        Body::Run(_) => {
            let o = rt.run(&["run", "--bundle", b.path_str(), &id]);
            let code = o.status.code().unwrap_or(-1);
            let err = o.stderr_text();
            (code, classify(code, &err), o.stdout_text(), err)
        }
        Body::Seq(steps) => run_steps(rt, &b, &id, steps),
    };
    if matches!(case.body, Body::Seq(_)) {
        // Whatever the sequence left, the runtime's own delete -f must clean it.
        rt.delete_force(&id);
    }
    if let Some(f) = case.host_file {
        let got = std::fs::read_to_string(b.path().join(f)).unwrap_or_else(|_| "<none>".into());
        out.push_str(&format!("[{f}] {got}"));
    }
    Obs {
        code,
        class,
        out: normalize(&out, &b, &id),
        host: host_view(rt, &id, &b),
        err: normalize(&err, &b, &id),
    }
}

/// The steps of a sequence: (last code, last class, one line per step, stderr).
fn run_steps(
    rt: &Runtime,
    b: &Bundle,
    id: &str,
    steps: &[String],
) -> (i32, &'static str, String, String) {
    let mut lines = String::new();
    let mut last = (0, "ok");
    let mut errs = String::new();
    for step in steps {
        if step == "wait-stopped" {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let o = rt.run(&["state", id]);
                if !o.status.success() || o.stdout_text().contains("\"stopped\"") {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            continue;
        }
        if step == "sleep" {
            // Time for a signal to land (PID 1 ignores most of them).
            thread::sleep(Duration::from_millis(300));
            continue;
        }
        let line = match step.as_str() {
            "create" => "create --bundle {bundle} {id}",
            "run-d" => "run -d --bundle {bundle} {id}",
            s => s,
        };
        // Words split at spaces; "\\ " is a space inside a word.
        let args: Vec<String> = line
            .replace("\\ ", "\u{1}")
            .split(' ')
            .map(|a| {
                a.replace('\u{1}', " ")
                    .replace("{bundle}", b.path_str())
                    .replace("{id}", id)
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = rt.run(&args);
        let code = o.status.code().unwrap_or(-1);
        let err = o.stderr_text();
        let class = classify(code, &err);
        let shown = if args[0] == "state" && code == 0 {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            format!("status={}", v["status"])
        } else if args[0] == "exec" {
            o.stdout_text().trim_end().replace('\n', "|")
        } else {
            String::new()
        };
        lines.push_str(&format!("{step} -> {code} {class} {shown}\n"));
        errs.push_str(&err);
        last = (code, class);
    }
    (last.0, last.1, lines, errs)
}

fn want_holds(w: &Want, o: &Obs) -> bool {
    w.code.is_none_or(|c| c == o.code)
        && w.class.is_none_or(|c| c == o.class)
        && w.has.is_none_or(|h| o.out.lines().any(|l| l.contains(h)))
        && w.lacks
            .is_none_or(|h| !o.out.lines().any(|l| l.contains(h)))
}

/// The fields `w` does not speak about agree.
fn rest_agrees(w: &Want, r: &Obs, s: &Obs) -> bool {
    // A Want naming the exit code says the runs differ in whether they fail,
    // and then their class and output cannot be compared either.
    let code = w.code.is_some();
    (code || r.code == s.code)
        && (code || w.class.is_some() || r.class == s.class)
        && (code || w.has.is_some() || w.lacks.is_some() || r.out == s.out)
        && r.host == s.host
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Agree,
    Expected,
    Known,
    Pending,
    Unexpected,
}

fn judge(case: &Case, r: &Obs, s: &Obs) -> Verdict {
    let same = r.code == s.code && r.class == s.class && r.out == s.out && r.host == s.host;
    match &case.expect {
        Expect::Same if same => Verdict::Agree,
        Expect::Same => Verdict::Unexpected,
        Expect::Newer(_, w) if want_holds(w, s) && rest_agrees(w, r, s) => {
            if same {
                Verdict::Agree
            } else {
                Verdict::Expected
            }
        }
        Expect::Newer(..) => Verdict::Unexpected,
        Expect::Known(_) if same => Verdict::Agree,
        Expect::Known(_) => Verdict::Known,
        Expect::Pending(_, w) if want_holds(w, s) && (same || rest_agrees(w, r, s)) => {
            if same {
                Verdict::Agree
            } else {
                Verdict::Expected
            }
        }
        Expect::Pending(..) => Verdict::Pending,
    }
}

fn show(o: &Obs) -> String {
    let err: String = o.err.lines().take(3).collect::<Vec<_>>().join(" | ");
    format!(
        "code={} class={} host={}\n      out: {:?}\n      err: {}",
        o.code, o.class, o.host, o.out, err
    )
}

fn run_case(runc: &Runtime, skiff: &Runtime, case: &Case) -> (Verdict, String) {
    let r = observe(runc, case);
    let s = observe(skiff, case);
    let v = judge(case, &r, &s);
    let note = match &case.expect {
        Expect::Same => String::new(),
        Expect::Newer(n, _) | Expect::Known(n) | Expect::Pending(n, _) => format!(" ({n})"),
    };
    let verbose = std::env::var_os("CORPUS_VERBOSE").is_some();
    let mut line = format!("{:?} {}{note}", v, case.name);
    if v != Verdict::Agree || verbose {
        line.push_str(&format!(
            "\n    runc:  {}\n    skiff: {}",
            show(&r),
            show(&s)
        ));
    }
    (v, line)
}

#[test]
fn corpus() {
    if skip_unless_root() {
        return;
    }
    let Some(probe) = Runtime::runc() else {
        return;
    };
    drop(probe);
    let filter = std::env::var("CORPUS_FILTER").unwrap_or_default();
    let all = cases::all();
    let mut names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let dupes: Vec<&&str> = names
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| &w[0])
        .collect();
    assert!(dupes.is_empty(), "duplicate case names: {dupes:?}");
    let cases: Vec<Case> = all
        .into_iter()
        .filter(|c| c.name.contains(&filter))
        .collect();
    let jobs: usize = std::env::var("CORPUS_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(3);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Verdict, String)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let got = catch_unwind(AssertUnwindSafe(|| {
                    let (runc, skiff) = (Runtime::runc().expect("runc"), Runtime::skiff());
                    run_case(&runc, &skiff, case)
                }));
                let (v, line) = got.unwrap_or_else(|e| {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|m| m.to_string()))
                        .unwrap_or_default();
                    (
                        Verdict::Unexpected,
                        format!("Unexpected {}: panicked: {msg}", case.name),
                    )
                });
                eprintln!("{line}");
                results.lock().expect("results").push((i, v, line));
            });
        }
    });
    let results = results.into_inner().expect("results");
    let count = |v: Verdict| results.iter().filter(|r| r.1 == v).count();
    let bad: Vec<&String> = results
        .iter()
        .filter(|r| r.1 == Verdict::Unexpected)
        .map(|r| &r.2)
        .collect();
    eprintln!(
        "corpus: {} cases, {} agree, {} expected-differences, {} known-differences, {} pending, {} unexpected ({:.0?})",
        results.len(),
        count(Verdict::Agree),
        count(Verdict::Expected),
        count(Verdict::Known),
        count(Verdict::Pending),
        bad.len(),
        started.elapsed()
    );
    assert!(
        filter.is_empty() || !results.is_empty(),
        "CORPUS_FILTER={filter} matches no case"
    );
    assert!(
        bad.is_empty(),
        "{} unexpected differences:\n{}",
        bad.len(),
        bad.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The shell snippet printing the mountinfo line of `dest`: root, mount point,
/// per-mount options, optional fields without their peer numbers, fs type and
/// superblock options.
pub fn mnt(dest: &str) -> String {
    format!(
        "awk '$5==\"{dest}\"{{o=\"\";for(i=7;$i!=\"-\";i++){{s=$i;sub(/:[0-9]+/,\"\",s);o=o s\",\"}};print $4,$5,$6,o,$(i+1),$(i+3)}}' /proc/self/mountinfo"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_common_errors() {
        assert_eq!(classify(0, "x"), "ok");
        assert_eq!(classify(1, ""), "quiet");
        assert_eq!(
            classify(1, "container \"x\" does not exist"),
            "no-container"
        );
        assert_eq!(classify(1, "error running hook #0: exit 3"), "hook");
        assert_eq!(
            classify(1, "error setting cgroup config for procHooks"),
            "error"
        );
        assert_eq!(classify(1, "level=warning msg=x\nboom"), "error");
    }

    #[test]
    fn set_creates_objects() {
        let mut v = json!({"a": {}});
        set_at(&mut v, "/a/b/c", json!(1));
        assert_eq!(v, json!({"a": {"b": {"c": 1}}}));
    }
}
