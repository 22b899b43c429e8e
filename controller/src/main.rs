//! `contour`: serve, bootstrap, certgen and cli (see `contour::cmd`).

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("serve") {
        heap_trim::start();
    }
    contour::cmd::main()
}

/// glibc's malloc keeps memory freed after a burst (a full snapshot pushed
/// to many Envoys, a resync) for reuse, so the process's RSS stays at its
/// high-water mark. A background thread hands free pages back to the kernel
/// every few seconds (`malloc_trim`); live memory is untouched.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod heap_trim {
    use std::time::Duration;

    const EVERY: Duration = Duration::from_secs(2);

    // The one unsafe call of the crate: an FFI call into glibc.
    #[allow(unsafe_code)]
    pub fn start() {
        let spawned = std::thread::Builder::new()
            .name("heap-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(EVERY);
                    // SAFETY: malloc_trim only returns free pages of the
                    // allocator's arenas to the kernel; it takes the arena
                    // locks itself and may be called from any thread.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
        // Without the thread the controller works the same, with more RSS.
        drop(spawned);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod heap_trim {
    pub fn start() {}
}
