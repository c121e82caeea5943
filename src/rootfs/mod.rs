//! Building the container's filesystem view inside its mount namespace.
pub mod copyup;
pub mod devices;
pub mod fdmount;
pub mod idmap;
pub mod masked;
pub mod mounts;
pub mod options;
pub mod pivot;
pub mod proc_dest;
pub mod safe_path;
