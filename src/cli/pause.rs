use crate::container::Globals;
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn pause(_g: &Globals, a: Args) -> Result<i32> {
    crate::bail!("pause {}: not implemented yet", a.id)
}

pub fn resume(_g: &Globals, a: Args) -> Result<i32> {
    crate::bail!("resume {}: not implemented yet", a.id)
}
