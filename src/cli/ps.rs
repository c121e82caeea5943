use crate::container::Globals;
use crate::error::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// Extra arguments for ps(1)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(_g: &Globals, a: Args) -> Result<i32> {
    crate::bail!("ps {}: not implemented yet", a.id)
}
