//! [`Store`] on an embedded SQLite file.
//!
//! WAL mode lets readers run beside the single writer. Every write transaction starts with
//! `BEGIN IMMEDIATE`, taking the write lock up front: a deferred transaction that reads and
//! then writes can fail at once with "database is locked" when another writer got in between,
//! while an immediate one simply waits (`busy_timeout`). This holds across processes sharing
//! the file, too.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection, SqlitePool};
use toolsmith_domain::ids::{new_object_id, to_hex};
use toolsmith_domain::job::final_job_status;
use toolsmith_domain::version::{self, Bump, FIRST_VERSION, bump};
use toolsmith_domain::{
    ErrorCode, JobStatus, Phase, RequestMetadata, RequirementStatus, SessionStatus, ToolRequirement,
};

use crate::page::{Cursor, Page, PageRequest};
use crate::{
    CachedCompletion, CancelOutcome, ExecutionRecord, GenerationLogRecord, JobRecord, Lease,
    LeaseState, LlmCallRecord, LogLevel, NewGenerationLog, NewJob, PhaseFinished, RegisteredTool,
    RequirementRecord, Result, RollbackOutcome, SessionFilter, SessionRecord, Store, StoreError,
    TokenUsage, ToolFileRecord, ToolFilter, ToolOutcome, ToolRecord, VersionRecord, migrate,
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or `sqlite:PATH`)
    /// and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::Open {
                url: url.to_owned(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                url: url.to_owned(),
                source,
            })?;
        migrate::run_sqlite(&pool, migrate::SQLITE_MIGRATIONS).await?;
        Ok(SqliteStore { pool })
    }

    /// Opens the database file at `path`.
    pub async fn open(path: &std::path::Path) -> Result<Self> {
        Self::connect(&format!("sqlite://{}", path.display())).await
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn load_requirements(
        conn: &mut SqliteConnection,
        job_id: &str,
    ) -> Result<Vec<RequirementRecord>> {
        let rows = sqlx::query("SELECT * FROM job_requirements WHERE job_id = ? ORDER BY idx")
            .bind(job_id)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(requirement_from_row).collect()
    }

    async fn load_job(conn: &mut SqliteConnection, job_id: &str) -> Result<Option<JobRecord>> {
        let Some(row) = sqlx::query("SELECT * FROM jobs WHERE id = ?")
            .bind(job_id)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let mut job = job_from_row(&row)?;
        job.requirements = Self::load_requirements(conn, job_id).await?;
        Ok(Some(job))
    }
}

/// Fails with [`StoreError::LeaseLost`] unless `lease` still holds its running job.
async fn check_lease(conn: &mut SqliteConnection, lease: &Lease) -> Result<()> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM jobs WHERE id = ? AND status = 'running' AND lease_owner = ?",
    )
    .bind(&lease.job_id)
    .bind(&lease.worker)
    .fetch_optional(&mut *conn)
    .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost {
            job_id: lease.job_id.clone(),
        }),
    }
}

/// Raises the session's progress to the mean of its requirements'; it never goes down.
async fn refresh_session_progress(
    conn: &mut SqliteConnection,
    job_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET
            progress = MAX(progress, (SELECT CAST(COALESCE(AVG(progress), 0) AS INTEGER)
                                      FROM job_requirements WHERE job_id = ?1)),
            updated_at = ?2
         WHERE job_id = ?1",
    )
    .bind(job_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn parse_enum<T>(value: &str, parse: impl Fn(&str) -> Option<T>, what: &str) -> Result<T> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} {value:?}")))
}

/// A text column holding one of an enum's names.
fn enum_column<T>(row: &SqliteRow, column: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
    parse_enum(&row.try_get::<String, _>(column)?, parse, column)
}

/// A nullable text column holding a phase.
fn phase_column(row: &SqliteRow, column: &str) -> Result<Option<Phase>> {
    row.try_get::<Option<String>, _>(column)?
        .map(|p| parse_enum(&p, Phase::parse, column))
        .transpose()
}

fn to_u32(value: i64, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {value}")))
}

fn job_from_row(row: &SqliteRow) -> Result<JobRecord> {
    Ok(JobRecord {
        id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        user_id: row.try_get("user_id")?,
        status: enum_column(row, "status", JobStatus::parse)?,
        metadata: RequestMetadata {
            session_id: row.try_get("client_session_id")?,
            client_id: row.try_get("client_id")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        deadline_at: row.try_get("deadline_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        attempts: to_u32(row.try_get("attempts")?, "attempts")?,
        requirements: Vec::new(),
    })
}

fn requirement_from_row(row: &SqliteRow) -> Result<RequirementRecord> {
    let error_code: Option<String> = row.try_get("error_code")?;
    let progress: i64 = row.try_get("progress")?;
    Ok(RequirementRecord {
        index: to_u32(row.try_get("idx")?, "requirement index")?,
        requirement: ToolRequirement {
            description: row.try_get("description")?,
            input: row.try_get("input")?,
            output: row.try_get("output")?,
        },
        status: enum_column(row, "status", RequirementStatus::parse)?,
        current_phase: phase_column(row, "current_phase")?,
        next_phase: enum_column(row, "next_phase", Phase::parse)?,
        progress: u8::try_from(progress.clamp(0, 100)).unwrap_or(100),
        checkpoint: serde_json::from_str(&row.try_get::<String, _>("checkpoint")?)?,
        tool_name: row.try_get("tool_name")?,
        tool_id: row.try_get("tool_id")?,
        error_code: error_code
            .map(|c| parse_enum(&c, ErrorCode::parse, "error code"))
            .transpose()?,
        error_message: row.try_get("error_message")?,
        started_at: row.try_get("started_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRecord> {
    let progress: i64 = row.try_get("progress")?;
    Ok(SessionRecord {
        id: row.try_get("id")?,
        job_id: row.try_get("job_id")?,
        user_id: row.try_get("user_id")?,
        status: enum_column(row, "status", SessionStatus::parse)?,
        current_phase: phase_column(row, "current_phase")?,
        progress: u8::try_from(progress.clamp(0, 100)).unwrap_or(100),
        tool_ids: serde_json::from_str(&row.try_get::<String, _>("tool_ids")?)?,
        tool_requirements: serde_json::from_str(&row.try_get::<String, _>("tool_requirements")?)?,
        metadata: RequestMetadata {
            session_id: row.try_get("client_session_id")?,
            client_id: row.try_get("client_id")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn execution_from_row(row: &SqliteRow) -> Result<ExecutionRecord> {
    let optional_json = |column: &str| -> Result<Option<Value>> {
        row.try_get::<Option<String>, _>(column)?
            .map(|text| serde_json::from_str(&text).map_err(StoreError::from))
            .transpose()
    };
    Ok(ExecutionRecord {
        id: row.try_get("id")?,
        tool_id: row.try_get("tool_id")?,
        user_id: row.try_get("user_id")?,
        version: row
            .try_get::<Option<String>, _>("version")?
            .unwrap_or_default(),
        input_params: optional_json("input_params")?.unwrap_or(Value::Null),
        success: row.try_get("success")?,
        result: optional_json("result")?,
        error: row.try_get("error")?,
        error_type: row.try_get("error_type")?,
        execution_time_ms: row
            .try_get::<Option<i64>, _>("execution_time_ms")?
            .unwrap_or(0),
        triggered_by: row.try_get("triggered_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn tool_from_row(row: &SqliteRow) -> Result<ToolRecord> {
    Ok(ToolRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        status: row.try_get("status")?,
        current_version: row.try_get("current_version")?,
        tags: serde_json::from_str(&row.try_get::<String, _>("tags")?)?,
        quality_score: row.try_get("quality_score")?,
        usage_count: row.try_get("usage_count")?,
        session_id: row.try_get("session_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn version_from_row(row: &SqliteRow) -> Result<VersionRecord> {
    let json = |column: &str| -> Result<Value> {
        Ok(serde_json::from_str(&row.try_get::<String, _>(column)?)?)
    };
    let optional_json = |column: &str| -> Result<Option<Value>> {
        row.try_get::<Option<String>, _>(column)?
            .map(|text| serde_json::from_str(&text).map_err(StoreError::from))
            .transpose()
    };
    Ok(VersionRecord {
        tool_id: row.try_get("tool_id")?,
        version: row.try_get("version")?,
        code: row.try_get("code")?,
        sha256: row.try_get("sha256")?,
        entry_point: row.try_get("entry_point")?,
        input_schema: json("input_schema")?,
        output_schema: json("output_schema")?,
        dependencies: serde_json::from_value(json("dependencies")?)?,
        test_code: row.try_get("test_code")?,
        test_cases: json("test_cases")?,
        spec: optional_json("spec")?,
        plan: optional_json("plan")?,
        job_id: row.try_get("job_id")?,
        session_id: row.try_get("session_id")?,
        model: row.try_get("model")?,
        change_reason: row.try_get("change_reason")?,
        created_at: row.try_get("created_at")?,
    })
}

const REGISTERED_TOOL_SELECT: &str = "SELECT t.id, t.name, t.description, v.version, v.code,
        v.entry_point, v.dependencies, v.input_schema, v.test_cases
    FROM tools t JOIN tool_versions v ON v.tool_id = t.id AND v.version = t.current_version";

fn registered_tool_from_row(row: &SqliteRow) -> Result<RegisteredTool> {
    Ok(RegisteredTool {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        version: row.try_get("version")?,
        code: row.try_get("code")?,
        entry_point: row.try_get("entry_point")?,
        dependencies: serde_json::from_str(&row.try_get::<String, _>("dependencies")?)?,
        input_schema: serde_json::from_str(&row.try_get::<String, _>("input_schema")?)?,
        test_cases: serde_json::from_str(&row.try_get::<String, _>("test_cases")?)?,
    })
}

fn log_from_row(row: &SqliteRow) -> Result<GenerationLogRecord> {
    let index: Option<i64> = row.try_get("requirement_index")?;
    let result: Option<String> = row.try_get("execution_result")?;
    Ok(GenerationLogRecord {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        log: NewGenerationLog {
            session_id: row.try_get("session_id")?,
            job_id: row.try_get("job_id")?,
            requirement_index: index.map(|i| to_u32(i, "requirement index")).transpose()?,
            phase: row.try_get("phase")?,
            step: row.try_get("step")?,
            level: enum_column(row, "level", LogLevel::parse)?,
            message: row.try_get("message")?,
            prompt_sent: row.try_get("prompt_sent")?,
            response_received: row.try_get("response_received")?,
            model_used: row.try_get("model_used")?,
            tokens_used: row.try_get("tokens_used")?,
            code_executed: row.try_get("code_executed")?,
            execution_result: result.map(|r| serde_json::from_str(&r)).transpose()?,
            execution_time_ms: row.try_get("execution_time_ms")?,
            created_at: row.try_get("created_at")?,
        },
    })
}

/// Runs a newest-first listing: `sql` ends in a WHERE clause; binds `first` then the cursor.
async fn newest_first<T>(
    pool: &SqlitePool,
    sql: &str,
    first: Option<&str>,
    page: &PageRequest,
    map: impl Fn(&SqliteRow) -> Result<T>,
    key: impl Fn(&T) -> Cursor,
) -> Result<Page<T>> {
    // Numbered parameters: ?1 is the filter's, ?2/?3 the cursor's, ?4 the limit.
    let after = if page.after.is_some() {
        " AND (created_at < ?2 OR (created_at = ?2 AND id < ?3))"
    } else {
        // Always true; it keeps ?2 and ?3 in the statement so the binds below stay the same.
        " AND ?2 IS NOT NULL AND ?3 IS NOT NULL"
    };
    let sql = format!("{sql}{after} ORDER BY created_at DESC, id DESC LIMIT ?4");
    let (position, id) = page
        .after
        .as_ref()
        .map(|c| (c.position, c.id.clone()))
        .unwrap_or((0, String::new()));
    let rows = sqlx::query(&sql)
        .bind(first)
        .bind(position)
        .bind(id)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(pool)
        .await?;
    let items = rows.iter().map(map).collect::<Result<Vec<T>>>()?;
    Ok(Page::from_rows(items, page.limit, key))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_job(&self, job: NewJob) -> Result<JobRecord> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO jobs (id, user_id, session_id, status, client_session_id, client_id,
                               created_at, updated_at, deadline_at)
             VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
        )
        .bind(&job.id)
        .bind(&job.user_id)
        .bind(&job.session_id)
        .bind(&job.metadata.session_id)
        .bind(&job.metadata.client_id)
        .bind(job.created_at)
        .bind(job.created_at)
        .bind(job.deadline_at)
        .execute(&mut *tx)
        .await?;
        for (index, requirement) in job.requirements.iter().enumerate() {
            sqlx::query(
                "INSERT INTO job_requirements (job_id, idx, description, input, output, status,
                                               next_phase, updated_at)
                 VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            )
            .bind(&job.id)
            .bind(i64::try_from(index).unwrap_or(i64::MAX))
            .bind(&requirement.description)
            .bind(&requirement.input)
            .bind(&requirement.output)
            .bind(Phase::first().as_str())
            .bind(job.created_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO sessions (id, job_id, user_id, status, tool_requirements,
                                   client_session_id, client_id, created_at, updated_at)
             VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
        )
        .bind(&job.session_id)
        .bind(&job.id)
        .bind(&job.user_id)
        .bind(serde_json::to_string(&job.requirements)?)
        .bind(&job.metadata.session_id)
        .bind(&job.metadata.client_id)
        .bind(job.created_at)
        .bind(job.created_at)
        .execute(&mut *tx)
        .await?;
        let record = Self::load_job(&mut tx, &job.id).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("job {} vanished while creating it", job.id))
        })?;
        tx.commit().await?;
        Ok(record)
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        let mut conn = self.pool.acquire().await?;
        Self::load_job(&mut conn, job_id).await
    }

    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        page: &PageRequest,
    ) -> Result<Page<JobRecord>> {
        let page = newest_first(
            &self.pool,
            "SELECT * FROM jobs WHERE (?1 IS NULL OR status = ?1)",
            status.map(JobStatus::as_str),
            page,
            job_from_row,
            |j| Cursor {
                position: j.created_at,
                id: j.id.clone(),
            },
        )
        .await?;
        let mut conn = self.pool.acquire().await?;
        let mut items = Vec::with_capacity(page.items.len());
        for mut job in page.items {
            job.requirements = Self::load_requirements(&mut conn, &job.id).await?;
            items.push(job);
        }
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    async fn cancel_job(&self, job_id: &str, now: i64) -> Result<CancelOutcome> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?")
            .bind(job_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(status) = status else {
            return Ok(CancelOutcome::NotFound);
        };
        match parse_enum(&status, JobStatus::parse, "job status")? {
            JobStatus::Cancelled => return Ok(CancelOutcome::AlreadyCancelled),
            s @ (JobStatus::Completed | JobStatus::Failed) => {
                return Ok(CancelOutcome::AlreadyFinished(s));
            }
            JobStatus::Pending | JobStatus::Running => {}
        }
        // The lease owner stays, so the worker's next heartbeat reads "cancelled" and stops.
        sqlx::query(
            "UPDATE jobs SET status = 'cancelled', finished_at = ?1, updated_at = ?1 WHERE id = ?2",
        )
        .bind(now)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE job_requirements SET status = 'cancelled', error_code = 'JOB_CANCELLED',
                 error_message = 'the job was cancelled before this requirement finished',
                 updated_at = ?1
             WHERE job_id = ?2 AND status IN ('pending', 'running')",
        )
        .bind(now)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE sessions SET status = 'cancelled', updated_at = ?1 WHERE job_id = ?2")
            .bind(now)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        let job = Self::load_job(&mut tx, job_id).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("job {job_id} vanished while cancelling"))
        })?;
        tx.commit().await?;
        Ok(CancelOutcome::Cancelled(Box::new(job)))
    }

    async fn claim_next_job(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>> {
        let mut tx = self.begin_write().await?;
        let job_id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM jobs
             WHERE status = 'pending'
                OR (status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at <= ?1))
             ORDER BY created_at, id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(job_id) = job_id else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE jobs SET status = 'running', lease_owner = ?1, lease_expires_at = ?2,
                 attempts = attempts + 1, started_at = COALESCE(started_at, ?3), updated_at = ?3
             WHERE id = ?4",
        )
        .bind(worker)
        .bind(now + lease_ms)
        .bind(now)
        .bind(&job_id)
        .execute(&mut *tx)
        .await?;
        let job = Self::load_job(&mut tx, &job_id).await?;
        tx.commit().await?;
        Ok(job)
    }

    async fn heartbeat(&self, lease: &Lease, now: i64, lease_ms: i64) -> Result<LeaseState> {
        let mut tx = self.begin_write().await?;
        let extended = sqlx::query(
            "UPDATE jobs SET lease_expires_at = ?1
             WHERE id = ?2 AND lease_owner = ?3 AND status = 'running'",
        )
        .bind(now + lease_ms)
        .bind(&lease.job_id)
        .bind(&lease.worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let state = if extended == 1 {
            LeaseState::Held
        } else {
            let status: Option<String> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?")
                .bind(&lease.job_id)
                .fetch_optional(&mut *tx)
                .await?;
            if status.as_deref() == Some("cancelled") {
                LeaseState::Cancelled
            } else {
                LeaseState::Lost
            }
        };
        tx.commit().await?;
        Ok(state)
    }

    async fn release_job(&self, lease: &Lease, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // A hand-back is not a failed attempt: the claim that made it is not counted.
        let released = sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1,
                 attempts = MAX(attempts - 1, 0)
             WHERE id = ?2 AND lease_owner = ?3 AND status = 'running'",
        )
        .bind(now)
        .bind(&lease.job_id)
        .bind(&lease.worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if released == 1 {
            // Nobody works on them until the job is claimed again.
            sqlx::query(
                "UPDATE job_requirements SET status = 'pending', updated_at = ?1
                 WHERE job_id = ?2 AND status = 'running'",
            )
            .bind(now)
            .bind(&lease.job_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn finish_job(&self, lease: &Lease, now: i64) -> Result<JobStatus> {
        let mut tx = self.begin_write().await?;
        check_lease(&mut tx, lease).await?;
        let produced: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM job_requirements WHERE job_id = ? AND status = 'completed'",
        )
        .bind(&lease.job_id)
        .fetch_one(&mut *tx)
        .await?;
        let status = final_job_status(u32::try_from(produced).unwrap_or(u32::MAX));
        sqlx::query(
            "UPDATE jobs SET status = ?1, finished_at = ?2, updated_at = ?2,
                 lease_owner = NULL, lease_expires_at = NULL
             WHERE id = ?3",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(&lease.job_id)
        .execute(&mut *tx)
        .await?;
        let session_status = SessionStatus::from_job(status).unwrap_or(SessionStatus::Failed);
        sqlx::query(
            "UPDATE sessions SET status = ?1, progress = 100, updated_at = ?2 WHERE job_id = ?3",
        )
        .bind(session_status.as_str())
        .bind(now)
        .bind(&lease.job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(status)
    }

    async fn phase_started(&self, lease: &Lease, index: u32, phase: Phase, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        check_lease(&mut tx, lease).await?;
        sqlx::query(
            "UPDATE job_requirements SET status = 'running', current_phase = ?1,
                 started_at = COALESCE(started_at, ?2), updated_at = ?2
             WHERE job_id = ?3 AND idx = ?4",
        )
        .bind(phase.as_str())
        .bind(now)
        .bind(&lease.job_id)
        .bind(i64::from(index))
        .execute(&mut *tx)
        .await?;
        let (current, current_phase): (String, Option<String>) =
            sqlx::query_as("SELECT status, current_phase FROM sessions WHERE job_id = ?")
                .bind(&lease.job_id)
                .fetch_one(&mut *tx)
                .await?;
        let status = parse_enum(&current, SessionStatus::parse, "session status")?
            .advance(phase.session_status());
        // With requirements running side by side, the session shows the furthest phase.
        let current_phase = current_phase
            .map(|p| parse_enum(&p, Phase::parse, "phase"))
            .transpose()?
            .filter(|p| p.index() > phase.index())
            .unwrap_or(phase);
        sqlx::query(
            "UPDATE sessions SET status = ?1, current_phase = ?2, updated_at = ?3 WHERE job_id = ?4",
        )
        .bind(status.as_str())
        .bind(current_phase.as_str())
        .bind(now)
        .bind(&lease.job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn phase_finished(&self, lease: &Lease, update: PhaseFinished, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        check_lease(&mut tx, lease).await?;
        // With no phase left, `next_phase` keeps the last one: the requirement is about to
        // complete, and a resumed run would only redo registration, which is idempotent.
        let next = update.next_phase.unwrap_or(update.phase);
        sqlx::query(
            "UPDATE job_requirements SET next_phase = ?1, progress = MAX(progress, ?2),
                 checkpoint = ?3, tool_name = COALESCE(?4, tool_name), updated_at = ?5
             WHERE job_id = ?6 AND idx = ?7",
        )
        .bind(next.as_str())
        .bind(i64::from(update.phase.progress_after()))
        .bind(serde_json::to_string(&update.checkpoint)?)
        .bind(&update.tool_name)
        .bind(now)
        .bind(&lease.job_id)
        .bind(i64::from(update.index))
        .execute(&mut *tx)
        .await?;
        refresh_session_progress(&mut tx, &lease.job_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn complete_requirement(
        &self,
        lease: &Lease,
        index: u32,
        outcome: ToolOutcome,
        now: i64,
    ) -> Result<String> {
        let mut tx = self.begin_write().await?;
        check_lease(&mut tx, lease).await?;
        let (user_id, session_id): (String, String) =
            sqlx::query_as("SELECT user_id, session_id FROM jobs WHERE id = ?")
                .bind(&lease.job_id)
                .fetch_one(&mut *tx)
                .await?;
        let registered: Option<(String, String)> = sqlx::query_as(
            "SELECT tool_id, version FROM tool_versions WHERE job_id = ? AND requirement_index = ?",
        )
        .bind(&lease.job_id)
        .bind(i64::from(index))
        .fetch_optional(&mut *tx)
        .await?;

        let (tool_id, version, name) = match (registered, outcome) {
            // Already registered by an earlier run of this requirement: keep that one.
            (Some((tool_id, version)), outcome) => {
                let name = match outcome {
                    ToolOutcome::Generated(draft) => Some(draft.name),
                    ToolOutcome::Reused { .. } => None,
                };
                (tool_id, version, name)
            }
            (None, ToolOutcome::Reused { tool_id }) => {
                let row: Option<(String, String)> =
                    sqlx::query_as("SELECT current_version, name FROM tools WHERE id = ?")
                        .bind(&tool_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let (version, name) = row.ok_or_else(|| {
                    StoreError::Corrupt(format!("reused tool {tool_id} does not exist"))
                })?;
                (tool_id, version, Some(name))
            }
            (None, ToolOutcome::Generated(draft)) => {
                let existing: Option<(String, String)> = sqlx::query_as(
                    "SELECT id, current_version FROM tools WHERE user_id = ? AND name = ?",
                )
                .bind(&user_id)
                .bind(&draft.name)
                .fetch_optional(&mut *tx)
                .await?;
                let (tool_id, version, reason) = match existing {
                    Some((tool_id, current)) => {
                        let (version, reason) =
                            next_version(&mut tx, &tool_id, &current, &draft).await?;
                        // The kind of the new generation joins the tool's tags (json_each
                        // keeps the tags it has, failure tags included).
                        sqlx::query(
                            "UPDATE tools SET current_version = ?1, description = ?2,
                                 status = 'registered', updated_at = ?3,
                                 tags = CASE
                                     WHEN ?5 IS NULL
                                       OR EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?5)
                                     THEN tags
                                     ELSE json_insert(tags, '$[#]', ?5) END
                             WHERE id = ?4",
                        )
                        .bind(&version)
                        .bind(&draft.description)
                        .bind(now)
                        .bind(&tool_id)
                        .bind(kind_tag(&draft))
                        .execute(&mut *tx)
                        .await?;
                        (tool_id, version, reason)
                    }
                    None => {
                        let tool_id = new_object_id();
                        sqlx::query(
                            "INSERT INTO tools (id, user_id, name, description, status,
                                                current_version, tags, session_id, created_at,
                                                updated_at)
                             VALUES (?, ?, ?, ?, 'registered', ?, ?, ?, ?, ?)",
                        )
                        .bind(&tool_id)
                        .bind(&user_id)
                        .bind(&draft.name)
                        .bind(&draft.description)
                        .bind(FIRST_VERSION)
                        .bind(serde_json::to_string(
                            &kind_tag(&draft).into_iter().collect::<Vec<_>>(),
                        )?)
                        .bind(&session_id)
                        .bind(now)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        (
                            tool_id,
                            FIRST_VERSION.to_owned(),
                            "first generation".to_owned(),
                        )
                    }
                };
                sqlx::query(
                    "INSERT INTO tool_versions (tool_id, version, code, sha256, entry_point,
                         input_schema, output_schema, dependencies, test_code, test_cases, spec,
                         plan, job_id, session_id, requirement_index, model, change_reason,
                         created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&tool_id)
                .bind(&version)
                .bind(&draft.code)
                .bind(to_hex(&Sha256::digest(draft.code.as_bytes())))
                .bind(&draft.entry_point)
                .bind(serde_json::to_string(&draft.input_schema)?)
                .bind(serde_json::to_string(&draft.output_schema)?)
                .bind(serde_json::to_string(&draft.dependencies)?)
                .bind(&draft.test_code)
                .bind(serde_json::to_string(&draft.test_cases)?)
                .bind(draft.spec.as_ref().map(serde_json::to_string).transpose()?)
                .bind(draft.plan.as_ref().map(serde_json::to_string).transpose()?)
                .bind(&lease.job_id)
                .bind(&session_id)
                .bind(i64::from(index))
                .bind(&draft.model)
                .bind(&reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                (tool_id, version, Some(draft.name))
            }
        };

        sqlx::query(
            "UPDATE job_requirements SET status = 'completed', progress = 100, tool_id = ?1,
                 tool_version = ?2, tool_name = COALESCE(?3, tool_name), updated_at = ?4
             WHERE job_id = ?5 AND idx = ?6",
        )
        .bind(&tool_id)
        .bind(&version)
        .bind(&name)
        .bind(now)
        .bind(&lease.job_id)
        .bind(i64::from(index))
        .execute(&mut *tx)
        .await?;
        let ids: String = sqlx::query_scalar("SELECT tool_ids FROM sessions WHERE job_id = ?")
            .bind(&lease.job_id)
            .fetch_one(&mut *tx)
            .await?;
        let mut ids: Vec<String> = serde_json::from_str(&ids)?;
        if !ids.contains(&tool_id) {
            ids.push(tool_id.clone());
        }
        sqlx::query("UPDATE sessions SET tool_ids = ?1 WHERE job_id = ?2")
            .bind(serde_json::to_string(&ids)?)
            .bind(&lease.job_id)
            .execute(&mut *tx)
            .await?;
        refresh_session_progress(&mut tx, &lease.job_id, now).await?;
        tx.commit().await?;
        Ok(tool_id)
    }

    async fn fail_requirement(
        &self,
        lease: &Lease,
        index: u32,
        code: ErrorCode,
        message: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        check_lease(&mut tx, lease).await?;
        sqlx::query(
            "UPDATE job_requirements SET status = 'failed', progress = 100, error_code = ?1,
                 error_message = ?2, updated_at = ?3
             WHERE job_id = ?4 AND idx = ?5",
        )
        .bind(code.as_str())
        .bind(message)
        .bind(now)
        .bind(&lease.job_id)
        .bind(i64::from(index))
        .execute(&mut *tx)
        .await?;
        refresh_session_progress(&mut tx, &lease.job_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_session(&self, session_id: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn list_sessions(
        &self,
        filter: SessionFilter,
        page: &PageRequest,
    ) -> Result<Page<SessionRecord>> {
        let (sql, value) = match &filter {
            SessionFilter::User(user) => {
                ("SELECT * FROM sessions WHERE user_id = ?1", user.as_str())
            }
            SessionFilter::Status(status) => {
                ("SELECT * FROM sessions WHERE status = ?1", status.as_str())
            }
        };
        newest_first(&self.pool, sql, Some(value), page, session_from_row, |s| {
            Cursor {
                position: s.created_at,
                id: s.id.clone(),
            }
        })
        .await
    }

    async fn session_tools(
        &self,
        session_id: &str,
        page: &PageRequest,
    ) -> Result<Page<ToolRecord>> {
        newest_first(
            &self.pool,
            "SELECT * FROM tools WHERE id IN (
                 SELECT r.tool_id FROM job_requirements r JOIN sessions s ON s.job_id = r.job_id
                 WHERE s.id = ?1 AND r.tool_id IS NOT NULL)",
            Some(session_id),
            page,
            tool_from_row,
            |t| Cursor {
                position: t.created_at,
                id: t.id.clone(),
            },
        )
        .await
    }

    async fn job_tool_files(&self, job_id: &str) -> Result<Vec<ToolFileRecord>> {
        let rows = sqlx::query(
            "SELECT r.idx, t.id, t.name, t.description, t.status, v.version, v.code, v.created_at
             FROM job_requirements r
             JOIN tools t ON t.id = r.tool_id
             JOIN tool_versions v ON v.tool_id = r.tool_id AND v.version = r.tool_version
             WHERE r.job_id = ? AND r.status = 'completed'
             ORDER BY r.idx",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ToolFileRecord {
                    requirement_index: to_u32(row.try_get("idx")?, "requirement index")?,
                    tool_id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    status: row.try_get("status")?,
                    version: row.try_get("version")?,
                    code: row.try_get("code")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn tool_count(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tools")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn list_tools(
        &self,
        filter: &ToolFilter,
        page: &PageRequest,
    ) -> Result<Page<ToolRecord>> {
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut binds: Vec<String> = Vec::new();
        if let Some(user) = &filter.user_id {
            binds.push(user.clone());
            clauses.push(format!("user_id = ?{}", binds.len() + 4));
        }
        if let Some(status) = &filter.status {
            binds.push(status.clone());
            clauses.push(format!("status = ?{}", binds.len() + 4));
        }
        if let Some(text) = &filter.text {
            // LIKE wildcards in the search text are taken literally.
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            binds.push(format!("%{escaped}%"));
            let n = binds.len() + 4;
            clauses.push(format!(
                "(lower(name) LIKE ?{n} ESCAPE '\\' OR lower(description) LIKE ?{n} ESCAPE '\\')"
            ));
        }
        if let Some(tag) = &filter.tag {
            binds.push(tag.clone());
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM json_each(tools.tags) WHERE value = ?{})",
                binds.len() + 4
            ));
        }
        let after = if page.after.is_some() {
            " AND (created_at < ?2 OR (created_at = ?2 AND id < ?3))"
        } else {
            " AND ?2 IS NOT NULL AND ?3 IS NOT NULL"
        };
        let sql = format!(
            "SELECT * FROM tools WHERE ?1 IS NULL AND {}{after} ORDER BY created_at DESC, id DESC LIMIT ?4",
            clauses.join(" AND ")
        );
        let (position, id) = page
            .after
            .as_ref()
            .map(|c| (c.position, c.id.clone()))
            .unwrap_or((0, String::new()));
        let mut query = sqlx::query(&sql)
            .bind(Option::<String>::None)
            .bind(position)
            .bind(id)
            .bind(i64::from(page.limit) + 1);
        for value in &binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let items = rows.iter().map(tool_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |t| Cursor {
            position: t.created_at,
            id: t.id.clone(),
        }))
    }

    async fn get_tool(&self, tool_id: &str) -> Result<Option<ToolRecord>> {
        let row = sqlx::query("SELECT * FROM tools WHERE id = ?")
            .bind(tool_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tool_from_row).transpose()
    }

    async fn tool_versions(
        &self,
        tool_id: &str,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>> {
        let after = page.after.as_ref().map(|c| c.position).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT rowid AS seq, * FROM tool_versions WHERE tool_id = ? AND rowid < ?
             ORDER BY rowid DESC LIMIT ?",
        )
        .bind(tool_id)
        .bind(after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| Ok((row.try_get::<i64, _>("seq")?, version_from_row(row)?)))
            .collect::<Result<Vec<_>>>()?;
        let page = Page::from_rows(items, page.limit, |(seq, v)| Cursor {
            position: *seq,
            id: v.version.clone(),
        });
        Ok(page.map(|(_, v)| v))
    }

    async fn tool_version(&self, tool_id: &str, version: &str) -> Result<Option<VersionRecord>> {
        let row = sqlx::query("SELECT * FROM tool_versions WHERE tool_id = ? AND version = ?")
            .bind(tool_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn rollback_tool(
        &self,
        tool_id: &str,
        version: Option<&str>,
        now: i64,
    ) -> Result<RollbackOutcome> {
        let mut tx = self.begin_write().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT current_version FROM tools WHERE id = ?")
                .bind(tool_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(current) = current else {
            return Ok(RollbackOutcome::NoSuchTool);
        };
        let target: Option<String> = match version {
            Some(v) => {
                sqlx::query_scalar(
                    "SELECT version FROM tool_versions WHERE tool_id = ? AND version = ?",
                )
                .bind(tool_id)
                .bind(v)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_scalar(
                    "SELECT version FROM tool_versions WHERE tool_id = ?1
                   AND rowid < (SELECT rowid FROM tool_versions WHERE tool_id = ?1 AND version = ?2)
                 ORDER BY rowid DESC LIMIT 1",
                )
                .bind(tool_id)
                .bind(&current)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(target) = target else {
            return Ok(if version.is_some() {
                RollbackOutcome::NoSuchVersion
            } else {
                RollbackOutcome::NoEarlierVersion
            });
        };
        let row = sqlx::query(
            "UPDATE tools SET current_version = ?, updated_at = ? WHERE id = ? RETURNING *",
        )
        .bind(&target)
        .bind(now)
        .bind(tool_id)
        .fetch_one(&mut *tx)
        .await?;
        let tool = tool_from_row(&row)?;
        tx.commit().await?;
        Ok(RollbackOutcome::Done(Box::new(tool)))
    }

    async fn deprecate_tool(&self, tool_id: &str, now: i64) -> Result<Option<ToolRecord>> {
        let row = sqlx::query(
            "UPDATE tools SET status = 'deprecated', updated_at = ? WHERE id = ? RETURNING *",
        )
        .bind(now)
        .bind(tool_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(tool_from_row).transpose()
    }

    async fn write_executions(&self, records: &[ExecutionRecord]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut uses: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
        for record in records {
            let inserted = sqlx::query(
                "INSERT INTO execution_logs (id, tool_id, user_id, version, input_params, success, result,
                     error, error_type, execution_time_ms, triggered_by, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&record.id)
            .bind(&record.tool_id)
            .bind(&record.user_id)
            .bind(&record.version)
            .bind(serde_json::to_string(&record.input_params)?)
            .bind(record.success)
            .bind(record.result.as_ref().map(serde_json::to_string).transpose()?)
            .bind(&record.error)
            .bind(&record.error_type)
            .bind(record.execution_time_ms)
            .bind(&record.triggered_by)
            .bind(record.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                *uses.entry(record.tool_id.as_str()).or_default() += 1;
            }
        }
        for (tool_id, count) in &uses {
            sqlx::query("UPDATE tools SET usage_count = usage_count + ? WHERE id = ?")
                .bind(count)
                .bind(tool_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(uses.values().map(|n| *n as u64).sum())
    }

    async fn list_executions(
        &self,
        tool_id: &str,
        page: &PageRequest,
    ) -> Result<Page<ExecutionRecord>> {
        newest_first(
            &self.pool,
            "SELECT * FROM execution_logs WHERE tool_id = ?1",
            Some(tool_id),
            page,
            execution_from_row,
            |e| Cursor {
                position: e.created_at,
                id: e.id.clone(),
            },
        )
        .await
    }

    async fn find_tool(&self, user_id: &str, name: &str) -> Result<Option<RegisteredTool>> {
        let row = sqlx::query(&format!(
            "{REGISTERED_TOOL_SELECT} WHERE t.user_id = ? AND t.name = ?"
        ))
        .bind(user_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(registered_tool_from_row).transpose()
    }

    async fn user_tools(&self, user_id: &str, limit: u32) -> Result<Vec<RegisteredTool>> {
        let rows = sqlx::query(&format!(
            "{REGISTERED_TOOL_SELECT} WHERE t.user_id = ? AND t.status = 'registered'
             ORDER BY t.updated_at DESC, t.id DESC LIMIT ?"
        ))
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(registered_tool_from_row).collect()
    }

    async fn append_log(&self, log: NewGenerationLog) -> Result<()> {
        sqlx::query(
            "INSERT INTO generation_logs (id, session_id, job_id, requirement_index, phase, step,
                 level, message, prompt_sent, response_received, model_used, tokens_used,
                 code_executed, execution_result, execution_time_ms, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new_object_id())
        .bind(&log.session_id)
        .bind(&log.job_id)
        .bind(log.requirement_index.map(i64::from))
        .bind(&log.phase)
        .bind(&log.step)
        .bind(log.level.as_str())
        .bind(&log.message)
        .bind(&log.prompt_sent)
        .bind(&log.response_received)
        .bind(&log.model_used)
        .bind(log.tokens_used)
        .bind(&log.code_executed)
        .bind(
            log.execution_result
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?,
        )
        .bind(log.execution_time_ms)
        .bind(log.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_logs(
        &self,
        session_id: &str,
        page: &PageRequest,
    ) -> Result<Page<GenerationLogRecord>> {
        let after = page.after.as_ref().map(|c| c.position).unwrap_or(0);
        let rows = sqlx::query(
            "SELECT * FROM generation_logs WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(session_id)
        .bind(after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(log_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |l| Cursor {
            position: l.seq,
            id: l.id.clone(),
        }))
    }

    async fn cache_get(&self, key: &str) -> Result<Option<CachedCompletion>> {
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "UPDATE llm_cache SET hits = hits + 1 WHERE key = ?
             RETURNING model, content, prompt_tokens, completion_tokens",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(model, content, prompt_tokens, completion_tokens)| CachedCompletion {
                model,
                content,
                prompt_tokens,
                completion_tokens,
            },
        ))
    }

    async fn cache_put(&self, key: &str, completion: &CachedCompletion, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO llm_cache (key, model, content, prompt_tokens, completion_tokens, created_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(&completion.model)
        .bind(&completion.content)
        .bind(completion.prompt_tokens)
        .bind(completion.completion_tokens)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_llm_call(&self, call: &LlmCallRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO llm_calls (job_id, requirement_index, phase, model, prompt_tokens,
                 completion_tokens, cached, latency_ms, outcome, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&call.job_id)
        .bind(call.requirement_index.map(i64::from))
        .bind(&call.phase)
        .bind(&call.model)
        .bind(call.prompt_tokens)
        .bind(call.completion_tokens)
        .bind(call.cached)
        .bind(call.latency_ms)
        .bind(&call.outcome)
        .bind(call.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_usage(
        &self,
        job_id: &str,
        requirement_index: Option<u32>,
    ) -> Result<TokenUsage> {
        let (prompt, completion, cached, calls): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN cached = 0 THEN prompt_tokens ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN cached = 0 THEN completion_tokens ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN cached = 1 THEN prompt_tokens + completion_tokens ELSE 0 END), 0),
                    COUNT(*)
             FROM llm_calls WHERE job_id = ?1 AND (?2 IS NULL OR requirement_index = ?2)",
        )
        .bind(job_id)
        .bind(requirement_index.map(i64::from))
        .fetch_one(&self.pool)
        .await?;
        Ok(TokenUsage {
            prompt,
            completion,
            cached,
            calls,
        })
    }

    async fn append_conversation(
        &self,
        session_id: &str,
        job_id: &str,
        requirement_index: u32,
        messages: &[serde_json::Value],
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO agent_sessions (id, session_id, job_id, requirement_index, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (job_id, requirement_index) DO UPDATE SET updated_at = ?5",
        )
        .bind(new_object_id())
        .bind(session_id)
        .bind(job_id)
        .bind(i64::from(requirement_index))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id: String = sqlx::query_scalar(
            "SELECT id FROM agent_sessions WHERE job_id = ? AND requirement_index = ?",
        )
        .bind(job_id)
        .bind(i64::from(requirement_index))
        .fetch_one(&mut *tx)
        .await?;
        for message in messages {
            sqlx::query(
                "INSERT INTO agent_messages (agent_session_id, message, created_at) VALUES (?, ?, ?)",
            )
            .bind(&id)
            .bind(serde_json::to_string(message)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn conversation(
        &self,
        job_id: &str,
        requirement_index: u32,
    ) -> Result<Vec<serde_json::Value>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT m.message FROM agent_messages m
             JOIN agent_sessions s ON s.id = m.agent_session_id
             WHERE s.job_id = ? AND s.requirement_index = ?
             ORDER BY m.seq",
        )
        .bind(job_id)
        .bind(i64::from(requirement_index))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|m| serde_json::from_str(m).map_err(StoreError::from))
            .collect()
    }
}

/// The tag a generated tool gets from its specification: its kind (`toolType`: default,
/// api_caller, data_processing, file_manipulation).
fn kind_tag(draft: &crate::ToolDraft) -> Option<String> {
    draft
        .spec
        .as_ref()
        .and_then(|spec| spec["toolType"].as_str())
        .map(str::to_owned)
}

/// The version a new generation of `tool_id` registers as, and why: a major bump when its
/// interface breaks callers of the current version or of the newest one (the number counts
/// from the newest, so a minor bump claims compatibility with it), else a minor one. Counting
/// from the newest means a generation after a rollback never reuses a number.
async fn next_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    tool_id: &str,
    current: &str,
    draft: &crate::ToolDraft,
) -> Result<(String, String)> {
    let corrupt = |what: String| StoreError::Corrupt(format!("tool {tool_id}: {what}"));
    let versions: Vec<String> =
        sqlx::query_scalar("SELECT version FROM tool_versions WHERE tool_id = ?")
            .bind(tool_id)
            .fetch_all(&mut **tx)
            .await?;
    let newest = version::newest(versions.iter().map(String::as_str))
        .ok_or_else(|| corrupt("no version is MAJOR.MINOR.PATCH".to_owned()))?;
    let proposed = version::Interface {
        entry_point: &draft.entry_point,
        input_schema: &draft.input_schema,
        output_schema: &draft.output_schema,
    };
    let mut breaking = None;
    for (role, existing) in [("current", current), ("newest", newest)] {
        let (entry_point, input_schema, output_schema): (String, String, String) = sqlx::query_as(
            "SELECT entry_point, input_schema, output_schema FROM tool_versions
                 WHERE tool_id = ? AND version = ?",
        )
        .bind(tool_id)
        .bind(existing)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| corrupt(format!("{role} version {existing} is missing")))?;
        let (input_schema, output_schema): (Value, Value) = (
            serde_json::from_str(&input_schema)?,
            serde_json::from_str(&output_schema)?,
        );
        let old = version::Interface {
            entry_point: &entry_point,
            input_schema: &input_schema,
            output_schema: &output_schema,
        };
        if let Some(why) = version::incompatibility(&old, &proposed) {
            breaking = Some(format!("{why}, against {existing}"));
            break;
        }
    }
    let (kind, reason) = match breaking {
        Some(why) => (
            Bump::Major,
            format!("new generation with an incompatible interface ({why})"),
        ),
        None => (Bump::Minor, "new generation of an existing tool".to_owned()),
    };
    let next = bump(newest, kind).ok_or_else(|| corrupt(format!("version {newest:?}")))?;
    Ok((next, reason))
}
