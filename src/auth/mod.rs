//! Tenants, bearer tokens, roles, and the one table that says which role may
//! do what.
//!
//! Tokens are 32 random bytes, shown once as `wdn_<base64url>`; the store
//! keeps only their blake3 hash. Every request carries one token, which names
//! exactly one tenant: a caller can never reach another tenant's data, because
//! no route takes a tenant from the request.

pub mod remembered;

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages its tenant (tokens, keys, settings) and may do everything else in it.
    Admin,
    /// Owns the rules: uploads, tests and activates bundles.
    Compliance,
    /// Asks for decisions and submits audit events.
    Orchestrator,
    /// An agent of the execution kernel; asks for decisions.
    Agent,
    /// A tool runner of the execution kernel.
    Runner,
    /// Reads evidence, bundles and metrics; changes nothing.
    Auditor,
    /// Approves or rejects what policy escalates.
    Reviewer,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Compliance,
        Role::Orchestrator,
        Role::Agent,
        Role::Runner,
        Role::Auditor,
        Role::Reviewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Compliance => "compliance",
            Role::Orchestrator => "orchestrator",
            Role::Agent => "agent",
            Role::Runner => "runner",
            Role::Auditor => "auditor",
            Role::Reviewer => "reviewer",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            format!("unknown role {s:?}; roles are admin, compliance, orchestrator, agent, runner, auditor, reviewer")
        })
    }
}

/// A set of roles, as carried by a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleSet(u8);

impl RoleSet {
    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }
    pub fn insert(&mut self, role: Role) {
        self.0 |= role.bit();
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
    /// Comma-separated, in canonical order (the stored form).
    pub fn to_csv(self) -> String {
        self.iter().map(Role::as_str).collect::<Vec<_>>().join(",")
    }
    pub fn from_csv(s: &str) -> Result<Self, String> {
        s.split(',').filter(|p| !p.is_empty()).map(Role::from_str).collect()
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        let mut set = RoleSet::default();
        for r in iter {
            set.insert(r);
        }
        set
    }
}

/// Every action a route performs. The route declares its action; this table
/// alone decides which roles may perform it. `admin` may perform every action
/// within its own tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create and list tenants: only admins of the platform tenant.
    ManageTenants,
    ManageTokens,
    ManageKeys,
    ReadKeys,
    ReadSettings,
    WriteSettings,
    WriteBundles,
    ReadBundles,
    ActivateBundles,
    Decide,
    ReadMetrics,
    ReadApi,
    /// Read the evidence ledger and the audit feed, export, replay, run impact analyses.
    ReadEvidence,
    /// Submit audit events.
    WriteEvents,
    /// Create, replace and delete the tenant's sinks; redrive dead letters.
    ManageSinks,
    /// Rotate the ledger signing key: only admins of the platform tenant.
    RotateLedgerKey,
    /// Start kernel executions, cancel them, signal them.
    RunExecutions,
    /// Read executions and their history.
    ReadExecutions,
    /// Hold an agent stream, submit intents and local step results.
    ActAsAgent,
    /// Hold a runner stream and report job results.
    ActAsRunner,
    /// List the steps waiting for human review.
    ReadApprovals,
    /// Upload workflow definitions.
    WriteWorkflows,
    /// Read workflow definitions.
    ReadWorkflows,
    /// Register skill versions.
    WriteSkills,
    /// Read skills and resolve which version an execution would pin.
    ReadSkills,
    /// Approve or reject a step: reviewers only, never `admin` alone
    /// (separation of duties).
    Review,
    /// Register, replace and delete the tenant's MCP upstreams; accept a
    /// changed tool definition.
    ManageMcp,
    /// Read the tenant's MCP upstreams and their pinned tools.
    ReadMcp,
}

impl Action {
    /// The roles (besides `admin`) that may perform this action.
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Action::ManageTenants
            | Action::ManageTokens
            | Action::ManageKeys
            | Action::RotateLedgerKey
            | Action::ManageSinks => &[],
            Action::WriteSettings => &[],
            Action::ReadKeys | Action::ReadSettings => &[Compliance, Auditor],
            Action::WriteBundles | Action::ActivateBundles => &[Compliance],
            Action::ReadBundles => &[Compliance, Auditor],
            Action::Decide => &[Orchestrator, Agent],
            Action::ReadMetrics => &[Auditor],
            Action::ReadEvidence => &[Compliance, Auditor],
            Action::WriteEvents => &[Orchestrator, Agent, Runner],
            Action::ReadApi => &[Compliance, Orchestrator, Agent, Runner, Auditor, Reviewer],
            Action::RunExecutions => &[Orchestrator],
            Action::ReadExecutions => &[Orchestrator, Agent, Compliance, Auditor, Reviewer],
            Action::ActAsAgent => &[Agent],
            Action::ActAsRunner => &[Runner],
            Action::ReadApprovals => &[Compliance, Auditor, Reviewer],
            Action::Review => &[Reviewer],
            Action::WriteWorkflows => &[Compliance, Orchestrator],
            Action::ReadWorkflows => &[Compliance, Orchestrator, Auditor],
            Action::WriteSkills => &[Compliance, Orchestrator],
            Action::ReadSkills => &[Compliance, Orchestrator, Agent, Auditor],
            Action::ManageMcp => &[],
            Action::ReadMcp => &[Compliance, Auditor],
        }
    }
}

/// The agent ids, or the runner ids, a token may act as: each entry an
/// exact id or a prefix ending in `*` (`claims-*`). Set when the token is
/// minted, never changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Binding(Vec<String>);

impl Binding {
    pub fn new(entries: Vec<String>) -> Self {
        Binding(entries)
    }

    /// Whether `id` is one of the bound ids or starts with a bound prefix.
    pub fn allows(&self, id: &str) -> bool {
        self.0.iter().any(|e| match e.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => e == id,
        })
    }

    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// The stored form (a JSON array).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }

    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("token binding: {e}"))
    }

    /// The binding of a token minted without one: only the id equal to its
    /// name (the id its streams take by default), when the token may act as
    /// that kind of identity (`role`, or admin) and its name is a valid id
    /// (`fault` finds none); else none at all.
    pub fn named(name: &str, roles: RoleSet, role: Role, fault: fn(&str, &str) -> Option<String>) -> Self {
        let may = roles.contains(role) || roles.contains(Role::Admin);
        if may && fault("id", name).is_none() {
            Binding(vec![name.to_string()])
        } else {
            Binding(Vec::new())
        }
    }
}

/// What a token's `subject` is when it was minted without one:
/// `token-name:<name>`. Chosen subjects may not start with this prefix, so
/// a default never passes for a person or service someone named.
pub const DEFAULT_SUBJECT_PREFIX: &str = "token-name:";

pub fn default_subject(token_name: &str) -> String {
    format!("{DEFAULT_SUBJECT_PREFIX}{token_name}")
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
    pub token_name: String,
    pub tenant_id: String,
    pub tenant_name: String,
    /// True for the tenant created on first start, whose admins manage tenants.
    pub platform: bool,
    pub roles: RoleSet,
    /// The person or service behind the token: reviewers are counted by
    /// it, and evidence of what the token did names it.
    pub subject: String,
    /// The agent ids this token may act as (streams, intents, step results).
    pub agent_ids: Binding,
    /// The runner ids this token may act as (streams, job results).
    pub runner_ids: Binding,
    /// When the token stops being honoured (epoch ms); None: never.
    pub expires_at: Option<i64>,
}

impl Principal {
    pub fn may(&self, action: Action) -> bool {
        if matches!(action, Action::ManageTenants | Action::RotateLedgerKey) {
            return self.platform && self.roles.contains(Role::Admin);
        }
        if action == Action::Review {
            return self.roles.contains(Role::Reviewer);
        }
        self.roles.contains(Role::Admin) || action.roles().iter().any(|r| self.roles.contains(*r))
    }

    /// How this caller is named in records: `token:<id>` (the token's name in
    /// parentheses), never anything taken from a request body.
    pub fn actor(&self) -> String {
        format!("token:{} ({})", self.token_id, self.token_name)
    }

    /// Whether this token may act as agent `agent_id`.
    pub fn is_agent(&self, agent_id: &str) -> bool {
        self.agent_ids.allows(agent_id)
    }

    /// Whether this token may act as runner `runner_id`.
    pub fn is_runner(&self, runner_id: &str) -> bool {
        self.runner_ids.allows(runner_id)
    }

    /// Whether the token's expiry has passed at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_ms)
    }
}

/// A freshly minted secret: the text shown once, and the hash kept.
pub struct NewToken {
    pub secret: String,
    pub hash: [u8; 32],
}

pub const TOKEN_PREFIX: &str = "wdn_";

pub fn mint_token() -> NewToken {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).expect("operating system random source");
    let secret = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let hash = hash_token(&secret);
    NewToken { secret, hash }
}

/// The stored form of a token. A keyed hash is not needed: tokens carry 256
/// bits of entropy, so the hash cannot be reversed by guessing.
pub fn hash_token(secret: &str) -> [u8; 32] {
    *blake3::hash(secret.as_bytes()).as_bytes()
}

/// A unique identifier with a readable prefix, e.g. `tok_01j…`: a ULID (so
/// identifiers sort by creation time) stamped with the caller's clock.
pub fn new_id(prefix: &str, now_ms: i64) -> String {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).expect("operating system random source");
    let ulid = ulid::Ulid::from_parts(now_ms.max(0) as u64, u128::from_le_bytes(random));
    format!("{prefix}_{}", ulid.to_string().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_storage_form() {
        let set: RoleSet = [Role::Auditor, Role::Admin].into_iter().collect();
        assert_eq!(set.to_csv(), "admin,auditor");
        assert_eq!(RoleSet::from_csv("admin,auditor").unwrap(), set);
        assert!(RoleSet::from_csv("root").unwrap_err().contains("unknown role"));
    }

    #[test]
    fn admin_may_everything_in_tenant_but_tenants_only_on_platform() {
        let p = |roles: &[Role], platform| Principal {
            token_id: "t".into(),
            token_name: "n".into(),
            tenant_id: "x".into(),
            tenant_name: "x".into(),
            platform,
            roles: roles.iter().copied().collect(),
            subject: "token-name:n".into(),
            agent_ids: Binding::default(),
            runner_ids: Binding::default(),
            expires_at: None,
        };
        assert!(p(&[Role::Admin], false).may(Action::WriteBundles));
        assert!(!p(&[Role::Admin], false).may(Action::ManageTenants));
        assert!(p(&[Role::Admin], true).may(Action::ManageTenants));
        assert!(!p(&[Role::Auditor], false).may(Action::WriteBundles));
        assert!(p(&[Role::Auditor], false).may(Action::ReadBundles));
    }

    #[test]
    fn bindings_match_exact_ids_and_prefixes_only() {
        let b = Binding::new(vec!["claims-agent".into(), "fraud-*".into()]);
        assert!(b.allows("claims-agent"));
        assert!(!b.allows("claims-agent-2"), "an exact entry is not a prefix");
        assert!(!b.allows("claims"));
        assert!(b.allows("fraud-check") && b.allows("fraud-"));
        assert!(!b.allows("fraud"));
        assert!(!Binding::default().allows("anything"));
        assert_eq!(Binding::from_json(&b.to_json()).unwrap(), b);
        let fault = |_: &str, v: &str| v.contains(' ').then(|| "bad".to_string());
        let agent: RoleSet = [Role::Agent].into_iter().collect();
        let auditor: RoleSet = [Role::Auditor].into_iter().collect();
        assert_eq!(Binding::named("bot", agent, Role::Agent, fault).entries(), ["bot"]);
        assert!(Binding::named("bot", agent, Role::Runner, fault).entries().is_empty());
        assert!(Binding::named("bot", auditor, Role::Agent, fault).entries().is_empty());
        assert!(Binding::named("a bot", agent, Role::Agent, fault).entries().is_empty());
    }

    #[test]
    fn minted_tokens_are_distinct_and_hash_to_their_stored_form() {
        let a = mint_token();
        let b = mint_token();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("wdn_"));
        assert_eq!(hash_token(&a.secret), a.hash);
    }
}
