use crate::bail;
use crate::container::{resources, Globals};
use crate::error::{Context, Result};

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

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    if a.format != "table" && a.format != "json" {
        bail!("invalid format option {:?}: use table or json", a.format);
    }
    let pids = resources::pids(g, &a.id)?;
    if a.format == "json" {
        super::out::line(&serde_json::to_string(&pids).ctx(|| "encode pids")?)?;
        return Ok(0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .ctx(|| "run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    super::out::raw(&filter_table(&String::from_utf8_lossy(&out.stdout), &pids)?)?;
    Ok(0)
}

/// Keep ps(1)'s header and the lines whose PID column is one of `pids`.
fn filter_table(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("couldn't find PID field in ps output");
    };
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or_default();
        let Ok(pid) = field.parse::<i32>() else {
            bail!("unable to parse pid {field:?} in ps output");
        };
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_lines() {
        let t = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep 9\n";
        assert_eq!(
            filter_table(t, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep 9\n"
        );
        assert!(filter_table("UID CMD\n", &[1]).is_err());
    }
}
