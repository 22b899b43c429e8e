//! The steady client: GETs one existing host through Envoy every few
//! milliseconds during the samples and counts what is not a 200.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::sampling::http_client;
use crate::bench::Result;

/// What the steady client saw during the samples.
#[derive(Debug, Clone, Default)]
pub struct SteadyCounts {
    /// Requests sent.
    pub requests: u64,
    /// 200 responses.
    pub ok: u64,
    /// 404 responses (the steady host is always there: also unexpected).
    pub not_found: u64,
    /// Responses neither 200 nor 404.
    pub other: u64,
    /// Connection errors and timeouts.
    pub errors: u64,
    /// The first few unexpected outcomes, as text.
    pub examples: Vec<String>,
}

impl SteadyCounts {
    /// Responses neither 200 nor 404, plus connection errors.
    pub fn bad(&self) -> u64 {
        self.other + self.errors
    }
}
/// A client GETting one host through Envoy every `every` until stopped.
pub(super) struct SteadyClient {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<SteadyCounts>,
}

impl SteadyClient {
    pub(super) fn start(listen: u16, host: String, every: Duration) -> Result<SteadyClient> {
        let http = http_client()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut c = SteadyCounts::default();
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stopped.load(Ordering::Relaxed) {
                tick.tick().await;
                c.requests += 1;
                let r = http
                    .get(format!("http://127.0.0.1:{listen}/"))
                    .header("Host", &host)
                    .send()
                    .await;
                let bad = match r {
                    Ok(r) => match r.status().as_u16() {
                        200 => {
                            c.ok += 1;
                            None
                        }
                        404 => {
                            c.not_found += 1;
                            Some("404".to_string())
                        }
                        s => {
                            c.other += 1;
                            Some(s.to_string())
                        }
                    },
                    Err(e) => {
                        c.errors += 1;
                        Some(format!("error: {e}"))
                    }
                };
                if let Some(b) = bad
                    && c.examples.len() < 5
                {
                    c.examples.push(b);
                }
            }
            c
        });
        Ok(SteadyClient { stop, task })
    }

    pub(super) async fn finish(self) -> SteadyCounts {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
