use crate::container::{lifecycle, Globals};
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Send the signal to every process in the container
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    /// Signal name or number (default SIGTERM)
    #[arg(default_value = "SIGTERM", allow_hyphen_values = true)]
    pub signal: String,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    let sig = crate::signal::parse(&a.signal)?;
    lifecycle::kill_container(g, &a.id, sig, a.all)?;
    Ok(0)
}
