//! A UDP relay in front of an edge's QUIC port that a test can black-hole.

use std::net::SocketAddr;

/// A UDP relay on loopback in front of `target` (an edge's QUIC port) that
/// the test can black-hole: while `blackhole` is set every datagram is
/// dropped both ways, without any error or close — a silently dead path.
pub struct UdpRelay {
    pub addr: SocketAddr,
    blackhole: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl UdpRelay {
    pub async fn start(target: SocketAddr) -> UdpRelay {
        use std::collections::HashMap;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use tokio::net::UdpSocket;

        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let blackhole = Arc::new(AtomicBool::new(false));
        let hole = blackhole.clone();
        let task = tokio::spawn(async move {
            let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65536];
            let mut tasks = Vec::new();
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                if hole.load(Ordering::SeqCst) {
                    continue;
                }
                let back = match backs.get(&from) {
                    Some(b) => b.clone(),
                    None => {
                        let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        b.connect(target).await.unwrap();
                        let (b2, front2, hole2) = (b.clone(), front.clone(), hole.clone());
                        tasks.push(tokio::spawn(async move {
                            let mut buf = vec![0u8; 65536];
                            while let Ok(n) = b2.recv(&mut buf).await {
                                if !hole2.load(Ordering::SeqCst) {
                                    let _ = front2.send_to(&buf[..n], from).await;
                                }
                            }
                        }));
                        backs.insert(from, b.clone());
                        b
                    }
                };
                let _ = back.send(&buf[..n]).await;
            }
            for t in tasks {
                t.abort();
            }
        });
        UdpRelay {
            addr,
            blackhole,
            task,
        }
    }

    /// Drops (or again forwards) every datagram from now on.
    pub fn set_blackhole(&self, on: bool) {
        self.blackhole
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
