//! The statements of the ledger writer's batch transaction, built once for
//! both backends: SQL text with `$1` placeholders (both understand them)
//! and the values bound to them.
//!
//! On PostgreSQL a statement runs through sqlx, on the connection the batch
//! holds. On SQLite it runs on the writer's own thread, through a
//! connection that thread steps itself ([`direct`]): sqlx's SQLite driver
//! would hand every statement to a worker thread and wait to be woken with
//! its answer, twice the time and the CPU of the batch's statements
//! (`cargo bench --bench sqlite_writer`). Reads and the writes made
//! outside the ledger's batches stay on sqlx's pools.

use std::borrow::Cow;

use super::{Result, StoreError};

/// One value bound to a placeholder, typed as the column it goes to (a
/// PostgreSQL parameter's type must match; SQLite stores what it is given).
#[derive(Debug, Clone)]
pub(super) enum Arg<'a> {
    Int(Option<i64>),
    Int4(Option<i32>),
    Bool(Option<bool>),
    Text(Option<Cow<'a, str>>),
    Blob(Option<Cow<'a, [u8]>>),
}

macro_rules! arg_from {
    ($($t:ty => |$v:ident| $e:expr;)*) => {
        $(impl<'a> From<$t> for Arg<'a> {
            fn from($v: $t) -> Self {
                $e
            }
        })*
    };
}

arg_from! {
    i64 => |v| Arg::Int(Some(v));
    &'a i64 => |v| Arg::Int(Some(*v));
    Option<i64> => |v| Arg::Int(v);
    &'a Option<i64> => |v| Arg::Int(*v);
    i32 => |v| Arg::Int4(Some(v));
    bool => |v| Arg::Bool(Some(v));
    &'a bool => |v| Arg::Bool(Some(*v));
    Option<bool> => |v| Arg::Bool(v);
    &'a str => |v| Arg::Text(Some(Cow::Borrowed(v)));
    &'a String => |v| Arg::Text(Some(Cow::Borrowed(v.as_str())));
    String => |v| Arg::Text(Some(Cow::Owned(v)));
    Option<&'a str> => |v| Arg::Text(v.map(Cow::Borrowed));
    &'a Option<String> => |v| Arg::Text(v.as_deref().map(Cow::Borrowed));
    Option<String> => |v| Arg::Text(v.map(Cow::Owned));
    &'a [u8] => |v| Arg::Blob(Some(Cow::Borrowed(v)));
    &'a Vec<u8> => |v| Arg::Blob(Some(Cow::Borrowed(v.as_slice())));
    Vec<u8> => |v| Arg::Blob(Some(Cow::Owned(v)));
}

/// A value read back (a `RETURNING` row, a locked head).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub(super) fn int(&self, what: &str) -> Result<i64> {
        match self {
            Value::Int(v) => Ok(*v),
            other => Err(StoreError::Corrupt(format!("{what} is not an integer: {other:?}"))),
        }
    }

    pub(super) fn text(self, what: &str) -> Result<String> {
        match self {
            Value::Text(s) => Ok(s),
            other => Err(StoreError::Corrupt(format!("{what} is not text: {other:?}"))),
        }
    }

    pub(super) fn blob(self, what: &str) -> Result<Vec<u8>> {
        match self {
            Value::Blob(b) => Ok(b),
            other => Err(StoreError::Corrupt(format!("{what} is not bytes: {other:?}"))),
        }
    }
}

/// The text of a statement: a constant, or built for its rows.
#[derive(Debug)]
enum Sql {
    Static(&'static str),
    Built(String),
}

impl Sql {
    fn as_str(&self) -> &str {
        match self {
            Sql::Static(s) => s,
            Sql::Built(s) => s,
        }
    }
}

/// One statement and its values.
#[derive(Debug)]
pub(super) struct Query<'a> {
    sql: Sql,
    args: Vec<Arg<'a>>,
    /// The placeholders are `$1, $2, …`, each once, in order (as
    /// [`QueryBuilder`] writes them): on SQLite they are written `?`
    /// and bound by position.
    in_order: bool,
}

/// A statement with this text; its values follow with [`Query::bind`].
pub(super) fn query<'a>(sql: &'static str) -> Query<'a> {
    Query {
        sql: Sql::Static(sql),
        args: Vec::new(),
        in_order: false,
    }
}

/// A statement whose text is made at run time (from constants: never from
/// input, whose values are bound).
pub(super) fn query_built<'a>(sql: String) -> Query<'a> {
    Query {
        sql: Sql::Built(sql),
        args: Vec::new(),
        in_order: false,
    }
}

impl<'a> Query<'a> {
    pub(super) fn bind(mut self, v: impl Into<Arg<'a>>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Runs the statement; the number of rows it wrote.
    pub(super) async fn execute(self, conn: &mut super::ledger::TxConn) -> Result<u64> {
        match conn {
            super::ledger::TxConn::Direct(c) => Ok(direct::execute(c.connection()?, &self)?),
            super::ledger::TxConn::Postgres(c) => Ok(self.into_sqlx().execute(&mut **c).await?.rows_affected()),
        }
    }

    /// Runs a statement that must write exactly one row (a conditional
    /// update, a delete by key): none is [`StoreError::Changed`] with
    /// `what`.
    pub(super) async fn execute_one(self, conn: &mut super::ledger::TxConn, what: &'static str) -> Result<()> {
        match self.execute(conn).await? {
            1 => Ok(()),
            _ => Err(StoreError::Changed(what)),
        }
    }

    /// Runs the statement; every row it answers.
    pub(super) async fn fetch_all(self, conn: &mut super::ledger::TxConn) -> Result<Vec<Vec<Value>>> {
        match conn {
            super::ledger::TxConn::Direct(c) => Ok(direct::fetch_all(c.connection()?, &self)?),
            super::ledger::TxConn::Postgres(c) => {
                let rows = self.into_sqlx().fetch_all(&mut **c).await?;
                rows.iter().map(values_of).collect()
            }
        }
    }

    fn into_sqlx(self) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let Query { sql, args, .. } = self;
        let mut q = match sql {
            Sql::Static(s) => sqlx::query(s),
            Sql::Built(s) => sqlx::query(sqlx::AssertSqlSafe(s)),
        };
        // Each value is encoded as it is bound: borrowed, not copied first.
        for a in &args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Int4(v) => q.bind(*v),
                Arg::Bool(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_deref()),
                Arg::Blob(v) => q.bind(v.as_deref()),
            };
        }
        q
    }
}

/// A PostgreSQL row's values, by their column types.
fn values_of(row: &sqlx::postgres::PgRow) -> Result<Vec<Value>> {
    use sqlx::{Column, Row, TypeInfo, ValueRef};
    let mut out = Vec::with_capacity(row.columns().len());
    for (i, col) in row.columns().iter().enumerate() {
        if row.try_get_raw(i)?.is_null() {
            out.push(Value::Null);
            continue;
        }
        out.push(match col.type_info().name() {
            "INT8" => Value::Int(row.try_get::<i64, _>(i)?),
            "INT4" => Value::Int(row.try_get::<i32, _>(i)?.into()),
            "INT2" => Value::Int(row.try_get::<i16, _>(i)?.into()),
            "BOOL" => Value::Int(row.try_get::<bool, _>(i)?.into()),
            "FLOAT8" => Value::Real(row.try_get::<f64, _>(i)?),
            "BYTEA" => Value::Blob(row.try_get::<Vec<u8>, _>(i)?),
            _ => Value::Text(row.try_get::<String, _>(i)?),
        });
    }
    Ok(out)
}

/// Builds a statement whose rows are listed in a `VALUES` list, as
/// sqlx's builder does: [`QueryBuilder::push`] for text,
/// [`QueryBuilder::push_values`] for the rows.
pub(super) struct QueryBuilder<'a> {
    sql: String,
    args: Vec<Arg<'a>>,
}

/// One row of a `VALUES` list being written.
pub(super) struct Separated<'b, 'a> {
    builder: &'b mut QueryBuilder<'a>,
    first: bool,
}

impl<'a> Separated<'_, 'a> {
    pub(super) fn push_bind(&mut self, v: impl Into<Arg<'a>>) -> &mut Self {
        if !self.first {
            self.builder.sql.push_str(", ");
        }
        self.first = false;
        self.builder.push_bind(v);
        self
    }
}

impl<'a> QueryBuilder<'a> {
    pub(super) fn new(sql: impl Into<String>) -> Self {
        QueryBuilder {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    fn push_bind(&mut self, v: impl Into<Arg<'a>>) {
        use std::fmt::Write;
        self.args.push(v.into());
        let _ = write!(self.sql, "${}", self.args.len());
    }

    /// `VALUES (…), (…)`, one parenthesised row per item, its values
    /// pushed by `row`.
    pub(super) fn push_values<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut row: impl FnMut(Separated<'_, 'a>, T),
    ) {
        self.sql.push_str("VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            row(
                Separated {
                    builder: self,
                    first: true,
                },
                item,
            );
            self.sql.push(')');
        }
    }

    pub(super) fn build(self) -> Query<'a> {
        Query {
            sql: Sql::Built(self.sql),
            args: self.args,
            in_order: true,
        }
    }
}

/// SQLite through a connection the calling thread steps (rusqlite, over the
/// same SQLite library sqlx links).
pub(super) mod direct {
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};

    use super::{Arg, Query, Value};
    use crate::store::{PageLimit, Result, StoreError};

    /// Prepared statements kept per connection: a batch's statements
    /// differ by their number of rows.
    const STATEMENT_CACHE: usize = 256;

    /// Idle connections kept for the next batch.
    const IDLE: usize = 4;

    impl ToSql for Arg<'_> {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(match self {
                Arg::Int(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
                Arg::Int4(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*v))),
                Arg::Bool(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*v))),
                Arg::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
                Arg::Blob(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
                Arg::Int(None) | Arg::Int4(None) | Arg::Bool(None) | Arg::Text(None) | Arg::Blob(None) => {
                    ToSqlOutput::Borrowed(ValueRef::Null)
                }
            })
        }
    }

    /// The SQLite file's connections for ledger batches, opened on demand
    /// with the settings of the store's pool (WAL, `synchronous = FULL`,
    /// foreign keys, a busy timeout) and the store's page limit.
    pub(in crate::store) struct Direct {
        path: PathBuf,
        busy_timeout: Duration,
        page_limit: PageLimit,
        idle: Mutex<Vec<rusqlite::Connection>>,
        /// Closed: connections given back are closed, not kept.
        closed: std::sync::atomic::AtomicBool,
    }

    impl std::fmt::Debug for Direct {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Direct")
                .field("path", &self.path)
                .finish_non_exhaustive()
        }
    }

    impl Direct {
        pub(in crate::store) fn new(path: PathBuf, busy_timeout: Duration, page_limit: PageLimit) -> Arc<Self> {
            Arc::new(Direct {
                path,
                busy_timeout,
                page_limit,
                idle: Mutex::default(),
                closed: Default::default(),
            })
        }

        /// Closes the idle connections (one in use closes when it is
        /// given back after this).
        pub(in crate::store) fn close(&self) {
            self.closed.store(true, std::sync::atomic::Ordering::Release);
            self.idle.lock().expect("idle connections").clear();
        }

        /// An idle connection, or a new one. Blocks the calling thread
        /// (the ledger writer's own) for as long as SQLite does.
        pub(in crate::store) fn acquire(self: &Arc<Self>) -> Result<DirectConn> {
            if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                return Err(StoreError::Database(sqlx::Error::PoolClosed));
            }
            let idle = self.idle.lock().expect("idle connections").pop();
            let conn = match idle {
                Some(c) => c,
                None => self.open()?,
            };
            let conn = DirectConn {
                conn: Some(conn),
                home: self.clone(),
                keep: true,
            };
            if let Some(pages) = self.page_limit.get() {
                conn.connection()?
                    .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
            }
            Ok(conn)
        }

        fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
            let c = rusqlite::Connection::open(&self.path)?;
            c.busy_timeout(self.busy_timeout)?;
            c.pragma_update(None, "synchronous", "FULL")?;
            c.pragma_update(None, "foreign_keys", "ON")?;
            c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            Ok(c)
        }
    }

    /// A connection taken for one batch; back to its store's idle ones
    /// when dropped, unless [`DirectConn::discard`]ed.
    pub(in crate::store) struct DirectConn {
        conn: Option<rusqlite::Connection>,
        home: Arc<Direct>,
        keep: bool,
    }

    impl DirectConn {
        pub(in crate::store) fn connection(&self) -> Result<&rusqlite::Connection> {
            self.conn
                .as_ref()
                .ok_or_else(|| StoreError::Corrupt("a ledger connection used after it was closed".into()))
        }

        /// Closes the connection instead of keeping it (SQLite rolls back
        /// what a closed connection left open).
        pub(in crate::store) fn discard(&mut self) {
            self.keep = false;
            self.conn = None;
        }
    }

    impl Drop for DirectConn {
        fn drop(&mut self) {
            if let Some(c) = self.conn.take()
                && self.keep
            {
                let mut idle = self.home.idle.lock().expect("idle connections");
                if idle.len() < IDLE && !self.home.closed.load(std::sync::atomic::Ordering::Acquire) {
                    idle.push(c);
                }
            }
        }
    }

    /// A built statement's text with each `$n` written `?`: the same
    /// parameters, in the same order. SQLite looks a named parameter
    /// (`$n`) up among those before it as it parses, which makes preparing
    /// a statement of a few thousand values take tens of milliseconds; a
    /// `?` is only counted.
    pub(super) fn anonymous(sql: &str) -> String {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                out.push('$');
            } else {
                out.push('?');
            }
            rest = &rest[at + 1 + digits..];
        }
        out.push_str(rest);
        out
    }

    fn prepare<'c>(c: &'c rusqlite::Connection, q: &Query<'_>) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
        let mut st = if q.in_order {
            c.prepare_cached(&anonymous(q.sql.as_str()))?
        } else {
            c.prepare_cached(q.sql.as_str())?
        };
        if q.in_order {
            for (i, a) in q.args.iter().enumerate() {
                st.raw_bind_parameter(i + 1, a)?;
            }
        } else {
            // `$n` is a name to SQLite, numbered where it first appears.
            for i in 1..=st.parameter_count() {
                let n = st
                    .parameter_name(i)
                    .and_then(|name| name.strip_prefix('$'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(i);
                let a = q
                    .args
                    .get(n - 1)
                    .ok_or(rusqlite::Error::InvalidParameterCount(n, q.args.len()))?;
                st.raw_bind_parameter(i, a)?;
            }
        }
        Ok(st)
    }

    pub(super) fn execute(c: &rusqlite::Connection, q: &Query<'_>) -> rusqlite::Result<u64> {
        let mut st = prepare(c, q)?;
        Ok(st.raw_execute()? as u64)
    }

    pub(super) fn fetch_all(c: &rusqlite::Connection, q: &Query<'_>) -> rusqlite::Result<Vec<Vec<Value>>> {
        let mut st = prepare(c, q)?;
        let n = st.column_count();
        let mut rows = st.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::direct::Direct;
    use super::*;
    use crate::store::ledger::TxConn;

    #[test]
    fn built_statements_number_their_values_in_order() {
        let mut q = QueryBuilder::new("INSERT INTO t (a, b) ");
        q.push_values([(1i64, "x"), (2, "y")], |mut b, (n, s)| {
            b.push_bind(n).push_bind(s);
        });
        q.push(" RETURNING a");
        let q = q.build();
        assert_eq!(
            q.sql.as_str(),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING a"
        );
        assert!(q.in_order);
        assert_eq!(q.args.len(), 4);
        assert!(matches!(&q.args[3], Arg::Text(Some(s)) if s == "y"));
    }

    #[test]
    fn placeholders_are_anonymous_for_sqlite_and_nothing_else_changes() {
        assert_eq!(
            direct::anonymous("VALUES ($1, $2), ($10, $11) AS v WHERE x = '$' AND y = $"),
            "VALUES (?, ?), (?, ?) AS v WHERE x = '$' AND y = $"
        );
    }

    async fn conn(dir: &std::path::Path) -> TxConn {
        let path = dir.join("t.db");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c BLOB, d INTEGER)")
            .unwrap();
        TxConn::Direct(
            Direct::new(path, std::time::Duration::from_secs(1), Default::default())
                .acquire()
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn sqlite_binds_each_named_value_where_it_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = conn(dir.path()).await;
        // `$3` appears first: SQLite numbers it 1, and it must still get
        // the third value.
        let n = query("INSERT INTO t (d, b, a, c) VALUES ($3, $2, $1, $4)")
            .bind(7i64)
            .bind("seven")
            .bind(true)
            .bind(&[1u8, 2][..])
            .execute(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let rows = query("SELECT a, b, c, d FROM t WHERE a = $1")
            .bind(7i64)
            .fetch_all(&mut c)
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![vec![
                Value::Int(7),
                Value::Text("seven".into()),
                Value::Blob(vec![1, 2]),
                Value::Int(1)
            ]]
        );
    }

    #[tokio::test]
    async fn built_rows_and_nulls_round_trip_and_duplicates_are_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = conn(dir.path()).await;
        let rows: Vec<(i64, Option<&str>)> = (1..=300).map(|i| (i, (i % 2 == 0).then_some("even"))).collect();
        let mut q = QueryBuilder::new("INSERT INTO t (a, b) ");
        q.push_values(&rows, |mut b, (a, s)| {
            b.push_bind(*a).push_bind(*s);
        });
        assert_eq!(q.build().execute(&mut c).await.unwrap(), 300);
        let read = query("SELECT COUNT(*), COUNT(b) FROM t")
            .fetch_all(&mut c)
            .await
            .unwrap();
        assert_eq!(read, vec![vec![Value::Int(300), Value::Int(150)]]);
        let again = query("INSERT INTO t (a) VALUES ($1)")
            .bind(1i64)
            .execute(&mut c)
            .await
            .map_err(crate::store::conflict("a row"));
        assert!(matches!(again, Err(StoreError::Conflict("a row"))), "{again:?}");
    }
}
