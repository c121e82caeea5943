use crate::container::{Container, Globals};
use crate::error::{Context, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    let ids = g.store().list()?;
    let states: Vec<_> = ids
        .iter()
        .filter_map(|id| Container::load(g, id).ok())
        .map(|c| c.state.to_oci(c.status))
        .collect();
    if a.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => {
            // runc prints null for no containers (a nil Go slice).
            if states.is_empty() {
                println!("null");
            } else {
                println!("{}", serde_json::to_string(&states).ctx(|| "encode list")?);
            }
        }
        "table" => {
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.clone(),
                        s.created.clone(),
                        s.owner.clone(),
                    ]
                })
                .collect();
            print_table(
                &["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                &rows,
            );
        }
        f => crate::bail!("invalid format option {f:?}: use table or json"),
    }
    Ok(0)
}

fn print_table(head: &[&str; 6], rows: &[[String; 6]]) {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<width$}", c, width = w[i] + 3));
            }
        }
        println!("{}", s.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(|s| s.as_str()).collect());
    }
}
