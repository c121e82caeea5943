//! Confinement applied by init: capabilities, seccomp, LSM labels.
pub mod capabilities;
pub mod lsm;
pub mod seccomp;
