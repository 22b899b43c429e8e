//! Process settings of `contour serve`, applied before it starts: the
//! open-files limit and giving freed heap back to the kernel. They live in
//! the library so that every binary built from it (`contour`, and the tests'
//! `contour-under-test`) runs the same way. The FFI calls into libc are the
//! crate's only `unsafe` code.

/// Applies both settings (see [`raise_open_files`], [`start_heap_trim`]).
pub fn prepare_serve() {
    let raised = raise_open_files();
    start_heap_trim();
    if let Some((from, to)) = raised {
        tracing::info!(from, to, "raised the open-files limit");
    }
}

/// Raises the soft limit of open files to the hard limit, as Go's runtime
/// does for every Go program (upstream Contour among them): the xDS server
/// holds a connection per Envoy, and a container's usual soft limit
/// (1,024) is reached long before its hard one. Returns the limits before
/// and after, when it changed.
#[cfg(unix)]
#[allow(unsafe_code)]
pub fn raise_open_files() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the `rlimit`
    // passed by reference, which outlives both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return None;
        }
        let from = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return None;
        }
        Some((from, limit.rlim_max))
    }
}

#[cfg(not(unix))]
pub fn raise_open_files() -> Option<(u64, u64)> {
    None
}

/// glibc's malloc keeps memory freed after a burst (a full snapshot pushed
/// to many Envoys, a resync) for reuse, so the process's RSS stays at its
/// high-water mark. A background thread hands free pages back to the kernel
/// every two seconds (`malloc_trim`); live memory is untouched. Without the
/// thread (it could not be started) the controller works the same, with
/// more RSS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn start_heap_trim() {
    let spawned = std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(2));
                // SAFETY: malloc_trim only returns free pages of the
                // allocator's arenas to the kernel; it takes the arena locks
                // itself and may be called from any thread.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "heap trim thread not started");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn start_heap_trim() {}
