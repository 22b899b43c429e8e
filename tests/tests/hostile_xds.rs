//! Hostile xDS clients against a real `contour serve` (issue 8, "Hostile
//! clients", the part `serve_ops.rs` does not cover): a thousand idle mTLS
//! gRPC connections, clients that never ACK, never read their stream or stop
//! reading their socket, and oversized or garbage gRPC messages. Contour's
//! memory stays bounded, it does not crash, and a normal client (a real
//! Envoy, and a Rust ADS client that ACKs like Envoy) keeps being served.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use contour_tests::bench::xds as ads;

#[path = "hostile_xds/clients.rs"]
mod clients;
mod common;
#[path = "hostile_xds/config.rs"]
mod config;
#[path = "hostile_xds/raw_grpc.rs"]
mod raw_grpc;
#[path = "hostile_xds/readings.rs"]
mod readings;
#[path = "hostile_xds/relay.rs"]
mod relay;

use clients::*;
use common::{TestResult, XdsMode, ground_isolated, tail};
use config::{host, load, proxy};
use raw_grpc::{frame, raw_call};
use readings::*;
use relay::relay;

const STREAMS: &str = "contour_xds_streams";

type Error = Box<dyn std::error::Error>;

// ---------------------------------------------------------------------------
// 1. A thousand idle connections.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_xds_connections_keep_memory_bounded() -> TestResult {
    const WITH_STREAM: usize = 500;
    const BARE: usize = 500;
    const TOTAL: usize = WITH_STREAM + BARE;
    // Our 1000 sockets, contour's 1000, plus slack; contour inherits ours.
    let limit = raise_nofile(4096)?;
    if limit < (TOTAL as u64) + 200 {
        return Err(format!("open-files limit {limit} too low for {TOTAL} connections").into());
    }
    let g = ground_isolated("hostile-idle", &[], XdsMode::default()).await?;
    let pid = g.contour.pid().ok_or("contour not running")?;
    let contour_limit = nofile_limit(&pid.to_string())?;
    assert!(
        contour_limit >= (TOTAL as u64) + 100,
        "contour serve may open only {contour_limit} files"
    );
    load(&g, 20, 2, 32).await?;
    let tls = tls_config(&g.pki)?;
    let port = g.contour.xds_port;

    // Opens `n` connections, `with_stream` of them with an ADS stream that
    // sent one request and got its answer.
    let open = |n: usize, with_stream: usize| open_idle(port, &tls, n, with_stream);

    // Warm up (allocator arenas, TLS and h2 state reach their steady size),
    // then read the baseline.
    drop(open(40, 20).await?);
    let streams0 = metric(&g.contour, STREAMS).await?;
    wait_until(
        "warm-up streams closed",
        Duration::from_secs(10),
        || async { Ok(metric(&g.contour, STREAMS).await? <= streams0) },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let streams0 = metric(&g.contour, STREAMS).await?;
    let (rss0, fds0) = (rss_kib(pid)?, fds(pid)?);

    let started = Instant::now();
    let conns = open(TOTAL, WITH_STREAM).await?;
    let opened_in = started.elapsed();
    assert_eq!(conns.len(), TOTAL);
    wait_until(
        "every idle stream counted",
        Duration::from_secs(10),
        || async { Ok(metric(&g.contour, STREAMS).await? >= streams0 + WITH_STREAM as f64) },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, fds1) = (rss_kib(pid)?, fds(pid)?);
    // (Give or take a few of contour's own: API server watches, Envoy.)
    assert!(
        fds1 + 10 >= fds0 + TOTAL,
        "contour holds {} more descriptors, not {TOTAL}: the connections are not all open",
        fds1 as i64 - fds0 as i64
    );
    let per_conn = (rss1 as i64 - rss0 as i64) * 1024 / TOTAL as i64;
    println!(
        "{TOTAL} idle mTLS connections ({WITH_STREAM} with an ADS stream) opened in {opened_in:?}: \
         contour RSS {} -> {} ({} bytes per connection), fds {fds0} -> {fds1}",
        mib(rss0 as i64),
        mib(rss1 as i64),
        per_conn
    );
    assert!(
        per_conn < 150 * 1024,
        "{per_conn} bytes of RSS per idle connection (bound: 150 KiB)"
    );

    // While they hang on, Envoy gets a change promptly.
    let change = Instant::now();
    g.apply(&proxy(&g.ns, 0, 2, 32, "/while-idle")).await?;
    g.expect(&host(&g.ns, 0), "/while-idle", (204, "")).await?;
    let took = change.elapsed();
    println!("Envoy served a change {took:?} after it was applied, with {TOTAL} idle clients");
    assert!(
        took < Duration::from_secs(5),
        "Envoy got a change only after {took:?} while {TOTAL} idle clients were connected"
    );

    // Closing them releases their streams, descriptors and memory: a second
    // round of the same connections does not grow contour further.
    drop(conns);
    wait_until("idle streams closed", Duration::from_secs(15), || async {
        Ok(metric(&g.contour, STREAMS).await? <= streams0)
    })
    .await?;
    wait_until(
        "idle descriptors closed",
        Duration::from_secs(15),
        || async { Ok(fds(pid)? <= fds0 + 10) },
    )
    .await?;
    let rss2 = rss_kib(pid)?;
    // Rounds 2 and 3: the memory of the first round is reused (glibc keeps
    // freed memory, so RSS does not fall); a leak would grow every round.
    let mut peaks = Vec::new();
    for _ in 0..2 {
        let again = open(TOTAL, WITH_STREAM).await?;
        wait_until(
            "the round's streams counted",
            Duration::from_secs(10),
            || async { Ok(metric(&g.contour, STREAMS).await? >= streams0 + WITH_STREAM as f64) },
        )
        .await?;
        peaks.push(rss_kib(pid)?);
        drop(again);
        wait_until("the round closed", Duration::from_secs(15), || async {
            Ok(metric(&g.contour, STREAMS).await? <= streams0 && fds(pid)? <= fds0 + 10)
        })
        .await?;
    }
    let rss4 = rss_kib(pid)?;
    println!(
        "after closing: RSS {}; rounds 2 and 3 open: {} and {}; closed: {}",
        mib(rss2 as i64),
        mib(peaks[0] as i64),
        mib(peaks[1] as i64),
        mib(rss4 as i64)
    );
    let growth = peaks[1] as i64 - peaks[0] as i64;
    assert!(
        growth < (rss1 as i64 - rss0 as i64) / 4,
        "round 3 of {TOTAL} connections grew contour by {} beyond round 2 (a leak?)",
        mib(growth)
    );
    assert!(running(pid), "contour exited");
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Clients that never ACK, never read their stream, or stop reading their socket.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_acks_or_reads_keeps_memory_bounded() -> TestResult {
    const EACH: usize = 4;
    const CHANGES: usize = 200;
    let g = ground_isolated("hostile-noack", &[], XdsMode::default()).await?;
    let pid = g.contour.pid().ok_or("contour not running")?;
    // 40 proxies x 4 routes x 1 KiB: every push of `ingress_http` is a
    // route configuration of ~170 KB.
    const PROXIES: usize = 40;
    const ROUTES: usize = 4;
    const BODY: usize = 1024;
    load(&g, PROXIES, ROUTES, BODY).await?;
    let tls = tls_config(&g.pki)?;
    let port = g.contour.xds_port;
    let normal = normal_client(&g);
    watch_route(&normal, 1, "/start");
    route_seen(&normal, 1, "/start").await?;

    // Never ACK, but read everything.
    let mut readers = Vec::new();
    for i in 0..EACH {
        let ch = endpoint(port, &tls)?.connect().await?;
        let s = open_stream(ch, subscribe_all(&format!("noack-{i}"))).await?;
        readers.push(drain(s));
    }
    // Never read the stream: HTTP/2 flow control on the stream (and the
    // connection, whose window the unread data holds) backs up.
    let mut stalled = Vec::new();
    for i in 0..EACH {
        let ch = endpoint(port, &tls)?
            .initial_stream_window_size(Some(65_535))
            .initial_connection_window_size(Some(65_535))
            .connect()
            .await?;
        stalled.push(open_stream(ch, subscribe_all(&format!("stalled-{i}"))).await?);
    }
    // Read normally through a relay, which then stops reading its socket.
    let mut frozen = Vec::new();
    for i in 0..EACH {
        let r = relay(port).await?;
        let ch = endpoint(r.port, &tls)?.connect().await?;
        let mut s = open_stream(ch, subscribe_all(&format!("frozen-{i}"))).await?;
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(20), s.responses.message())
                .await
                .map_err(|_| "no response through the relay")??
                .ok_or("stream ended")?;
        }
        r.freeze.send(true)?;
        frozen.push((r, drain(s)));
    }
    let streams = metric(&g.contour, STREAMS).await?;
    // Ours, plus the normal client's and Envoy's.
    assert!(
        streams > (3 * EACH) as f64,
        "only {streams} xDS streams open"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = rss_kib(pid)?;
    let before = ads::counters_delta(&normal.counters(), &[(0, 0, 0); ads::TYPES]);

    // Sample contour's RSS while the changes go in.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(async move {
        let mut peak = 0u64;
        loop {
            peak = peak.max(rss_kib(pid).unwrap_or(0));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = stopped.changed() => return peak,
            }
        }
    });
    // Watched before it is applied: the push can beat the next line.
    let last = format!("/mark-{}-end", CHANGES - 1);
    watch_route(&normal, 2, &last);
    let start = Instant::now();
    let mut last_applied = start;
    for k in 0..CHANGES {
        let marker = format!("/mark-{k}-end");
        g.apply(&proxy(&g.ns, k % PROXIES, ROUTES, BODY, &marker))
            .await?;
        last_applied = Instant::now();
        // Past contour's quiet time (10 ms), so that most changes are pushes
        // of their own however fast the API server answers.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let applied = start.elapsed();
    let normal_took = route_seen_at(&normal, 2, &last)
        .await?
        .saturating_duration_since(last_applied);
    let envoy_start = Instant::now();
    g.expect(&host(&g.ns, (CHANGES - 1) % PROXIES), &last, (204, ""))
        .await?;
    let envoy_took = envoy_start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop.send(true);
    let peak = sampler.await?;
    let rss1 = rss_kib(pid)?;
    let pushed = ads::counters_delta(&normal.counters(), &before);
    let pushed_bytes: u64 = pushed.iter().map(|c| c.1).sum();
    let pushed_responses: u64 = pushed.iter().map(|c| c.0).sum();

    // (Whether a client that never ACKs gets new versions is the stream
    // state machine's choice; go-control-plane waits for the ACK. Reported only.)
    let noack: Vec<u64> = readers
        .iter()
        .map(|d| d.responses.load(Ordering::Relaxed))
        .collect();
    let through_frozen: Vec<u64> = frozen
        .iter()
        .map(|(_, d)| d.responses.load(Ordering::Relaxed))
        .collect();
    println!(
        "responses received by the never-ACKing readers: {noack:?}; by the frozen-socket clients: {through_frozen:?}"
    );
    drop(stalled);
    drop(frozen);
    drop(readers);
    let growth = peak as i64 - rss0 as i64;
    let unbounded = (pushed_bytes as i64) * (2 * EACH) as i64 / 1024;
    println!(
        "{CHANGES} changes applied in {applied:?}; the normal client got {pushed_responses} responses \
         ({} KiB) and the last change {normal_took:?} after the last apply (Envoy {envoy_took:?} after that); \
         contour RSS {} -> peak {} -> {} with {EACH} never-ACKing, {EACH} never-reading and {EACH} \
         frozen-socket clients (queueing every push for the {} blocked ones would be {})",
        pushed_bytes / 1024,
        mib(rss0 as i64),
        mib(peak as i64),
        mib(rss1 as i64),
        2 * EACH,
        mib(unbounded)
    );
    assert!(
        pushed_bytes > 4 << 20,
        "the changes pushed only {pushed_bytes} bytes: too little to back anything up"
    );
    // Queueing what the blocked clients are not taking would grow contour
    // by `unbounded`; bounded queues hold a few responses per stream.
    assert!(
        unbounded > 64 * 1024,
        "the changes would queue only {} for the blocked clients: too little to tell",
        mib(unbounded)
    );
    assert!(
        growth < 16 * 1024,
        "contour grew by {} under clients that do not ACK or read",
        mib(growth)
    );
    assert!(
        normal_took < Duration::from_secs(5),
        "the normal client got the last change only {normal_took:?} after it was applied"
    );
    assert!(running(pid), "contour exited");
    Ok(())
}

// ---------------------------------------------------------------------------
// 3. Oversized and garbage gRPC messages.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_garbage_grpc_messages_get_an_error_and_no_crash() -> TestResult {
    let g = ground_isolated("hostile-garbage", &[], XdsMode::default()).await?;
    let pid = g.contour.pid().ok_or("contour not running")?;
    load(&g, 3, 1, 8).await?;
    let tls = tls_config(&g.pki)?;
    let port = g.contour.xds_port;
    let normal = normal_client(&g);
    watch_route(&normal, 1, "/start");
    route_seen(&normal, 1, "/start").await?;
    let streams0 = metric(&g.contour, STREAMS).await?;
    let channel = endpoint(port, &tls)?.connect().await?;
    let ads_path =
        "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
    let mut seen = Vec::new();

    // 1. A DiscoveryRequest of 16 MiB of resource names (the limit is 4 MiB).
    let names: Vec<String> = (0..16 * 1024)
        .map(|i| format!("{i:08}{}", "n".repeat(1016)))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let big = request("oversized", ROUTE, &names);
    assert!(prost::Message::encoded_len(&big) > 16 << 20);
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        let mut s = open_stream(channel.clone(), vec![big]).await?;
        let mut responses = 0;
        loop {
            match s.responses.message().await {
                Ok(Some(_)) => responses += 1,
                Ok(None) => return Ok::<_, Error>(Ok(responses)),
                Err(status) => return Ok(Err(status)),
            }
        }
    })
    .await
    .map_err(|_| "the oversized request neither failed nor ended within 20 s")??;
    match outcome {
        Err(status) => {
            println!(
                "16 MiB DiscoveryRequest: {:?}: {}",
                status.code(),
                status.message()
            );
            assert_ne!(status.code(), tonic::Code::Ok);
            seen.push(("16 MiB DiscoveryRequest", status.code()));
        }
        Ok(n) => {
            return Err(format!(
                "a 16 MiB DiscoveryRequest ended with grpc-status 0 after {n} responses"
            )
            .into());
        }
    }

    // 2..5: raw frames on the ADS method, and unknown methods.
    let cases: Vec<(&str, &str, Vec<u8>, tonic::Code)> = vec![
        (
            "length prefix 2 GiB, body 3 bytes",
            ads_path,
            frame(0, 0x7f7f_7f7f, b"abc"),
            tonic::Code::OutOfRange,
        ),
        (
            "invalid protobuf",
            ads_path,
            // Field 1 (version_info) claims 127 bytes; 3 follow.
            frame(0, 5, b"\x0a\x7fabc"),
            tonic::Code::Internal,
        ),
        (
            "wire type 7",
            ads_path,
            frame(0, 3, b"\x0f\x01\x02"),
            tonic::Code::Internal,
        ),
        (
            "compressed flag without grpc-encoding",
            ads_path,
            frame(1, 3, b"abc"),
            tonic::Code::Internal,
        ),
        (
            "truncated frame (length 771, 3 bytes, end of stream)",
            ads_path,
            frame(0, 0x0303, b"abc"),
            tonic::Code::Internal,
        ),
        (
            "invalid protobuf on a unary fetch",
            "/envoy.service.cluster.v3.ClusterDiscoveryService/FetchClusters",
            frame(0, 5, b"\x0a\x7fabc"),
            tonic::Code::Internal,
        ),
        (
            "unknown method",
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/NoSuchMethod",
            frame(0, 0, b""),
            tonic::Code::Unimplemented,
        ),
        (
            "unknown service",
            "/no.such.Service/Method",
            frame(0, 0, b""),
            tonic::Code::Unimplemented,
        ),
    ];
    for (what, path, body, want) in cases {
        let out = raw_call(&channel, path, body).await?;
        println!("{what}: {out:?}");
        let code = out.status.as_ref().map(tonic::Status::code);
        assert_eq!(
            code,
            Some(want),
            "{what}: wanted grpc-status {want:?}, got {out:?}"
        );
        assert_eq!(out.http, 200, "{what}: {out:?}");
        assert_eq!(out.data, 0, "{what}: answered with data: {out:?}");
        seen.push((what, want));
        assert!(running(pid), "contour exited after: {what}");
    }
    println!("errors seen: {seen:?}");

    // Contour lives, is healthy, released the failed streams and still serves.
    assert!(running(pid), "contour exited");
    let (code, _) = g.contour.get("/healthz").await?;
    assert_eq!(code, 200, "/healthz");
    wait_until(
        "the failed streams closed",
        Duration::from_secs(10),
        || async { Ok(metric(&g.contour, STREAMS).await? <= streams0) },
    )
    .await?;
    watch_route(&normal, 2, "/after-garbage");
    g.apply(&proxy(&g.ns, 0, 1, 8, "/after-garbage")).await?;
    let took = route_seen(&normal, 2, "/after-garbage").await?;
    assert!(took < Duration::from_secs(5), "slow: {took:?}");
    g.expect(&host(&g.ns, 0), "/after-garbage", (204, ""))
        .await?;
    // The same connection still works for a proper stream.
    let mut s = open_stream(channel.clone(), vec![request("after", CLUSTER, &[])]).await?;
    tokio::time::timeout(Duration::from_secs(10), s.responses.message())
        .await
        .map_err(|_| "no CDS response after the garbage")??
        .ok_or("stream ended")?;
    let log = g.contour.log();
    assert!(!log.contains("panicked"), "{}", tail(&log, 30));
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Connections that never begin HTTP/2, and the open-files limit.

/// Opens a TCP connection to the xDS port and, with `tls`, completes the
/// mutual TLS handshake with Envoy's certificate; then sends nothing and
/// returns how long the server kept the connection open (`None`: still
/// open after `wait`).
fn silent_connection(
    port: u16,
    tls: Option<&contour_tests::XdsPki>,
    wait: Duration,
) -> Result<Option<Duration>, Error> {
    use std::io::Read;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let opened = Instant::now();
    tcp.set_read_timeout(Some(wait))?;
    let mut buf = [0u8; 512];
    let Some(pki) = tls else {
        return Ok(match tcp.read(&mut buf) {
            Ok(0) | Err(_) if opened.elapsed() < wait => Some(opened.elapsed()),
            _ => None,
        });
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki.ca)? {
        roots.add(cert?)?;
    }
    let chain = CertificateDer::pem_file_iter(&pki.envoy_cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&pki.envoy_key)?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("contour")?)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(loop {
        match stream.read(&mut buf) {
            Ok(0) => break Some(opened.elapsed()),
            Ok(_) => continue,
            Err(_) if opened.elapsed() < wait => break Some(opened.elapsed()),
            Err(_) => break None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_the_open_files_limit_is_raised() -> TestResult {
    contour_tests::init_crypto();
    let api = contour_tests::ApiServer::shared()?;
    contour_tests::k8s::install_crds(&api.admin_client().await?).await?;
    let ns = api.namespace("hostile-silent").await?;
    let pki = contour_tests::XdsPki::new(&ns)?;
    // Started with a soft limit of 256 open files: contour raises it to the
    // hard limit, as Go programs (upstream Contour) do.
    let hard = nofile_limits("self")?.1;
    let nofile = format!("--nofile=256:{hard}");
    let contour = contour_tests::ContourServe::start_wrapped(
        api,
        Some(&pki),
        &[
            &format!("--leader-election-resource-namespace={ns}"),
            &format!("--watch-namespaces={ns}"),
        ],
        &["prlimit", &nofile, "--"],
    )
    .await?;
    let pid = contour.pid().ok_or("contour not running")?;
    let soft = nofile_limit(&pid.to_string())?;
    assert_eq!(
        soft, hard,
        "contour kept a soft open-files limit of {soft} (hard {hard})"
    );

    // A client that completes mutual TLS and never sends the HTTP/2
    // preface, and one that never starts TLS: both are closed within the
    // opening time (10 s), not kept for ever.
    let port = contour.xds_port;
    let wait = Duration::from_secs(20);
    let client_pki = pki.clone();
    let (after_tls, silent_tcp) = tokio::task::spawn_blocking(move || {
        let tls = silent_connection(port, Some(&pki), wait).map_err(|e| e.to_string());
        let tcp = silent_connection(port, None, wait).map_err(|e| e.to_string());
        (tls, tcp)
    })
    .await?;
    let after_tls = after_tls?.ok_or("a connection without HTTP/2 stayed open for 20 s")?;
    let silent_tcp = silent_tcp?.ok_or("a connection without TLS stayed open for 20 s")?;
    println!("closed after {after_tls:?} (TLS, no preface) and {silent_tcp:?} (no TLS)");
    for closed in [after_tls, silent_tcp] {
        assert!(
            closed >= Duration::from_secs(9) && closed < Duration::from_secs(15),
            "closed after {closed:?}, not after the 10 s opening time"
        );
    }
    let log = contour.log();
    assert!(
        log.contains("no TLS handshake and HTTP/2 preface in time"),
        "{}",
        tail(&log, 20)
    );
    assert!(running(pid), "contour exited");
    // A client that does speak HTTP/2 is still served (listeners exist
    // once the first build is done).
    let channel = endpoint(port, &tls_config(&client_pki)?)?.connect().await?;
    let mut s = open_stream(channel, vec![request("after-silent", LISTENER, &[])]).await?;
    tokio::time::timeout(Duration::from_secs(10), s.responses.message())
        .await
        .map_err(|_| "no LDS response after the silent connections")??
        .ok_or("stream ended")?;
    Ok(())
}
