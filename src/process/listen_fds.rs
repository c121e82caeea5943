//! systemd socket activation: when LISTEN_PID names us, the LISTEN_FDS fds
//! (from 3) pass to the container too, which then sees LISTEN_PID=1.

/// How many socket-activation fds to pass on (0 unless LISTEN_PID is our pid).
pub fn count() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !ours {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
