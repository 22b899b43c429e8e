//! Ports for the processes the tests start.
//!
//! Asking the kernel for port 0 and releasing it races: the kernel hands out
//! the same ephemeral range as source ports for outgoing connections (etcd,
//! the API server and Envoy make many), so a port picked that way can be taken
//! by a client socket before Envoy binds it. Ports handed out here come from
//! outside the kernel's ephemeral range, walk forward from a per-process
//! starting point and are never handed out twice by one process; each is
//! checked free by binding it before it is returned.

use std::net::TcpListener;
use std::sync::Mutex;

use crate::{HarnessError, Result};

/// The lowest port handed out; below it live well-known and registered services.
const LOWEST: u32 = 10_000;

struct Allocator {
    /// Half-open range of candidate ports.
    range: (u32, u32),
    /// Offset of the next candidate within the range.
    next: u32,
    /// Candidates tried so far (the range is walked at most once).
    tried: u32,
}

static ALLOCATOR: Mutex<Option<Allocator>> = Mutex::new(None);

/// The kernel's ephemeral range (`ip_local_port_range`), or Linux's default.
fn ephemeral_range() -> (u32, u32) {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .filter_map(|w| w.parse::<u32>().ok());
    match (it.next(), it.next()) {
        (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
        _ => (32_768, 60_999),
    }
}

/// The larger stretch of `[LOWEST, 65536)` outside the ephemeral range.
fn candidate_range((lo, hi): (u32, u32)) -> (u32, u32) {
    let below = (LOWEST, lo.clamp(LOWEST, 65_536));
    let above = ((hi + 1).clamp(LOWEST, 65_536), 65_536);
    if below.1 - below.0 >= above.1 - above.0 {
        below
    } else {
        above
    }
}

impl Allocator {
    fn new() -> Self {
        let range = candidate_range(ephemeral_range());
        let span = (range.1 - range.0).max(1);
        // Spread concurrent test processes over the range.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let seed = std::process::id().wrapping_mul(2_654_435_761) ^ nanos;
        Allocator {
            range,
            next: seed % span,
            tried: 0,
        }
    }

    fn take(&mut self) -> Option<u16> {
        let span = self.range.1 - self.range.0;
        while self.tried < span {
            let port = self.range.0 + self.next;
            self.next = (self.next + 1) % span;
            self.tried += 1;
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Some(port);
            }
        }
        None
    }
}

/// A TCP port on 127.0.0.1 that is free now, outside the kernel's ephemeral
/// range, and not handed out before by this process.
pub fn free_port() -> Result<u16> {
    let mut guard = ALLOCATOR.lock().unwrap_or_else(|e| e.into_inner());
    let alloc = guard.get_or_insert_with(Allocator::new);
    alloc.take().ok_or_else(|| {
        HarnessError::Io(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free TCP port left outside the ephemeral range",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_avoid_the_ephemeral_range() {
        assert_eq!(candidate_range((32_768, 60_999)), (10_000, 32_768));
        assert_eq!(candidate_range((10_500, 40_000)), (40_001, 65_536));
        assert_eq!(candidate_range((1_024, 65_535)), (10_000, 10_000));
    }

    #[test]
    fn ports_are_never_handed_out_twice_and_are_outside_the_range() -> Result<()> {
        let (lo, hi) = ephemeral_range();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = u32::from(free_port()?);
            assert!(
                !(lo..=hi).contains(&p),
                "{p} is in the ephemeral range {lo}-{hi}"
            );
            assert!(seen.insert(p), "{p} handed out twice");
        }
        Ok(())
    }
}
