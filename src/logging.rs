//! runc-compatible logging: `--log FILE` and `--log-format text|json`.
//! containerd and podman parse the log as one JSON object per line
//! (`{"level","msg","time"}`) and show the last error's msg, so every line is
//! written with one write(2) and nothing but warnings and errors appears unless
//! `--debug` is given.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    sink: Mutex<Sink>,
    format: Format,
    level: log::LevelFilter,
}

enum Sink {
    Stderr,
    File(File),
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(self.format, record.level(), &record.args().to_string());
        if let Ok(mut sink) = self.sink.lock() {
            let _ = match &mut *sink {
                Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
                Sink::File(f) => f.write_all(line.as_bytes()),
            };
        }
    }

    fn flush(&self) {}
}

fn level_name(l: log::Level) -> &'static str {
    match l {
        log::Level::Error => "error",
        log::Level::Warn => "warning",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    }
}

/// One complete log line, newline included.
pub fn format_line(format: Format, level: log::Level, msg: &str) -> String {
    let time = rfc3339_now();
    let msg = &crate::error::bounded(msg);
    match format {
        Format::Json => {
            let msg = serde_json::to_string(msg).unwrap_or_else(|_| "\"\"".into());
            format!(
                "{{\"level\":\"{}\",\"msg\":{},\"time\":\"{}\"}}\n",
                level_name(level),
                msg,
                time
            )
        }
        Format::Text => format!(
            "time=\"{}\" level={} msg={}\n",
            rfc3339_seconds_now(),
            level_name(level),
            text_value(msg)
        ),
    }
}

/// A value in logrus's text form, as runc prints it: bare when it is made
/// only of letters, digits and `-._/@^+`, else quoted the way Go's `%q` does.
fn text_value(v: &str) -> String {
    let bare = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if bare {
        v.to_string()
    } else {
        go_quote(v)
    }
}

/// Go's strconv.Quote: `"` and `\` escaped, \n \t \r as such, other
/// unprintable characters as \xNN or \uNNNN, printable Unicode as it is.
fn go_quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && (c.is_ascii_control()) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') || is_format_char(c) => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Invisible formatting characters Go does not count as printable.
fn is_format_char(c: char) -> bool {
    matches!(c as u32, 0xad | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0xfeff)
}

/// How a command's failure reaches the caller, as runc does it: the error is
/// logged; without a `--log` file the log is stderr, so stderr carries the
/// formatted line (`time=... level=error msg=...`, or a JSON object), and with
/// one the log file has the line and stderr the bare message.
pub fn report_error(msg: &str, format: Format, to_file: bool) {
    if to_file {
        log::error!("{msg}");
        eprintln!("{}", crate::error::bounded(msg));
    } else {
        let line = format_line(format, log::Level::Error, msg);
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// Install the global logger. A `--log` file that cannot be opened is fatal,
/// as in runc: a caller that reads the log for the error would otherwise find
/// nothing. The error names the path and the errno.
pub fn init(path: Option<&str>, format: Format, debug: bool) -> Result<(), String> {
    let sink = match path {
        Some(p) if !p.is_empty() => match OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_CLOEXEC)
            .mode(0o644)
            .open(p)
        {
            Ok(f) => Sink::File(f),
            Err(e) => return Err(format!("open log file {p}: {}", errno_text(&e))),
        },
        _ => Sink::Stderr,
    };
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    let logger = Logger {
        sink: Mutex::new(sink),
        format,
        level,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
    Ok(())
}

/// `ENOENT: No such file or directory`, as the rest of skiff words errnos.
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).to_string(),
        None => e.to_string(),
    }
}

/// Go's time.RFC3339 (whole seconds), the time logrus's text lines carry.
fn rfc3339_seconds_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let full = rfc3339(d.as_secs() as i64, 0);
    full.replace(".000000000Z", "Z")
}

pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// UTC RFC 3339 timestamp with nanoseconds, like Go's time.RFC3339Nano.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        y,
        m,
        d,
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        nanos
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil_from_days algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_392_000, 0), "2026-11-23T00:00:00.000000000Z");
    }

    #[test]
    fn unopenable_log_is_an_error() {
        let e = init(Some("/nonexistent-skiff/dir/x"), Format::Text, false).unwrap_err();
        assert_eq!(
            e,
            "open log file /nonexistent-skiff/dir/x: ENOENT: No such file or directory"
        );
    }

    #[test]
    fn json_line_is_one_object() {
        let l = format_line(Format::Json, log::Level::Error, "a \"quoted\"\nmsg");
        assert!(l.ends_with('\n'));
        assert_eq!(l.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "a \"quoted\"\nmsg");
    }

    #[test]
    fn text_line_quotes_as_logrus() {
        let l = format_line(
            Format::Text,
            log::Level::Error,
            "container \"x\" does not exist",
        );
        assert!(l.starts_with("time=\""), "{l}");
        assert!(
            l.ends_with(" level=error msg=\"container \\\"x\\\" does not exist\"\n"),
            "{l}"
        );
        let l = format_line(Format::Text, log::Level::Warn, "plain-word");
        assert!(l.ends_with(" level=warning msg=plain-word\n"), "{l}");
        assert_eq!(go_quote("a\\b\nc\u{200b}é"), "\"a\\\\b\\nc\\u200bé\"");
    }

    #[test]
    fn log_lines_are_bounded() {
        let l = format_line(
            Format::Json,
            log::Level::Error,
            &format!("x\0{}", "y".repeat(1 << 20)),
        );
        assert!(l.len() < 600, "{}", l.len());
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert!(v["msg"].as_str().unwrap().starts_with("x\\0yyy"));
    }
}
