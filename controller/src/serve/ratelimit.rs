//! A token bucket in front of the Kubernetes client (upstream's
//! `--kubernetes-client-qps`/`--kubernetes-client-burst`): each request
//! takes a token; tokens refill at `qps` per second up to `burst`. A request
//! without a token waits its turn (reservations queue in order), so a status
//! backlog cannot flood the API server.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The bucket: pure arithmetic over instants.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Tokens now; negative while requests wait for reserved ones.
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(qps: f64, burst: u32, now: Instant) -> Bucket {
        let burst = f64::from(burst.max(1));
        Bucket {
            tokens: burst,
            burst,
            per_second: qps,
            at: now,
        }
    }

    /// Takes a token at `now`; returns how long the caller must wait for it.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }
}

/// The layer (`qps` ≤ 0: no limit is installed by the caller).
#[derive(Debug, Clone)]
pub struct RateLimit {
    bucket: Arc<Mutex<Bucket>>,
}

impl RateLimit {
    /// A limit of `qps` requests per second with bursts of `burst`.
    pub fn new(qps: f64, burst: u32) -> RateLimit {
        RateLimit {
            bucket: Arc::new(Mutex::new(Bucket::new(qps, burst, Instant::now()))),
        }
    }
}

impl<S> tower::Layer<S> for RateLimit {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            bucket: self.bucket.clone(),
            wait: None,
            reserved: false,
        }
    }
}

/// The limited service.
pub struct Limited<S> {
    inner: S,
    bucket: Arc<Mutex<Bucket>>,
    wait: Option<Pin<Box<Sleep>>>,
    reserved: bool,
}

impl<S, R> tower::Service<R> for Limited<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if !self.reserved {
            let wait = {
                let mut b = match self.bucket.lock() {
                    Ok(b) => b,
                    Err(p) => p.into_inner(),
                };
                b.reserve(Instant::now())
            };
            self.reserved = true;
            if !wait.is_zero() {
                self.wait = Some(Box::pin(tokio::time::sleep(wait)));
            }
        }
        if let Some(w) = self.wait.as_mut() {
            match w.as_mut().poll(cx) {
                Poll::Ready(()) => self.wait = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        self.reserved = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_free_then_requests_wait_their_turn() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 3, t0);
        for _ in 0..3 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        // The 4th and 5th wait 0.5 s and 1 s (2 per second).
        assert_eq!(b.reserve(t0), Duration::from_millis(500));
        assert_eq!(b.reserve(t0), Duration::from_millis(1000));
        // After 10 s the bucket is full again, but not fuller than the burst.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(b.reserve(later), Duration::ZERO);
        }
        assert!(b.reserve(later) > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_spaces_requests_out() {
        use tower::{Layer, Service, ServiceExt};
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let inner = tower::service_fn(move |_: ()| {
            let seen = seen.clone();
            async move {
                if let Ok(mut s) = seen.lock() {
                    s.push(Instant::now());
                }
                Ok::<_, std::convert::Infallible>(())
            }
        });
        let mut svc = RateLimit::new(10.0, 1).layer(inner);
        let start = Instant::now();
        for _ in 0..5 {
            let ready = svc.ready().await;
            assert!(ready.is_ok());
            let _ = svc.call(()).await;
        }
        let took = start.elapsed();
        // One free, four at 100 ms intervals.
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_millis(500), "{took:?}");
        assert_eq!(calls.lock().map(|c| c.len()).unwrap_or(0), 5);
    }
}
