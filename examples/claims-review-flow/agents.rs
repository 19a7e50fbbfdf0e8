//! The three agents of seed 002's `claims-review-flow`, as kernel agents:
//! each holds its own SSE stream (`GET /v0/agents/stream`), takes the
//! executions the workflow's `Task` states give it, and answers with a
//! `complete` (or `fail`) intent.
//!
//! - `ghcr.io/bank/claims-triage@sha256:0d1f` scores a claim: `high` risk
//!   from 10,000 up or when `flagged`, else `low`. A claim with
//!   `"vendor_down": true` fails with `Tool.TemporaryFailure` (the
//!   workflow retries it, then sends it to human review).
//! - `ghcr.io/bank/human-review-assistant@sha256:9a2c` prepares the case
//!   for a person: a summary and a recommendation.
//! - `ghcr.io/bank/approval-agent@sha256:77e1` approves low-risk claims.
//!
//! ```sh
//! WARDEN_URL=http://127.0.0.1:8181 WARDEN_AGENT_TOKEN=wdn_… \
//!   cargo run --example claims-review-agents [-- --handle N]
//! ```
//!
//! With `--handle N` it exits after answering N executions (for tests);
//! otherwise it runs until stopped.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

const TRIAGE: &str = "ghcr.io/bank/claims-triage@sha256:0d1f";
const REVIEW_ASSISTANT: &str = "ghcr.io/bank/human-review-assistant@sha256:9a2c";
const APPROVAL: &str = "ghcr.io/bank/approval-agent@sha256:77e1";

/// What an agent answers for one execution's input.
fn answer(agent: &str, input: &Value) -> Result<Value, (&'static str, String)> {
    match agent {
        TRIAGE => {
            if input["vendor_down"] == true {
                return Err(("Tool.TemporaryFailure", "the claims system did not answer".into()));
            }
            let amount = input["amount"].as_f64().unwrap_or(0.0);
            let high = amount >= 10_000.0 || input["flagged"] == true;
            Ok(json!({"risk": if high { "high" } else { "low" }, "score": (amount / 1000.0).min(100.0)}))
        }
        REVIEW_ASSISTANT => Ok(json!({
            "summary": format!("claim {} needs a person: {}", input["claim"]["id"],
                input["error"]["cause"].as_str().unwrap_or("high risk")),
            "recommendation": "review",
        })),
        _ => Ok(json!({"approved": true, "by": "approval-agent"})),
    }
}

/// Reads an agent's stream, sending each `execution.assigned` on.
async fn stream(
    client: reqwest::Client,
    base: String,
    token: String,
    agent: &'static str,
    tx: mpsc::Sender<(&'static str, Value)>,
) {
    loop {
        let res = client
            .get(format!("{base}/v0/agents/stream?agent_id={agent}"))
            .bearer_auth(&token)
            .send()
            .await;
        let mut res = match res {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                eprintln!(
                    "{agent}: the stream was refused: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
                return;
            }
            Err(e) => {
                eprintln!("{agent}: no stream ({e}); trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut buf = String::new();
        while let Ok(Some(chunk)) = res.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let mut event = "";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = if v.trim() == "execution.assigned" {
                            "assigned"
                        } else {
                            ""
                        };
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event == "assigned"
                    && let Ok(v) = serde_json::from_str::<Value>(&data)
                    && tx.send((agent, v)).await.is_err()
                {
                    return;
                }
            }
        }
        // The stream ended (Warden restarted): open it again; executions
        // not answered yet are given back to it.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::main]
async fn main() {
    let base = std::env::var("WARDEN_URL").unwrap_or_else(|_| "http://127.0.0.1:8181".into());
    let token = std::env::var("WARDEN_AGENT_TOKEN").expect("WARDEN_AGENT_TOKEN: a token with the agent role");
    let args: Vec<String> = std::env::args().collect();
    let handle: Option<usize> = args
        .iter()
        .position(|a| a == "--handle")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
    let client = reqwest::Client::new();
    let (tx, mut rx) = mpsc::channel(64);
    for agent in [TRIAGE, REVIEW_ASSISTANT, APPROVAL] {
        tokio::spawn(stream(client.clone(), base.clone(), token.clone(), agent, tx.clone()));
    }
    println!("agents ready");
    let mut done = 0;
    while let Some((agent, assigned)) = rx.recv().await {
        let execution = assigned["execution_id"].as_str().unwrap_or_default();
        let intent = match answer(agent, &assigned["input"]) {
            Ok(output) => json!({"execution_id": execution, "type": "complete", "output": output}),
            Err((error, cause)) => {
                json!({"execution_id": execution, "type": "fail", "error": {"error": error, "cause": cause}})
            }
        };
        let r = client
            .post(format!("{base}/v0/agents/intent"))
            .bearer_auth(&token)
            .json(&intent)
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => println!("{agent}: answered {execution} ({})", intent["type"]),
            Ok(r) => eprintln!(
                "{agent}: {execution}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(e) => eprintln!("{agent}: {execution}: {e}"),
        }
        done += 1;
        if handle.is_some_and(|n| done >= n) {
            return;
        }
    }
}
