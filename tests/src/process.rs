//! Child processes and clean-up.
//!
//! Every child is started from one long-lived thread with `PR_SET_PDEATHSIG`,
//! so the kernel kills it even if the test binary is killed; an `atexit`
//! hook also kills children, runs registered clean-up commands (network
//! namespaces) and removes the run directory on a normal exit. Left-overs of
//! runs whose process is gone are removed when the next run starts.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use crate::{HarnessError, Result};

const RUN_PREFIX: &str = "contour-rs-test-";

struct Registry {
    pids: Vec<u32>,
    commands: Vec<Vec<String>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    pids: Vec::new(),
    commands: Vec::new(),
});
static RUN_DIR: OnceLock<PathBuf> = OnceLock::new();

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);
static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();

/// The directory of this test binary's run (removed at exit).
pub fn run_dir() -> Result<&'static Path> {
    if let Some(d) = RUN_DIR.get() {
        return Ok(d);
    }
    remove_stale_runs();
    let dir = std::env::temp_dir().join(format!("{RUN_PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    install_exit_hook();
    Ok(RUN_DIR.get_or_init(|| dir))
}

/// Spawns `cmd` with its output appended to `log`, so that it dies with us.
pub fn spawn(mut cmd: Command, log: &Path) -> Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    set_parent_death_signal(&mut cmd);
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("harness-spawner".into())
            .spawn(move || {
                // Lives as long as the process: PDEATHSIG fires when the
                // spawning thread exits, so it must never exit early.
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map(|_| ())
            .unwrap_or(());
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    {
        let tx = spawner
            .lock()
            .map_err(|_| std::io::Error::other("spawner lock poisoned"))?;
        tx.send((cmd, reply_tx))
            .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    }
    let child = reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))??;
    if let Ok(mut r) = REGISTRY.lock() {
        r.pids.push(child.id());
    }
    Ok(child)
}

/// Forgets a child that was stopped and reaped by its owner.
pub fn forget(pid: u32) {
    if let Ok(mut r) = REGISTRY.lock() {
        r.pids.retain(|p| *p != pid);
    }
}

/// Registers a command to run at exit (e.g. `ip netns del NAME`).
pub fn at_exit(command: &[&str]) {
    if let Ok(mut r) = REGISTRY.lock() {
        r.commands
            .push(command.iter().map(|s| s.to_string()).collect());
    }
}

/// Runs a short helper command and returns its stdout, or an error with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program).args(args).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HarnessError::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("FLAG: --")).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Kills a process by pid with SIGKILL and reaps it if it is our child.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
    forget(child.id());
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn remove_stale_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = name
            .strip_prefix(RUN_PREFIX)
            .and_then(|p| p.parse::<u32>().ok());
        if stale.is_some_and(|pid| !pid_alive(pid)) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only this child.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[allow(unsafe_code)]
fn install_exit_hook() {
    extern "C" fn on_exit() {
        cleanup();
    }
    // SAFETY: registers a plain function with no captured state.
    unsafe {
        libc::atexit(on_exit);
    }
}

/// Kills every registered child, runs the clean-up commands and removes the
/// run directory. Called at exit; safe to call more than once.
pub fn cleanup() {
    let (pids, commands) = match REGISTRY.try_lock() {
        Ok(mut r) => (std::mem::take(&mut r.pids), std::mem::take(&mut r.commands)),
        Err(_) => (Vec::new(), Vec::new()),
    };
    for pid in pids {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    for c in commands.iter().rev() {
        if let Some((prog, args)) = c.split_first() {
            let _ = Command::new(prog)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    if let Some(dir) = RUN_DIR.get() {
        if std::env::var_os("KEEP_TEST_DIRS").is_some() {
            let _ = writeln!(std::io::stderr(), "harness: keeping {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
