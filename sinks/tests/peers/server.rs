//! An HTTP peer that can be stopped and started again on the same port,
//! to play an outage.

use std::time::Duration;

pub struct Server {
    pub url: String,
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Serves `app` on 127.0.0.1:`port` (0: any free port).
    pub async fn start(app: axum::Router, port: u16) -> Self {
        // The port may linger a moment after a stop: retried, for at most
        // ten seconds.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => break l,
                Err(_) if port != 0 && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
            }
        };
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Server {
            url: format!("http://127.0.0.1:{port}"),
            port,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops listening and closes its connections: the peer is down.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // A request in flight gets a moment to finish.
            if tokio::time::timeout(Duration::from_secs(2), task).await.is_err() {
                eprintln!("the peer's connections did not close in 2 s");
            }
        }
    }
}
