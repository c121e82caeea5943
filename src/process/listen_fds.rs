//! systemd socket activation: when LISTEN_PID names us, the LISTEN_FDS fds
//! (from 3) pass to the container too, which then sees LISTEN_FDS=n and
//! LISTEN_PID=1 (its process is PID 1 of its namespace), as with runc.

use oci_spec::runtime::Spec;

/// How many socket-activation fds to pass on (0 unless LISTEN_PID is our pid).
pub fn count() -> u32 {
    count_for(
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::process::id(),
    )
}

fn count_for(listen_pid: Option<&str>, listen_fds: Option<&str>, me: u32) -> u32 {
    if listen_pid.and_then(|p| p.parse::<u32>().ok()) != Some(me) {
        return 0;
    }
    listen_fds.and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The env of the container process, told about `n` activation fds.
fn add_env(env: &mut Vec<String>, n: u32) {
    env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
    env.push(format!("LISTEN_FDS={n}"));
    env.push("LISTEN_PID=1".to_string());
}

/// `spec` with the activation variables added to its process, when we were
/// given activation fds (create and run only; exec passes none, as runc).
pub fn with_env(mut spec: Spec) -> Spec {
    let n = count();
    if n == 0 {
        return spec;
    }
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        add_env(&mut env, n);
        p.set_env(Some(env));
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fds_meant_for_us_count() {
        assert_eq!(count_for(Some("42"), Some("2"), 42), 2);
        assert_eq!(count_for(Some("41"), Some("2"), 42), 0);
        assert_eq!(count_for(None, Some("2"), 42), 0);
        assert_eq!(count_for(Some("42"), Some("x"), 42), 0);
    }

    #[test]
    fn container_sees_itself_as_the_listener() {
        let mut env = vec!["PATH=/bin".to_string(), "LISTEN_PID=7".to_string()];
        add_env(&mut env, 3);
        assert_eq!(env, ["PATH=/bin", "LISTEN_FDS=3", "LISTEN_PID=1"]);
    }
}
