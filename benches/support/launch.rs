//! Starts the release `warden` binary as its own process, as the benches
//! run it: reads the bootstrap admin token it prints once (on a fresh
//! store) and the address it listens on, and hands back its log to read on.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStderr, Command, Stdio};

use serde_json::Value;

pub struct Launched {
    pub child: Child,
    /// The bootstrap admin token; empty when the store had one already (a
    /// further instance on a shared database).
    pub admin: String,
    pub base: String,
    /// The rest of its log: keep reading it, or the process blocks on a
    /// full pipe.
    pub log: Lines<BufReader<ChildStderr>>,
}

/// `cmd` is `warden serve …` with its flags and environment set.
pub fn launch(mut cmd: Command) -> Launched {
    let mut child = cmd
        .env_remove("WARDEN_BOOTSTRAP_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the warden binary");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // `listening on …` is the last line it prints.
    let (mut admin, mut line) = (String::new(), String::new());
    while !line.starts_with("listening on ") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "warden exited before it listened"
        );
        if let Some(token) = line.trim().strip_prefix("bootstrap admin token: ") {
            admin = token.to_string();
        }
    }
    std::thread::spawn(move || for _ in stdout.lines() {});
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut base = None;
    for line in log.by_ref().map_while(Result::ok) {
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["message"] == "warden listening" {
            base = Some(format!("http://{}", v["address"].as_str().unwrap()));
            break;
        }
    }
    Launched {
        child,
        admin,
        base: base.expect("warden listens"),
        log,
    }
}
