//! What the kernel's benches share: agents' SSE streams, one execution
//! driven end to end as an agent does it, and the figures' table.

// Each bench uses a part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::warden_process::{Failure, Warden};

/// Allowed by the shipped rule `read-only-tools` (`kb.*`, `*.search`), with
/// no argument predicates.
pub const TOOL: &str = "kb.search";
/// The longest an event may take to arrive before the harness gives up.
pub const EVENT_WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------ streams

/// One event, stamped when the harness parsed it; `closed` when the stream
/// ended.
#[derive(Debug)]
pub struct Ev {
    pub agent: usize,
    pub event: String,
    pub data: Value,
    pub at: Instant,
}

/// Opens an agent's stream; a task parses it and sends each event (with
/// `agent`) to `tx`.
pub async fn open_stream(
    w: &Warden,
    token: &str,
    agent_id: &str,
    agent: usize,
    tx: mpsc::UnboundedSender<Ev>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let mut res = w
        .http
        .get(format!("{}/v0/agents/stream?agent_id={agent_id}", w.base))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("opening the stream of {agent_id}: {e:?}"))?;
    if res.status() != 200 {
        return Err(format!(
            "opening the stream of {agent_id}: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        ));
    }
    Ok(tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Ok(Some(chunk)) = res.chunk().await {
            let at = Instant::now();
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.windows(2).position(|p| p == b"\n\n") {
                let block: Vec<u8> = buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (false, String::new(), String::new());
                for line in String::from_utf8_lossy(&block).lines() {
                    if line.starts_with("id:") {
                        id = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                // Keep-alives are comments, without an id.
                if id {
                    let data = serde_json::from_str(&data).unwrap_or_default();
                    if tx.send(Ev { agent, event, data, at }).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Ev {
            agent,
            event: "closed".into(),
            data: Value::Null,
            at: Instant::now(),
        });
    }))
}

/// The next `event` whose `data[key]` is `value`, skipping others.
pub async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Ev>,
    event: &str,
    key: &str,
    value: &str,
) -> Result<Ev, Failure> {
    let until = tokio::time::Instant::now() + EVENT_WAIT;
    loop {
        match tokio::time::timeout_at(until, rx.recv()).await {
            Err(_) => return Err(format!("no {event} within {} s", EVENT_WAIT.as_secs())),
            Ok(None) => return Err("the stream task ended".into()),
            Ok(Some(ev)) if ev.event == "closed" => return Err(format!("the stream closed waiting for {event}")),
            Ok(Some(ev)) if ev.event == event && ev.data[key] == value => return Ok(ev),
            Ok(Some(_)) => {}
        }
    }
}

// ------------------------------------------------------------------ figures

/// One line of the final table.
pub struct Row {
    pub scenario: String,
    pub metric: &'static str,
    pub value: String,
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// p50 / p99 / max of `lat`, sorted here.
pub fn spread(lat: &mut [Duration]) -> String {
    if lat.is_empty() {
        return "-".into();
    }
    lat.sort_unstable();
    let at = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    format!("{} / {} / {}", ms(at(0.50)), ms(at(0.99)), ms(lat[lat.len() - 1]))
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn failures_text(failures: &HashMap<Failure, usize>) -> String {
    if failures.is_empty() {
        return "none".into();
    }
    let mut v: Vec<_> = failures.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .map(|(f, n)| format!("{n}× {f}"))
        .collect::<Vec<_>>()
        .join("; ")
}

// ------------------------------------------------------------------ executions

#[derive(Default)]
pub struct AgentStats {
    pub invokes: u64,
    pub completes: u64,
    pub executions: u64,
    pub invoke_latency: Vec<Duration>,
    pub execution_latency: Vec<Duration>,
    pub failures: HashMap<Failure, usize>,
}

pub struct Tokens {
    pub orchestrator: String,
    pub agent: String,
}

/// One execution from creation to completion; the invoke_tool answer.
/// Each request goes to the next of `ws` in turn (`turn` counts them), as
/// a round-robin load balancer sends them; `rx` is the agent's stream,
/// wherever it is open.
pub async fn one_execution(
    ws: &[&Warden],
    turn: &mut usize,
    t: &Tokens,
    agent_id: &str,
    rx: &mut mpsc::UnboundedReceiver<Ev>,
    stats: &mut AgentStats,
) -> Result<Value, Failure> {
    let mut next = || {
        *turn += 1;
        ws[*turn % ws.len()]
    };
    let started = Instant::now();
    let r = next()
        .post(
            &t.orchestrator,
            "/v0/executions",
            &json!({"agent_id": agent_id, "input": {"question": "what is the refund policy?"}}),
        )
        .await?;
    let exec = r["id"].as_str().unwrap_or_default().to_string();
    wait_for(rx, "execution.assigned", "execution_id", &exec).await?;

    let sent = Instant::now();
    let answer = next()
        .post(
            &t.agent,
            "/v0/agents/intent",
            &json!({"execution_id": exec, "type": "invoke_tool", "tool": TOOL,
                "arguments": {"query": "refund policy", "limit": 5}}),
        )
        .await?;
    stats.invoke_latency.push(sent.elapsed());
    stats.invokes += 1;
    if answer["outcome"] != "allow" || answer["step"]["state"] != "dispatched" {
        return Err(format!(
            "invoke_tool answered {} / step {}",
            answer["outcome"], answer["step"]["state"]
        ));
    }
    let step = answer["step"]["id"].as_str().unwrap_or_default().to_string();
    wait_for(rx, "step.assigned", "step_id", &step).await?;
    next()
        .post(
            &t.agent,
            "/v0/agents/step-result",
            &json!({"step_id": step, "status": "succeeded", "output": {"hits": [{"id": "kb-17", "score": 0.92}]}}),
        )
        .await?;
    wait_for(rx, "step.result", "step_id", &step).await?;
    let done = next()
        .post(
            &t.agent,
            "/v0/agents/intent",
            &json!({"execution_id": exec, "type": "complete", "output": {"answer": "30 days"}}),
        )
        .await?;
    stats.completes += 1;
    if done["state"] != "completed" {
        return Err(format!("complete answered state {}", done["state"]));
    }
    stats.executions += 1;
    stats.execution_latency.push(started.elapsed());
    Ok(answer)
}

impl AgentStats {
    /// Adds another agent's figures to these.
    pub fn absorb(&mut self, other: AgentStats) {
        self.invokes += other.invokes;
        self.completes += other.completes;
        self.executions += other.executions;
        self.invoke_latency.extend(other.invoke_latency);
        self.execution_latency.extend(other.execution_latency);
        for (f, n) in other.failures {
            *self.failures.entry(f).or_default() += n;
        }
    }
}

/// One agent's loop: executions end to end until `deadline`, each request
/// to the next of `ws` in turn; a failure is counted and what is left of
/// its execution passed over, and a stream that ended ends the loop.
pub async fn executions_until(
    deadline: Instant,
    ws: &[&Warden],
    tokens: &Tokens,
    agent_id: &str,
    rx: &mut mpsc::UnboundedReceiver<Ev>,
) -> AgentStats {
    let (mut stats, mut turn) = (AgentStats::default(), 0);
    while Instant::now() < deadline {
        if let Err(f) = one_execution(ws, &mut turn, tokens, agent_id, rx, &mut stats).await {
            let closed = f.contains("closed") || f.contains("ended");
            *stats.failures.entry(f).or_default() += 1;
            if closed {
                break;
            }
            // Whatever is left of that execution arrives now.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while rx.try_recv().is_ok() {}
        }
    }
    stats
}

/// A scenario's rows: (metric, value) each.
pub fn rows(scenario: &str, items: Vec<(&'static str, String)>) -> Vec<Row> {
    items
        .into_iter()
        .map(|(metric, value)| Row {
            scenario: scenario.to_string(),
            metric,
            value,
        })
        .collect()
}

/// The value after `flag` on the command line: a positive number.
pub fn positive(flag: &str, value: Option<String>) -> u64 {
    value
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or_else(|| panic!("{flag} takes a positive number"))
}

/// Prints `rows` as a table, a heading per scenario.
pub fn print_rows(rows: &[Row]) {
    let metric_width = rows.iter().map(|r| r.metric.chars().count()).max().unwrap_or(0);
    let mut scenario = "";
    for r in rows {
        if r.scenario != scenario {
            scenario = &r.scenario;
            println!("\n{scenario}");
        }
        println!("  {:<metric_width$}  {}", r.metric, r.value);
    }
}
