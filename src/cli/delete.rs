use crate::container::{lifecycle, Globals};
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill a running container before deleting it
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    lifecycle::delete(g, &a.id, a.force)?;
    Ok(0)
}
