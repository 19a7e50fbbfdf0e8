//! Integration tests: every test runs against a real server on a real
//! socket, once on SQLite and once on PostgreSQL (127.0.0.1:5432, or
//! `WARDEN_TEST_POSTGRES_URL`). A missing PostgreSQL fails the tests; it never
//! skips them.

mod common;

mod audit;
mod auth_matrix;
mod backlog;
mod bad_input;
mod bundles;
mod cli;
mod console;
mod crash;
mod decisions;
mod egress;
mod exact_input;
mod faults;
mod hardening;
mod identity;
mod instances;
mod kernel;
mod ledger;
mod mcp;
mod ops;
mod outage;
#[path = "../../sinks/tests/peers/mod.rs"]
mod peers;
mod rego_compat;
mod runs;
mod shipped_policies;
mod signatures;
mod sinks;
mod skills;
mod workflows;
