use crate::container::{lifecycle, Globals};
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    lifecycle::start(g, &a.id)?;
    Ok(0)
}
