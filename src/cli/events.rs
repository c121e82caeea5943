use crate::bail;
use crate::container::{resources, Globals};
use crate::error::Result;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print stats once and exit
    #[arg(long)]
    pub stats: bool,
    /// Stats collection interval (a Go duration: 5s, 100ms, 1m30s)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

pub fn run(g: &Globals, a: Args) -> Result<i32> {
    let every = parse_duration(&a.interval)?;
    if every.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let mut out = std::io::stdout().lock();
    resources::events(g, &a.id, (!a.stats).then_some(every), &mut out)?;
    Ok(0)
}

/// Go's time.ParseDuration: a sequence of decimal numbers with units
/// (ns, us, µs, ms, s, m, h), e.g. "1h15m", "1.5s"; "0" alone is zero.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || crate::error::Error::new(format!("invalid duration {s:?}"));
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        bail!("duration interval must be greater than 0");
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += num * scale;
        rest = &rest[u..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "s", "5x", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("-1s").is_err());
    }
}
