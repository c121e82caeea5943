use crate::container::Globals;
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print stats once and exit
    #[arg(long)]
    pub stats: bool,
    /// Stats collection interval
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

pub fn run(_g: &Globals, a: Args) -> Result<i32> {
    crate::bail!("events {}: not implemented yet", a.id)
}
