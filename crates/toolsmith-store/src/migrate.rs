//! Embedded migrations and their runner.
//!
//! We keep our own small runner instead of `sqlx::migrate!()` so that the build needs no
//! proc-macro copy of sqlx (a large share of a cold build on two cores). It does what we need
//! from it: apply unapplied files in order, each in a transaction, and refuse to start when
//! an applied file was edited or the database is newer than the binary.

use crate::{Result, StoreError};
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};
use toolsmith_domain::ids::to_hex;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "llm",
        sql: include_str!("../migrations/sqlite/0002_llm.sql"),
    },
];

fn checksum(sql: &str) -> String {
    to_hex(&Sha256::digest(sql.as_bytes()))
}

pub async fn run_sqlite(pool: &SqlitePool, migrations: &[Migration]) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS _toolsmith_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;

    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let applied = sqlx::query("SELECT version, checksum FROM _toolsmith_migrations")
        .fetch_all(&mut *tx)
        .await?;
    for row in &applied {
        let version: i64 = row.try_get("version")?;
        let stored: String = row.try_get("checksum")?;
        match migrations.iter().find(|m| m.version == version) {
            None => return Err(StoreError::UnknownMigration { version }),
            Some(m) if checksum(m.sql) != stored => {
                return Err(StoreError::MigrationEdited {
                    version,
                    name: m.name.to_owned(),
                });
            }
            Some(_) => {}
        }
    }
    for m in migrations {
        let done = applied
            .iter()
            .any(|row| row.try_get::<i64, _>("version").ok() == Some(m.version));
        if done {
            continue;
        }
        tracing::info!(version = m.version, name = m.name, "applying migration");
        sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO _toolsmith_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(checksum(m.sql))
        .bind(toolsmith_domain::time::now_ms())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
