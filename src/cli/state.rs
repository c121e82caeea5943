use crate::container::{Container, Globals};
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    let c = Container::load(g, &a.id)?;
    super::out::line(&c.oci_state_json()?)?;
    Ok(0)
}
