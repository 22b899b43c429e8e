//! Readings of the contour serve process: RSS, descriptors and limits from
//! `/proc`, its metrics, and waiting for a condition.

use std::time::{Duration, Instant};

use contour_tests::ContourServe;

use super::Error;

/// `VmRSS` of a process, KiB.
pub fn rss_kib(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no VmRSS for {pid}").into())
}

/// Open file descriptors of a process.
pub fn fds(pid: u32) -> Result<usize, Error> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// The soft and hard limits of open files of a process (`self` for this
/// one); `unlimited` reads as `u64::MAX`.
pub fn nofile_limits(pid: &str) -> Result<(u64, u64), Error> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .ok_or("no open-files limit")?;
    let mut values = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|v| match v {
            "unlimited" => Ok(u64::MAX),
            v => v.parse::<u64>(),
        });
    let soft = values.next().ok_or("no soft limit")??;
    let hard = values.next().ok_or("no hard limit")??;
    Ok((soft, hard))
}

/// The soft limit of open files of a process.
pub fn nofile_limit(pid: &str) -> Result<u64, Error> {
    Ok(nofile_limits(pid)?.0)
}

/// Raises this process's soft open-files limit to `want` (within the hard
/// limit); children started afterwards (contour serve) inherit it.
#[allow(unsafe_code)]
pub fn raise_nofile(want: u64) -> Result<u64, Error> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
        }
    }
    Ok(lim.rlim_cur)
}

/// Whether the process runs (exists and is not a zombie).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && (l.contains("Z") || l.contains("X")))
    })
}

pub async fn metric(contour: &ContourServe, sample: &str) -> Result<f64, Error> {
    contour
        .metric(sample)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no {sample} in /metrics").into())
}

pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Error>>,
{
    let start = Instant::now();
    loop {
        if f().await? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!("{what}: not within {timeout:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn mib(kib: i64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
