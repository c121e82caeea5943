//! `--debug` step timing: one debug line `timing: <step>: <N> us` per step of
//! create/start/run/exec (scripts/bench.sh parses exactly this format; the
//! steps are listed in README's "Where time goes"). Each step is the time
//! since the previous one on the same side: the parent's steps tile its wall
//! time, and init's steps (collected in init, which has no logger, and sent
//! to the parent before Ready) tile init's, overlapping the parent's `ready`.
//!
//! Off (no `--debug`), `lap` is one relaxed atomic load: no clock is read.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const OFF: u8 = 0;
/// The parent: each lap is logged at once.
const LOG: u8 = 1;
/// init: laps are kept for `take` (init reports them over the sync socket).
const COLLECT: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(OFF);
static LAST: Mutex<Option<Instant>> = Mutex::new(None);
static KEPT: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

/// The parent under `--debug`: time from `since` (the process start) on.
pub fn log_from(since: Instant) {
    set(LOG, since);
}

/// init, asked by the parent to time its steps, from `since` (its start) on.
pub fn collect_from(since: Instant) {
    set(COLLECT, since);
}

fn set(mode: u8, since: Instant) {
    if let Ok(mut l) = LAST.lock() {
        *l = Some(since);
    }
    MODE.store(mode, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    MODE.load(Ordering::Relaxed) != OFF
}

/// The step `name` ended now: it took the time since the previous lap.
pub fn lap(name: &str) {
    let mode = MODE.load(Ordering::Relaxed);
    if mode == OFF {
        return;
    }
    let now = Instant::now();
    let us = match LAST.lock() {
        Ok(mut l) => {
            let us = l.map_or(0, |t| now.duration_since(t).as_micros() as u64);
            *l = Some(now);
            us
        }
        Err(_) => return,
    };
    if mode == LOG {
        emit(name, us);
    } else if let Ok(mut k) = KEPT.lock() {
        k.push((name.to_string(), us));
    }
}

/// Restart the clock without a step (time spent elsewhere, e.g. waiting for
/// the container's process in a foreground `run`).
pub fn reset() {
    if enabled() {
        if let Ok(mut l) = LAST.lock() {
            *l = Some(Instant::now());
        }
    }
}

/// init's collected laps, oldest first (empty unless collecting).
pub fn take() -> Vec<(String, u64)> {
    KEPT.lock()
        .map(|mut k| std::mem::take(&mut *k))
        .unwrap_or_default()
}

/// Log one step measured elsewhere (init's, received by the parent).
pub fn emit(name: &str, us: u64) {
    log::debug!("timing: {name}: {us} us");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collected_laps_come_back_in_order_and_off_means_nothing() {
        lap("before");
        assert!(take().is_empty(), "no laps while off");
        collect_from(Instant::now());
        lap("one");
        lap("two");
        let got = take();
        assert_eq!(
            got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["one", "two"]
        );
        assert!(take().is_empty());
        MODE.store(OFF, Ordering::Relaxed);
    }
}
