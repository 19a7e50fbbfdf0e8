//! The ledger writer's work under a bench, from Warden's metrics: batches
//! committed, entries in them, and a batch's time by phase.

use super::warden_process::Warden;

/// The ledger writer's work, from its metrics: batches committed, entries
/// in them, and the time spent writing them.
pub struct WriterStats {
    batches: f64,
    entries: f64,
    seconds: f64,
    /// Seconds spent in each of [`PHASES`].
    phases: [f64; 5],
    /// Batches written again because one of their changes was stale
    /// (a row moved since it was read): each change then in a savepoint.
    stale: f64,
    /// Batches that took longer than [`SLOW`] (a bucket bound of
    /// `warden_ledger_commit_duration_seconds`).
    slow: f64,
}

/// The commit-duration histogram's bucket bound above which a batch is
/// counted slow: 38 ms.
const SLOW: &str = "0.03814697265625";

/// The writer's phases, as `warden_ledger_writer_seconds_total` names them.
const PHASES: [&str; 5] = ["begin", "changes", "entries", "history", "commit"];

impl WriterStats {
    pub async fn of(w: &Warden) -> WriterStats {
        WriterStats {
            batches: w.metric("warden_ledger_commit_duration_seconds_count").await,
            entries: w.metric("warden_ledger_batch_entries_sum").await,
            seconds: w.metric("warden_ledger_commit_duration_seconds_sum").await,
            stale: w
                .metric("warden_ledger_batch_retries_total{reason=\"stale_change\"}")
                .await,
            slow: w.metric("warden_ledger_commit_duration_seconds_count").await
                - w.metric(&format!(
                    "warden_ledger_commit_duration_seconds_bucket{{le=\"{SLOW}\"}}"
                ))
                .await,
            phases: {
                let mut phases = [0.0; 5];
                for (slot, phase) in phases.iter_mut().zip(PHASES) {
                    *slot = w
                        .metric(&format!("warden_ledger_writer_seconds_total{{phase=\"{phase}\"}}"))
                        .await;
                }
                phases
            },
        }
    }

    pub fn since(&self, before: &WriterStats) -> WriterStats {
        WriterStats {
            batches: self.batches - before.batches,
            entries: self.entries - before.entries,
            seconds: self.seconds - before.seconds,
            phases: std::array::from_fn(|i| self.phases[i] - before.phases[i]),
            stale: self.stale - before.stale,
            slow: self.slow - before.slow,
        }
    }

    /// Batches a second, entries a batch, time a batch, and the share of
    /// the run the writer spent writing (1.00: it never waited for work).
    pub fn text(&self, secs: f64) -> String {
        let batches = self.batches.max(1.0);
        format!(
            "{:.0} batches/s · {:.1} entries each · {:.2} ms each · busy {:.2} · {:.1} written again/s (a stale change) · {} over 38 ms",
            self.batches / secs,
            self.entries / batches,
            self.seconds * 1000.0 / batches,
            self.seconds / secs,
            self.stale / secs,
            self.slow
        )
    }

    /// A batch's time by phase, in milliseconds.
    pub fn phases_text(&self) -> String {
        let batches = self.batches.max(1.0);
        let phases: Vec<String> = PHASES
            .iter()
            .zip(self.phases)
            .map(|(name, s)| format!("{name} {:.2}", s * 1000.0 / batches))
            .collect();
        phases.join(" · ")
    }
}
