//! X-Ray's daemon as the local stack plays it: a UDP socket on the loopback that keeps the last
//! segment documents the functions send (`backoffice_edge::xray`), listed at
//! `GET /_local/xray/segments` (and cleared with `DELETE`). On AWS, Lambda's daemon forwards
//! them to X-Ray; here a test reads them to follow one sale by its correlation id.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Enough for a test run's recent traffic; older documents are dropped first.
const KEPT: usize = 5_000;
/// The largest datagram the daemon accepts (X-Ray's limit is 64 KB).
const MAX_DATAGRAM: usize = 64 * 1024;

#[derive(Default)]
pub struct Segments(Mutex<VecDeque<Value>>);

impl Segments {
    pub fn list(&self) -> Vec<Value> {
        self.0
            .lock()
            .map(|kept| kept.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn clear(&self) {
        if let Ok(mut kept) = self.0.lock() {
            kept.clear();
        }
    }

    /// One datagram: the header line `{"format": "json", "version": 1}`, then one document.
    /// Anything else is dropped, as the daemon drops it.
    fn receive(&self, datagram: &[u8]) {
        let text = String::from_utf8_lossy(datagram);
        let Some((header, document)) = text.split_once('\n') else {
            return;
        };
        let header_ok = serde_json::from_str::<Value>(header).is_ok_and(|h| h["format"] == "json" && h["version"] == 1);
        let Ok(document) = serde_json::from_str::<Value>(document) else {
            return;
        };
        if header_ok && let Ok(mut kept) = self.0.lock() {
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back(document);
        }
    }
}

pub struct Daemon {
    pub addr: SocketAddr,
    pub segments: Arc<Segments>,
    task: JoinHandle<()>,
}

impl Daemon {
    pub async fn bind() -> std::io::Result<Daemon> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let segments = Arc::new(Segments::default());
        let kept = segments.clone();
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; MAX_DATAGRAM];
            while let Ok((length, _)) = socket.recv_from(&mut buffer).await {
                kept.receive(&buffer[..length]);
            }
        });
        Ok(Daemon { addr, segments, task })
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_well_formed_documents_sent_over_udp() {
        let daemon = Daemon::bind().await.expect("a loopback UDP port");
        let sender = UdpSocket::bind("127.0.0.1:0").await.expect("a sender");
        let document =
            r#"{"name":"DynamoDB","id":"0123456789abcdef","trace_id":"1-5f000000-0123456789abcdef01234567"}"#;
        sender
            .send_to(
                format!("{{\"format\": \"json\", \"version\": 1}}\n{document}").as_bytes(),
                daemon.addr,
            )
            .await
            .expect("sent");
        sender.send_to(b"no header", daemon.addr).await.expect("sent");
        sender
            .send_to(b"{\"format\": \"xml\", \"version\": 1}\n{}", daemon.addr)
            .await
            .expect("sent");
        let mut kept = Vec::new();
        for _ in 0..100 {
            kept = daemon.segments.list();
            if !kept.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["name"], "DynamoDB");
        daemon.segments.clear();
        assert!(daemon.segments.list().is_empty());
        daemon.stop();
    }
}
