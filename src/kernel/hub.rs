//! The agent and runner streams connected to this instance, and the wake-up
//! of a stream when a message for it was committed.
//!
//! Messages themselves live in the store (`kernel_pushes`): a stream reads
//! what follows the last id it sent, so a client that reconnects with
//! `Last-Event-ID` misses nothing, and a message committed by another
//! instance reaches it at its next poll. A message this instance commits
//! is also handed to its streams with its number ([`Hub::deliver`], the
//! stream's [`Inbox`]): when it follows what the stream sent, the stream
//! sends it without reading it back.
//!
//! The hub also knows which token holds each stream: revoking a token, or
//! its expiry, closes its streams ([`Hub::close_token`]), and a tenant
//! holds at most so many streams at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::model::kernel::PushRow;
use crate::store::DeclaredTool;

/// Messages committed on this instance for one stream, by number, until
/// it sends them.
#[derive(Debug, Default)]
pub struct Inbox {
    rows: Mutex<BTreeMap<i64, PushRow>>,
    /// Set by a wake-up that carries no message (a commit elsewhere, a
    /// peer's notice): the store holds what woke it.
    stale: AtomicBool,
}

impl Inbox {
    /// Messages held for a stream that does not send them: past this, the
    /// inbox is emptied and the stream reads the store.
    const MAX: usize = 256;

    fn put(&self, row: PushRow) {
        let mut rows = self.rows.lock().expect("inbox lock");
        if rows.len() >= Self::MAX {
            rows.clear();
            self.stale.store(true, Ordering::Release);
        } else {
            rows.insert(row.seq, row);
        }
    }

    fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// The messages that follow `after` with no gap, and whether others
    /// (after a gap) are held too; None when the store must be read: it
    /// holds something the inbox does not, or there is nothing here.
    pub fn take_following(&self, after: i64) -> Option<(Vec<PushRow>, bool)> {
        let mut rows = self.rows.lock().expect("inbox lock");
        *rows = rows.split_off(&(after + 1));
        if self.stale.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut out = Vec::new();
        let mut next = after + 1;
        while let Some(row) = rows.remove(&next) {
            out.push(row);
            next += 1;
        }
        (!out.is_empty()).then(|| (out, !rows.is_empty()))
    }
}

/// One open stream.
#[derive(Debug, Clone)]
pub struct Conn {
    pub id: String,
    pub tenant_id: String,
    /// The agent or runner id.
    pub name: String,
    pub token_id: String,
    /// The token's subject (the person or service).
    pub subject: String,
    /// When the token expires (epoch ms): the stream closes then.
    pub expires_at: Option<i64>,
    pub actor: String,
    pub recipient: String,
    pub wake: Arc<Notify>,
    /// What this instance committed for it, numbered.
    pub inbox: Arc<Inbox>,
    /// Set when the stream must end (its token was revoked or expired);
    /// the stream sees it at its next wake-up, which closing causes.
    pub closed: Arc<AtomicBool>,
    /// A runner's tools (empty for agents).
    pub tools: Vec<DeclaredTool>,
}

impl Conn {
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends the stream: marks it, then wakes it to see the mark.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// A tenant already holds the most streams it may (the limit).
#[derive(Debug)]
pub struct TooManyStreams(pub usize);

/// How a stream is woken, and handed messages.
type Reachable = (Arc<Notify>, Arc<Inbox>);

#[derive(Default)]
struct Inner {
    agents: HashMap<(String, String), Vec<Conn>>,
    runners: HashMap<(String, String), Vec<Conn>>,
    by_recipient: HashMap<String, Vec<Reachable>>,
    /// Open streams (agents and runners) per tenant.
    per_tenant: HashMap<String, usize>,
}

impl Inner {
    fn all(&self) -> impl Iterator<Item = &Conn> {
        self.agents.values().chain(self.runners.values()).flatten()
    }
}

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    next: AtomicUsize,
    /// Set once the instance is shutting down: every stream is closed and
    /// a new one ends as soon as it opens.
    draining: AtomicBool,
}

impl Hub {
    /// Registers an agent stream, unless its tenant already holds `limit`
    /// streams on this instance.
    pub fn add_agent(&self, conn: Conn, limit: usize) -> Result<(), TooManyStreams> {
        self.add(conn, limit, true)
    }

    /// Registers a runner stream, unless its tenant already holds `limit`.
    pub fn add_runner(&self, conn: Conn, limit: usize) -> Result<(), TooManyStreams> {
        self.add(conn, limit, false)
    }

    fn add(&self, conn: Conn, limit: usize, agent: bool) -> Result<(), TooManyStreams> {
        let mut g = self.inner.lock().expect("hub lock");
        // Read under the lock that `shut_down` closes the streams under, so
        // that a stream opening meanwhile is closed by one or the other.
        if self.draining.load(Ordering::Acquire) {
            conn.close();
        }
        let open = g.per_tenant.entry(conn.tenant_id.clone()).or_default();
        if *open >= limit {
            return Err(TooManyStreams(limit));
        }
        *open += 1;
        g.by_recipient
            .entry(conn.recipient.clone())
            .or_default()
            .push((conn.wake.clone(), conn.inbox.clone()));
        let map = if agent { &mut g.agents } else { &mut g.runners };
        map.entry((conn.tenant_id.clone(), conn.name.clone()))
            .or_default()
            .push(conn);
        Ok(())
    }

    /// Forgets a stream; true when it was the last one of its agent or runner.
    pub fn remove(&self, conn: &Conn) -> bool {
        let mut g = self.inner.lock().expect("hub lock");
        if let Some(list) = g.by_recipient.get_mut(&conn.recipient) {
            list.retain(|(n, _)| !Arc::ptr_eq(n, &conn.wake));
            if list.is_empty() {
                g.by_recipient.remove(&conn.recipient);
            }
        }
        let key = (conn.tenant_id.clone(), conn.name.clone());
        let map = if conn.recipient.starts_with("agent/") {
            &mut g.agents
        } else {
            &mut g.runners
        };
        let Some(list) = map.get_mut(&key) else {
            return true;
        };
        let before = list.len();
        list.retain(|c| c.id != conn.id);
        let removed = before != list.len();
        let last = list.is_empty();
        if last {
            map.remove(&key);
        }
        if removed && let Some(open) = g.per_tenant.get_mut(&conn.tenant_id) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                g.per_tenant.remove(&conn.tenant_id);
            }
        }
        last
    }

    /// The instance is shutting down: closes every stream (each tells its
    /// client to reconnect, to another instance) and every one that opens
    /// from now on; returns how many were open.
    pub fn shut_down(&self) -> usize {
        let g = self.inner.lock().expect("hub lock");
        self.draining.store(true, Ordering::Release);
        let mut n = 0;
        for c in g.all().filter(|c| !c.is_closed()) {
            c.close();
            n += 1;
        }
        n
    }

    /// True once [`Hub::shut_down`] ran.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Closes every stream held by this token; returns how many.
    pub fn close_token(&self, token_id: &str) -> usize {
        self.close_where(|c| c.token_id == token_id)
    }

    /// Closes every stream whose token expired by `now_ms`, or is one of
    /// `dead` (revoked); returns how many.
    pub fn close_dead(&self, now_ms: i64, dead: &HashSet<String>) -> usize {
        self.close_where(|c| c.expires_at.is_some_and(|t| t <= now_ms) || dead.contains(&c.token_id))
    }

    fn close_where(&self, dead: impl Fn(&Conn) -> bool) -> usize {
        let g = self.inner.lock().expect("hub lock");
        let mut n = 0;
        for c in g.all().filter(|c| !c.is_closed() && dead(c)) {
            c.close();
            n += 1;
        }
        n
    }

    /// The tokens holding open streams here.
    pub fn tokens(&self) -> Vec<String> {
        let g = self.inner.lock().expect("hub lock");
        let set: HashSet<&String> = g.all().filter(|c| !c.is_closed()).map(|c| &c.token_id).collect();
        set.into_iter().cloned().collect()
    }

    /// Wakes every stream of this recipient on this instance, to read
    /// the store.
    pub fn wake(&self, recipient: &str) {
        let g = self.inner.lock().expect("hub lock");
        if let Some(list) = g.by_recipient.get(recipient) {
            for (n, inbox) in list {
                inbox.mark_stale();
                n.notify_one();
            }
        }
    }

    /// Hands committed messages, numbered, to their recipients' streams on
    /// this instance, and wakes them.
    pub fn deliver(&self, rows: Vec<PushRow>) {
        let g = self.inner.lock().expect("hub lock");
        for row in rows {
            if let Some(list) = g.by_recipient.get(&row.recipient) {
                for (n, inbox) in list {
                    inbox.put(row.clone());
                    n.notify_one();
                }
            }
        }
    }

    /// Wakes every stream on this instance (each reads what it may have
    /// missed).
    pub fn wake_all(&self) {
        let g = self.inner.lock().expect("hub lock");
        for (n, inbox) in g.by_recipient.values().flatten() {
            inbox.mark_stale();
            n.notify_one();
        }
    }

    /// A connected stream of this agent, if any (not one being closed).
    pub fn agent(&self, tenant_id: &str, agent_id: &str) -> Option<Conn> {
        let g = self.inner.lock().expect("hub lock");
        g.agents
            .get(&(tenant_id.to_string(), agent_id.to_string()))
            .and_then(|l| l.iter().find(|c| !c.is_closed()).cloned())
    }

    pub fn has_agent_conn(&self, conn_id: &str) -> bool {
        let g = self.inner.lock().expect("hub lock");
        g.agents.values().flatten().any(|c| c.id == conn_id)
    }

    /// A connected runner serving `tool` in the tenant, taken in turn.
    pub fn runner_for(&self, tenant_id: &str, tool: &str) -> Option<Conn> {
        let g = self.inner.lock().expect("hub lock");
        let mut candidates: Vec<&Conn> = g
            .runners
            .iter()
            .filter(|((t, _), _)| t == tenant_id)
            .filter_map(|(_, l)| l.iter().find(|c| !c.is_closed()))
            .filter(|c| c.tools.iter().any(|d| d.name == tool))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        candidates.sort_by(|a, b| a.name.cmp(&b.name));
        let i = self.next.fetch_add(1, Ordering::Relaxed) % candidates.len();
        Some(candidates[i].clone())
    }

    pub fn counts(&self) -> (usize, usize) {
        let g = self.inner.lock().expect("hub lock");
        (
            g.agents.values().map(Vec::len).sum(),
            g.runners.values().map(Vec::len).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, name: &str, recipient: &str, tools: &[&str]) -> Conn {
        Conn {
            id: id.into(),
            tenant_id: "ten_1".into(),
            name: name.into(),
            token_id: "tok_1".into(),
            subject: "token-name:t".into(),
            expires_at: None,
            actor: "token:tok_1 (t)".into(),
            recipient: recipient.into(),
            wake: Arc::new(Notify::new()),
            inbox: Arc::default(),
            closed: Arc::new(AtomicBool::new(false)),
            tools: tools
                .iter()
                .map(|t| DeclaredTool {
                    name: t.to_string(),
                    idempotent: true,
                })
                .collect(),
        }
    }

    #[test]
    fn runners_serving_a_tool_are_taken_in_turn_and_forgotten_when_gone() {
        let hub = Hub::default();
        let a = conn("c1", "r-a", "runner/ten_1/r-a", &["fetch", "post"]);
        let b = conn("c2", "r-b", "runner/ten_1/r-b", &["fetch"]);
        hub.add_runner(a.clone(), 10).unwrap();
        hub.add_runner(b.clone(), 10).unwrap();
        let picks: Vec<String> = (0..4).map(|_| hub.runner_for("ten_1", "fetch").unwrap().name).collect();
        assert_eq!(picks.iter().filter(|n| *n == "r-a").count(), 2, "{picks:?}");
        assert_eq!(hub.runner_for("ten_1", "post").unwrap().name, "r-a");
        assert!(
            hub.runner_for("ten_2", "fetch").is_none(),
            "another tenant's runners never serve"
        );
        assert!(hub.remove(&a));
        assert!(hub.runner_for("ten_1", "post").is_none());
        assert_eq!(hub.counts(), (0, 1));
    }

    #[test]
    fn an_agent_with_two_streams_stays_until_the_last_closes() {
        let hub = Hub::default();
        let one = conn("c1", "claims", "agent/ten_1/claims", &[]);
        let two = conn("c2", "claims", "agent/ten_1/claims", &[]);
        hub.add_agent(one.clone(), 10).unwrap();
        hub.add_agent(two.clone(), 10).unwrap();
        assert!(!hub.remove(&one), "another stream of the agent is open");
        assert_eq!(hub.agent("ten_1", "claims").unwrap().id, "c2");
        assert!(hub.has_agent_conn("c2") && !hub.has_agent_conn("c1"));
        // Waking reaches the open stream (the permit is kept until it waits).
        hub.wake("agent/ten_1/claims");
        assert!(
            futures_util::FutureExt::now_or_never(two.wake.notified()).is_some(),
            "the wake-up is kept for the stream"
        );
        assert!(hub.remove(&two));
        assert!(hub.agent("ten_1", "claims").is_none());
    }

    #[test]
    fn a_tenant_holds_at_most_its_limit_of_streams() {
        let hub = Hub::default();
        let a = conn("c1", "claims", "agent/ten_1/claims", &[]);
        let b = conn("c2", "r-a", "runner/ten_1/r-a", &["fetch"]);
        hub.add_agent(a.clone(), 2).unwrap();
        hub.add_runner(b.clone(), 2).unwrap();
        assert!(
            hub.add_agent(conn("c3", "claims", "agent/ten_1/claims", &[]), 2)
                .is_err()
        );
        let mut other = conn("c4", "claims", "agent/ten_2/claims", &[]);
        other.tenant_id = "ten_2".into();
        hub.add_agent(other, 2).expect("another tenant has its own count");
        hub.remove(&a);
        hub.remove(&a);
        hub.add_agent(conn("c5", "claims", "agent/ten_1/claims", &[]), 2)
            .expect("a slot freed, once");
        assert!(
            hub.add_agent(conn("c6", "claims", "agent/ten_1/claims", &[]), 2)
                .is_err()
        );
    }

    #[test]
    fn closing_a_token_ends_its_streams_and_they_serve_no_more() {
        let hub = Hub::default();
        let mut mine = conn("c1", "r-a", "runner/ten_1/r-a", &["fetch"]);
        mine.token_id = "tok_revoked".into();
        let theirs = conn("c2", "r-b", "runner/ten_1/r-b", &["fetch"]);
        hub.add_runner(mine.clone(), 10).unwrap();
        hub.add_runner(theirs.clone(), 10).unwrap();
        assert_eq!(hub.close_token("tok_revoked"), 1);
        assert!(mine.is_closed() && !theirs.is_closed());
        assert!(
            futures_util::FutureExt::now_or_never(mine.wake.notified()).is_some(),
            "the closed stream is woken to see it"
        );
        for _ in 0..4 {
            assert_eq!(hub.runner_for("ten_1", "fetch").unwrap().name, "r-b");
        }
        assert_eq!(hub.tokens(), ["tok_1"]);
        let mut expiring = conn("c3", "claims", "agent/ten_1/claims", &[]);
        expiring.expires_at = Some(1_000);
        hub.add_agent(expiring.clone(), 10).unwrap();
        let none = HashSet::new();
        assert_eq!(hub.close_dead(999, &none), 0);
        assert_eq!(hub.close_dead(1_000, &none), 1);
        assert!(hub.agent("ten_1", "claims").is_none());
        let dead: HashSet<String> = ["tok_1".to_string()].into();
        assert_eq!(hub.close_dead(0, &dead), 1, "a token revoked elsewhere");
        assert!(theirs.is_closed());
    }

    #[test]
    fn shutting_down_closes_every_stream_and_each_that_opens_later() {
        let hub = Hub::default();
        let a = conn("c1", "a1", "agent/ten_1/a1", &[]);
        let r = conn("c2", "r1", "runner/ten_1/r1", &["t"]);
        hub.add_agent(a.clone(), 10).unwrap();
        hub.add_runner(r.clone(), 10).unwrap();
        assert!(!hub.is_draining());
        assert_eq!(hub.shut_down(), 2);
        assert!(hub.is_draining() && a.is_closed() && r.is_closed());
        // A stream registered by a request already in flight ends at once.
        let late = conn("c3", "a2", "agent/ten_1/a2", &[]);
        hub.add_agent(late.clone(), 10).unwrap();
        assert!(late.is_closed());
    }

    fn row(recipient: &str, seq: i64) -> PushRow {
        PushRow {
            recipient: recipient.into(),
            seq,
            event: "step.result",
            data: serde_json::json!({"n": seq}),
            created_at: 0,
        }
    }

    fn seqs(taken: Option<(Vec<PushRow>, bool)>) -> Option<(Vec<i64>, bool)> {
        taken.map(|(rows, more)| (rows.iter().map(|r| r.seq).collect(), more))
    }

    #[test]
    fn a_stream_is_handed_what_follows_what_it_sent_and_reads_the_store_otherwise() {
        let hub = Hub::default();
        let a = conn("c1", "a1", "agent/ten_1/a1", &[]);
        let other = conn("c2", "a2", "agent/ten_1/a2", &[]);
        hub.add_agent(a.clone(), 10).unwrap();
        hub.add_agent(other.clone(), 10).unwrap();
        // Nothing held: the store is read.
        assert_eq!(seqs(a.inbox.take_following(0)), None);
        // Committed out of order (two edits in one batch): handed in order,
        // each to its own recipient only.
        hub.deliver(vec![row("agent/ten_1/a1", 2), row("agent/ten_1/a1", 1)]);
        assert_eq!(seqs(a.inbox.take_following(0)), Some((vec![1, 2], false)));
        assert_eq!(seqs(other.inbox.take_following(0)), None);
        // What the stream sent already is dropped; a gap means a read.
        hub.deliver(vec![row("agent/ten_1/a1", 3), row("agent/ten_1/a1", 5)]);
        assert_eq!(seqs(a.inbox.take_following(2)), Some((vec![3], true)));
        assert_eq!(seqs(a.inbox.take_following(3)), None, "4 is in the store only");
        assert_eq!(seqs(a.inbox.take_following(4)), Some((vec![5], false)));
        // A wake-up without messages (a commit of the workflow engine, a
        // peer's notice) means the store holds more: read it, even with
        // messages in hand.
        hub.deliver(vec![row("agent/ten_1/a1", 6)]);
        hub.wake("agent/ten_1/a1");
        assert_eq!(seqs(a.inbox.take_following(5)), None);
        assert_eq!(seqs(a.inbox.take_following(5)), Some((vec![6], false)));
        // A stream that never sends is not held more than the bound.
        hub.deliver(
            (7..7 + Inbox::MAX as i64 + 1)
                .map(|n| row("agent/ten_1/a1", n))
                .collect(),
        );
        assert_eq!(
            seqs(a.inbox.take_following(6)),
            None,
            "emptied past its bound: read the store"
        );
        assert!(a.inbox.rows.lock().unwrap().len() <= 1);
        // A closed stream is handed nothing.
        hub.remove(&a);
        hub.deliver(vec![row("agent/ten_1/a1", 500)]);
        assert_eq!(seqs(a.inbox.take_following(499)), None);
    }
}
