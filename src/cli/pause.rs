use crate::container::{resources, Globals};
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn pause(g: &Globals, a: Args) -> Result<i32> {
    resources::pause(g, &a.id)?;
    Ok(0)
}

pub fn resume(g: &Globals, a: Args) -> Result<i32> {
    resources::resume(g, &a.id)?;
    Ok(0)
}
