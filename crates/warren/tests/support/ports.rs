//! Fixed ports for the few servers that cannot bind port 0 and tell us
//! the port (PostgreSQL), or must come back on the same port (an edge
//! restarted by a test).
//!
//! Every other listener in the tests binds port 0, so it only ever gets a
//! port from the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`). A [`Lease`] is a port
//! *outside* that range, so no port-0 bind can take it, free when leased,
//! and reserved against the other test processes on this machine by a
//! lock file (with the owner's pid; a dead owner's file is taken over)
//! while the lease lives. Something outside the tests may still hold the
//! port, so a server that fails with "address in use" is started again on
//! another lease (see [`START_ATTEMPTS`]).

use std::hash::BuildHasher;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// How often a server on a leased port is tried before giving up.
pub const START_ATTEMPTS: usize = 8;

/// Lowest port handed out: below are well-known and commonly configured
/// service ports.
const LOWEST: u16 = 10_000;

/// The kernel's ephemeral port range (what a port-0 bind gets).
pub fn ephemeral_range() -> RangeInclusive<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some(it.next()??..=it.next()??)
        })
        .unwrap_or(32_768..=60_999)
}

/// The ports a lease may take: from [`LOWEST`] up, minus the ephemeral
/// range.
fn candidates() -> Vec<u16> {
    let eph = ephemeral_range();
    let ports: Vec<u16> = (LOWEST..=u16::MAX).filter(|p| !eph.contains(p)).collect();
    assert!(
        !ports.is_empty(),
        "the ephemeral port range {eph:?} leaves no port from {LOWEST} up for the test servers; narrow net.ipv4.ip_local_port_range"
    );
    ports
}

/// A port outside the ephemeral range, reserved while this lives.
#[derive(Debug)]
pub struct Lease {
    pub port: u16,
    lock: PathBuf,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

fn lock_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("warren-test-ports");
    std::fs::create_dir_all(&dir).expect("create the port lock directory");
    dir
}

/// Takes `port`'s lock file, or a dead owner's.
fn try_lock(port: u16) -> Option<PathBuf> {
    use std::io::Write;
    let path = lock_dir().join(port.to_string());
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                let _ = write!(f, "{}", std::process::id());
                return Some(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(&path).unwrap_or_default();
                let alive = owner
                    .trim()
                    .parse::<u32>()
                    .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
                // An empty file may be a lock being written right now.
                if alive || owner.is_empty() {
                    return None;
                }
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => panic!("cannot create the port lock {}: {e}", path.display()),
        }
    }
    None
}

/// Whether nothing holds `port` on 127.0.0.1, for TCP and for UDP. (Only
/// ports outside the ephemeral range are checked, so releasing them again
/// does not race with port-0 binds.)
fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A free port outside the ephemeral range, reserved until dropped.
pub fn lease() -> Lease {
    let ports = candidates();
    let random = std::collections::hash_map::RandomState::new();
    for attempt in 0u32..1000 {
        let i = random.hash_one((std::process::id(), attempt)) as usize % ports.len();
        let port = ports[i];
        let Some(lock) = try_lock(port) else {
            continue;
        };
        let lease = Lease { port, lock };
        if is_free(port) {
            return lease;
        }
    }
    panic!("found no free port outside the ephemeral range after 1000 tries");
}
