//! The skill registry: every version of every tenant's skills. A version
//! is written once and never changed.
//!
//! Versions are ordered by semver precedence: the SQL orders by the stored
//! (major, minor, patch), and the rows are then sorted exactly (pre-release
//! identifiers compare part by part, numbers numerically), which SQL alone
//! cannot do.

use sqlx::Row;

use super::statement::query;
use super::{Pool, Result, Store, StoreError};

/// One version of a skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillRow {
    pub tenant_id: String,
    pub skill_id: String,
    pub version: String,
    /// blake3 of the manifest's canonical JSON, hex.
    pub digest: String,
    /// The parsed manifest, JSON.
    pub manifest: String,
    pub created_by: String,
    pub created_at: i64,
}

impl SkillRow {
    /// The version, parsed (it was checked when registered).
    pub fn semver(&self) -> Result<semver::Version> {
        semver::Version::parse(&self.version)
            .map_err(|e| StoreError::Corrupt(format!("skill {} version: {e}", self.skill_id)))
    }
}

macro_rules! skill_from_row {
    ($r:expr) => {
        SkillRow {
            tenant_id: $r.try_get("tenant_id")?,
            skill_id: $r.try_get("skill_id")?,
            version: $r.try_get("version")?,
            digest: $r.try_get("digest")?,
            manifest: $r.try_get("manifest")?,
            created_by: $r.try_get("created_by")?,
            created_at: $r.try_get("created_at")?,
        }
    };
}

const COLS: &str = "tenant_id, skill_id, version, digest, manifest, created_by, created_at";

/// Newest first, by semver precedence.
fn newest_first(rows: Vec<SkillRow>) -> Result<Vec<SkillRow>> {
    let mut keyed = rows
        .into_iter()
        .map(|r| Ok((r.semver()?, r)))
        .collect::<Result<Vec<_>>>()?;
    keyed.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(keyed.into_iter().map(|(_, r)| r).collect())
}

const INSERT_SQL: &str = "INSERT INTO skills (tenant_id, skill_id, version, major, minor, patch, pre, \
    digest, manifest, created_by, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)";

/// Writes a new version, inside a ledger batch with the entry of its
/// registration; a version taken meanwhile is [`StoreError::Changed`].
pub(super) async fn insert(conn: &mut super::ledger::TxConn, sk: &SkillRow) -> Result<()> {
    let (major, minor, patch, pre) = parts(sk)?;
    query(INSERT_SQL)
        .bind(&sk.tenant_id)
        .bind(&sk.skill_id)
        .bind(&sk.version)
        .bind(major)
        .bind(minor)
        .bind(patch)
        .bind(&pre)
        .bind(&sk.digest)
        .bind(&sk.manifest)
        .bind(&sk.created_by)
        .bind(sk.created_at)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(super::changed_on_unique("skill version"))
}

/// The ordering columns of a version: major, minor, patch, pre-release.
fn parts(s: &SkillRow) -> Result<(i64, i64, i64, String)> {
    let v = s.semver()?;
    let part = |n: u64| {
        i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("skill version {} is out of range", s.version)))
    };
    Ok((
        part(v.major)?,
        part(v.minor)?,
        part(v.patch)?,
        v.pre.as_str().to_string(),
    ))
}

impl Store {
    /// Every version of a skill, newest first by semver.
    pub async fn skill_versions(&self, tenant_id: &str, skill_id: &str) -> Result<Vec<SkillRow>> {
        let rows = with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM skills \
                WHERE tenant_id = $1 AND skill_id = $2 ORDER BY major DESC, minor DESC, patch DESC")))
                .bind(tenant_id).bind(skill_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(skill_from_row!(r))).collect::<Result<Vec<_>>>()?
        });
        newest_first(rows)
    }

    /// One version, by its exact text.
    pub async fn skill_version(&self, tenant_id: &str, skill_id: &str, version: &str) -> Result<Option<SkillRow>> {
        with_pool!(self, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM skills \
                WHERE tenant_id = $1 AND skill_id = $2 AND version = $3")))
                .bind(tenant_id).bind(skill_id).bind(version).fetch_optional(p).await?;
            row.map(|r| Ok(skill_from_row!(r))).transpose()
        })
    }

    /// A tenant's skills, by id: id, the highest version (pre-releases
    /// included), and how many versions.
    pub async fn skills(&self, tenant_id: &str) -> Result<Vec<(String, String, i64)>> {
        let rows: Vec<(String, String)> = with_pool!(self, p => {
            let rows = sqlx::query("SELECT skill_id, version FROM skills WHERE tenant_id = $1 ORDER BY skill_id")
                .bind(tenant_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.try_get("skill_id")?, r.try_get("version")?))).collect::<Result<Vec<_>>>()?
        });
        let mut out: Vec<(String, semver::Version, i64)> = Vec::new();
        for (id, version) in rows {
            let v = semver::Version::parse(&version)
                .map_err(|e| StoreError::Corrupt(format!("skill {id} version: {e}")))?;
            match out.last_mut() {
                Some((last, latest, n)) if *last == id => {
                    *n += 1;
                    if v > *latest {
                        *latest = v;
                    }
                }
                _ => out.push((id, v, 1)),
            }
        }
        Ok(out.into_iter().map(|(id, v, n)| (id, v.to_string(), n)).collect())
    }
}
