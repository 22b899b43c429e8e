//! Test hosts: a network namespace joined to the host by a veth pair on a
//! /24 of its own, and tiny HTTP backends listening inside it.
//!
//! The API server refuses loopback addresses in EndpointSlices, so backends
//! live at `10.213.N.2` (N derived from the test binary's pid). Traffic goes
//! only to loopback and to these addresses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{HarnessError, Result, process};

const NS_PREFIX: &str = "crs-";

/// The network namespace of this test binary.
pub struct TestNet {
    name: String,
    host_ip: Ipv4Addr,
    backend_ip: Ipv4Addr,
}

static SHARED: OnceLock<std::result::Result<TestNet, String>> = OnceLock::new();

impl TestNet {
    /// The namespace of this test binary, created on first use (needs root
    /// and iproute2).
    pub fn shared() -> Result<&'static TestNet> {
        SHARED
            .get_or_init(|| Self::create().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| HarnessError::SharedStartFailed(format!("test network: {e}")))
    }

    /// Address of the host side of the veth pair.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// Address the backends listen on.
    pub fn backend_ip(&self) -> Ipv4Addr {
        self.backend_ip
    }

    /// Starts an HTTP backend inside the namespace. It answers every request
    /// with `200` and a JSON body naming itself, the path, the Host header and
    /// the names of the request's headers.
    pub fn backend(&self, name: &str) -> Result<Backend> {
        self.backend_on(name, 0)
    }

    /// [`TestNet::backend`] on a given port (0 for any), as a pod listens on
    /// its container port.
    pub fn backend_on(&self, name: &str, port: u16) -> Result<Backend> {
        let listener = self.listen(port)?;
        let addr = listener.local_addr()?;
        let name = name.to_string();
        let served = name.clone();
        std::thread::Builder::new()
            .name(format!("backend-{name}"))
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let n = served.clone();
                    let _ = std::thread::Builder::new().spawn(move || serve(stream, &n));
                }
            })?;
        Ok(Backend { name, addr })
    }

    /// Binds a listener inside the namespace on `port` (0 for any).
    fn listen(&self, port: u16) -> Result<TcpListener> {
        let path = format!("/run/netns/{}", self.name);
        let ip = self.backend_ip;
        // setns affects only the calling thread: do it on a throw-away thread;
        // the socket stays in the namespace it was created in.
        std::thread::spawn(move || -> std::io::Result<TcpListener> {
            let ns = std::fs::File::open(&path)?;
            enter_netns(&ns)?;
            TcpListener::bind((ip, port))
        })
        .join()
        .map_err(|_| std::io::Error::other("netns thread panicked"))?
        .map_err(HarnessError::from)
    }

    fn create() -> Result<TestNet> {
        remove_stale_namespaces();
        let pid = std::process::id();
        let name = format!("{NS_PREFIX}{pid}");
        let host_if = format!("crs{pid}h");
        let ns_if = format!("crs{pid}n");
        let subnet = (pid % 250 + 1) as u8;
        let host_ip = Ipv4Addr::new(10, 213, subnet, 1);
        let backend_ip = Ipv4Addr::new(10, 213, subnet, 2);
        let ip = |args: &[&str]| process::run("ip", args);
        ip(&["netns", "add", &name])?;
        process::at_exit(&["ip", "netns", "del", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ])?;
        process::at_exit(&["ip", "link", "del", &host_if]);
        ip(&["link", "set", &ns_if, "netns", &name])?;
        ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{backend_ip}/24"),
            "dev",
            &ns_if,
        ])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"])?;
        Ok(TestNet {
            name,
            host_ip,
            backend_ip,
        })
    }
}

/// A running backend.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Its name, echoed in every response.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

fn serve(stream: TcpStream, name: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut host = String::new();
        let mut content_length = 0usize;
        let mut close = false;
        let mut names = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let v = v.trim();
                let k = k.trim().to_ascii_lowercase();
                names.push(k.clone());
                match k.as_str() {
                    "host" => host = v.to_string(),
                    "content-length" => content_length = v.parse().unwrap_or(0),
                    "connection" => close = v.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; content_length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("");
        let reply =
            serde_json::json!({"backend": name, "method": method, "path": path, "host": host,
                "headers": names})
            .to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
            reply.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(reply.as_bytes()))
            .is_err()
            || close
        {
            return;
        }
    }
}

fn remove_stale_namespaces() {
    let Ok(list) = process::run("ip", &["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let stale = name
            .strip_prefix(NS_PREFIX)
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = stale.filter(|pid| !process::pid_alive(*pid)) {
            let _ = process::run("ip", &["netns", "del", name]);
            let _ = process::run("ip", &["link", "del", &format!("crs{pid}h")]);
        }
    }
}

#[allow(unsafe_code)]
fn enter_netns(ns: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a valid namespace fd; affects only this thread.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
