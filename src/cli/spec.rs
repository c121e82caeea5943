use crate::error::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to write config.json into
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
}

pub fn run(a: Args, rootless: bool) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        crate::bail!("File {} exists. Remove it first", path.display());
    }
    let v = crate::spec::default_spec(rootless);
    let text = serde_json::to_string_pretty(&v).ctx(|| "encode spec")?;
    std::fs::write(&path, text + "\n").ctx(|| format!("write {}", path.display()))?;
    Ok(0)
}
