//! A minimal HTTP endpoint for Prometheus: every `GET` is answered with the
//! counters in text exposition format.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::metrics::Registry;

/// Serves `registry` on `address` in the background and returns the bound
/// address. A failure to bind is logged, not fatal: metrics are optional.
pub async fn spawn(address: &str, registry: Registry) -> Option<std::net::SocketAddr> {
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%address, %error, "cannot serve metrics");
            return None;
        }
    };
    let bound = listener.local_addr().ok();
    tracing::info!(%address, "serving Prometheus metrics at /metrics");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let body = registry.prometheus();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    bound
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ConnectorMetrics;

    #[tokio::test]
    async fn a_get_returns_the_counters_in_prometheus_text() {
        let registry = Registry::default();
        ConnectorMetrics::add(&registry.connector("orders").spooled, 4);
        let address = spawn("127.0.0.1:0", registry).await.expect("binds");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(
            response.contains("iggy_dlq_spooled_total{connector=\"orders\"} 4"),
            "{response}"
        );
    }
}
