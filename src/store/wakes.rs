//! Wake-ups between instances sharing a PostgreSQL database, on its
//! LISTEN/NOTIFY channel `warden_streams`. A payload is only a hint (the
//! names of stream recipients with new messages); what a stream sends is
//! always read from `kernel_pushes`.

use sqlx::postgres::PgListener;

use super::{Pool, Result, Store};

/// The channel instances notify and listen on.
const CHANNEL: &str = "warden_streams";

/// PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more.
pub const MAX_WAKE_PAYLOAD: usize = 7_900;

/// This instance's subscription to the channel. It holds one connection
/// of the pool for as long as it lives.
pub struct WakeListener(PgListener);

impl WakeListener {
    /// The next payload; `None` when the connection was lost (whatever was
    /// sent meanwhile is lost too; the next call connects again).
    pub async fn next(&mut self) -> Result<Option<String>> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_string()))
    }
}

impl Store {
    /// Listens for other instances' wake-ups; `None` on SQLite, whose
    /// database one instance holds.
    pub async fn listen_wakes(&self) -> Result<Option<WakeListener>> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(None),
            Pool::Postgres(p) => {
                let mut listener = PgListener::connect_with(p).await?;
                listener.listen(CHANNEL).await?;
                Ok(Some(WakeListener(listener)))
            }
        }
    }

    /// Sends `payload` (under [`MAX_WAKE_PAYLOAD`] bytes) to every instance
    /// listening, this one included. Nothing on SQLite.
    pub async fn notify_wakes(&self, payload: &str) -> Result<()> {
        if let Pool::Postgres(p) = &self.pool {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(p)
                .await?;
        }
        Ok(())
    }
}
