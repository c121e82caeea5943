use crate::container::Globals;
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_g: &Globals, _a: Args) -> Result<i32> {
    crate::bail!("features: not implemented yet")
}
