//! Audit events in (`POST /v1/audit/events`) and out
//! (`GET /v1/audit/events`, the same feed the sinks deliver).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::extract::{Caller, parse_json, read_body};
use super::problem::{Problem, ProblemBody};
use crate::audit::{self, FieldError};
use crate::auth::{Action, Principal};
use crate::ledger::{Receipt, Record, read};

/// Most events one request may carry.
pub const MAX_EVENTS: usize = 1_000;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/v1/audit/events", post(submit).get(feed))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AcceptedEvent {
    pub event_id: String,
    /// True when this event_id was already recorded with the same content:
    /// the receipt is the original one's.
    pub duplicate: bool,
    pub receipt: Receipt,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Events recorded by this request.
    pub accepted: usize,
    /// Events that were already recorded.
    pub duplicates: usize,
    /// One per submitted event, in submission order.
    pub events: Vec<AcceptedEvent>,
}

/// The submitted events: one object, a JSON array, or NDJSON.
pub fn events_of(bytes: &[u8], ndjson: bool, max_depth: usize) -> Result<Vec<Value>, Problem> {
    let events: Vec<Value> = if ndjson {
        let mut out = Vec::new();
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let v: Value = parse_json(line, max_depth).map_err(|mut p| {
                p.detail = format!("NDJSON line {}: {}", n + 1, p.detail);
                p
            })?;
            out.push(v);
        }
        out
    } else {
        match parse_json::<Value>(bytes, max_depth)? {
            Value::Array(a) => a,
            other => vec![other],
        }
    };
    if events.is_empty() {
        return Err(Problem::bad_request("no_events", "the request holds no audit event"));
    }
    if events.len() > MAX_EVENTS {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!(
                "{} events in one request; send at most {MAX_EVENTS} per request",
                events.len()
            ),
        ));
    }
    Ok(events)
}

fn invalid(errors: Vec<FieldError>) -> Problem {
    let first = &errors[0];
    let mut p = Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_event",
        format!(
            "event {} field {:?}: {}{}; nothing was recorded (schemas/audit-event.schema.json)",
            first.event,
            first.field,
            first.reason,
            match errors.len() {
                1 => String::new(),
                n => format!(" (and {} more faults, listed in errors)", n - 1),
            }
        ),
    );
    p.errors = serde_json::to_value(&errors).ok();
    p
}

#[utoipa::path(post, path = "/v1/audit/events", tag = "audit",
    request_body(content = Value, description = "one event (an object), a JSON array of events, or NDJSON (application/x-ndjson); see schemas/audit-event.schema.json"),
    responses((status = 201, body = Accepted), (status = 200, description = "every event was already recorded", body = Accepted),
        (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let who = caller.require(Action::WriteEvents)?.clone();
    let ndjson = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("ndjson"));
    let body = read_body(req, &state).await?;
    let submitted = events_of(&body, ndjson, state.config.limits.max_json_depth)?;

    // Validate everything before recording anything.
    let now = state.clock.now_ms();
    let mut events = Vec::with_capacity(submitted.len());
    let mut errors = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // Only an event_id the client chose can have been recorded before.
    let mut chosen = Vec::new();
    for (i, e) in submitted.into_iter().enumerate() {
        if e.get("event_id").is_some() {
            chosen.push(i);
        }
        match audit::accept(e, i, &who, now) {
            Ok(e) => {
                let id = e["event_id"].as_str().unwrap_or_default().to_string();
                if let Some(first) = seen.insert(id.clone(), i) {
                    errors.push(FieldError {
                        event: i,
                        field: "/event_id".into(),
                        reason: format!("repeats the event_id of event {first}"),
                    });
                }
                events.push((id, e));
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }

    // A retried event (same event_id, same content) is recorded once.
    let chosen_ids: std::collections::HashSet<usize> = chosen.iter().copied().collect();
    let mut known: HashMap<usize, Receipt> = HashMap::new();
    for i in chosen {
        let (id, e) = &events[i];
        if let Some(recorded) = read::entry_about(&state.store, &who.tenant_id, audit::KIND, id).await? {
            if !audit::same_event(&recorded.entry.payload, e) {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "event_id_conflict",
                    format!(
                        "event {i}: event_id {id} is already recorded with different content; give this event a new event_id"
                    ),
                ));
            }
            known.insert(i, receipt_of(&state, &who, &recorded.row).await?);
        }
    }
    // Ids Warden derives for its own events are not the client's to
    // choose (one submitted first would stand in for the genuine event
    // wherever receivers deduplicate); only a retry of an event Warden
    // already recorded under such an id is let through.
    for (i, (id, _)) in events.iter().enumerate() {
        if !known.contains_key(&i) && audit::is_reserved_event_id(id) && chosen_ids.contains(&i) {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "event_id_reserved",
                format!(
                    "event {i}: event_id {id} has the form of the ids Warden gives its own events (evt_ and a \
                     lower-case ULID, or a ULID then s or w and a number); nothing was recorded: choose another \
                     event_id (an upper-case ULID is fine), or leave it out and Warden assigns one"
                ),
            ));
        }
    }
    let fresh: Vec<Record> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| !known.contains_key(i))
        .map(|(_, (id, e))| Record::new(&who.tenant_id, audit::KIND, &who.actor(), e).about(id))
        .collect();
    let accepted = fresh.len();
    let mut receipts = state.ledger.append_all(fresh).await?.into_iter();
    let out: Vec<AcceptedEvent> = events
        .into_iter()
        .enumerate()
        .map(|(i, (event_id, _))| match known.remove(&i) {
            Some(receipt) => AcceptedEvent {
                event_id,
                duplicate: true,
                receipt,
            },
            None => AcceptedEvent {
                event_id,
                duplicate: false,
                receipt: receipts.next().expect("a receipt per recorded event"),
            },
        })
        .collect();
    let status = if accepted > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Accepted {
            accepted,
            duplicates: out.len() - accepted,
            events: out,
        }),
    ))
}

/// A receipt for an entry already in the log, against the latest checkpoint.
async fn receipt_of(state: &AppState, who: &Principal, row: &crate::store::EntryRow) -> Result<Receipt, Problem> {
    let latest = state
        .store
        .latest_checkpoint(&who.tenant_id)
        .await?
        .ok_or_else(|| Problem::internal("receipt", &"a recorded entry without a checkpoint"))?;
    let proof = read::inclusion(&state.store, &who.tenant_id, row.index, latest.size).await?;
    Ok(Receipt {
        log: state.ledger.origin(&who.tenant_id),
        index: row.index,
        entry_hash: row.hash.to_hex().to_string(),
        tree_size: latest.size,
        checkpoint: latest.note,
        inclusion: proof.iter().map(|h| h.to_hex().to_string()).collect(),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// Start after this ledger index (a previous page's `next_after`).
    pub after: Option<u64>,
    /// Ledger entries scanned in this page (default 500, at most 5,000).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedItem {
    /// The ledger index of the entry the event comes from.
    pub index: u64,
    #[schema(value_type = Object)]
    pub event: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Feed {
    pub events: Vec<FeedItem>,
    /// Pass as `after` for the next page; absent at the end of the log.
    pub next_after: Option<u64>,
}

#[utoipa::path(get, path = "/v1/audit/events", tag = "audit", params(FeedQuery),
    responses((status = 200, body = Feed), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<FeedQuery>,
) -> Result<Json<Feed>, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    let limit = q.limit.unwrap_or(500).clamp(1, 5_000);
    let from = q.after.map(|a| a + 1).unwrap_or(0);
    let size = state
        .store
        .ledger_head(&who.tenant_id)
        .await?
        .map(|h| h.size)
        .unwrap_or(0);
    let entries = read::entries(&state.store, &who.tenant_id, from, size, limit).await?;
    let mut events = Vec::new();
    for read::Stored { row, entry } in &entries {
        if let Some(event) = audit::event_of(&entry.kind, &entry.actor, &who.tenant_id, &entry.payload) {
            events.push(FeedItem {
                index: row.index,
                event,
            });
        }
    }
    let last = entries.last().map(|e| e.row.index);
    let next_after = last.filter(|l| l + 1 < size);
    Ok(Json(Feed { events, next_after }))
}
