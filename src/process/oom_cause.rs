//! One clear error when init dies because the container's memory limit is
//! too low. The parent only sees a symptom (a reset sync socket, an EOF, a
//! SIGKILL exit, an ENOMEM from a step), and which one depends on where the
//! OOM killer struck: the memory cgroup's counters say what happened.

use crate::cgroups::oom::MemoryEvents;
use crate::cgroups::Manager;
use crate::error::Error;
use oci_spec::runtime::Spec;
use std::time::Duration;

/// The counters before init starts, to compare with after a failure (an
/// existing cgroup, for exec, may have seen OOM kills before).
pub fn before(cg: Option<&dyn Manager>) -> MemoryEvents {
    cg.map(|c| c.memory_events()).unwrap_or_default()
}

/// `err` as the user should read it: the OOM message when the cgroup's OOM
/// killer killed init (or a step failed with ENOMEM at the limit), else `err`.
pub fn explain(
    cg: Option<&dyn Manager>,
    before: &MemoryEvents,
    spec: &Spec,
    exec: bool,
    err: Error,
) -> Error {
    let Some(cg) = cg else { return err };
    let mut now = cg.memory_events();
    let (mut kills, hits) = now.since(before);
    // The kernel counts an OOM kill just after it sends the SIGKILL: the
    // victim's socket may reset before the count shows it. Only once the
    // limit was reached is it worth waiting for.
    let mut tries = 0;
    while kills == 0 && hits > 0 && tries < 20 {
        std::thread::sleep(Duration::from_millis(5));
        now = cg.memory_events();
        kills = now.since(before).0;
        tries += 1;
    }
    let (who, whose) = if exec {
        ("init of the exec'd process", "exec's init")
    } else {
        ("container init", "container's init")
    };
    let limit = match (spec_limit(spec).filter(|_| !exec), now.limit) {
        (Some(n), _) => {
            format!("linux.resources.memory.limit {n} bytes is too low for the {whose}")
        }
        (None, Some(n)) => {
            format!("the container's memory limit ({n} bytes) is too low for the {whose}")
        }
        (None, None) => format!("the container's memory cgroup has no room left for the {whose}"),
    };
    if kills > 0 {
        return Error::new(format!("{who} was killed by the OOM killer: {limit}"));
    }
    if hits > 0 && err.message().contains("ENOMEM") {
        return Error::new(format!(
            "{who} ran out of memory ({}): {limit}",
            err.message()
        ));
    }
    err
}

fn spec_limit(spec: &Spec) -> Option<i64> {
    spec.linux()
        .as_ref()?
        .resources()
        .as_ref()?
        .memory()
        .as_ref()?
        .limit()
        .filter(|l| *l > 0)
}
