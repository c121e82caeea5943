//! Starting container processes: the parent side (launch), the protocol (sync)
//! and the child side (init, setup).
pub mod init;
pub mod launch;
pub mod listen_fds;
mod oom_cause;
pub mod pidfd;
pub mod setup;
pub mod sync;
pub mod tty;
