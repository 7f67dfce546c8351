//! Store errors. Callers branch on the variant; the cause of a database failure stays in
//! `#[source]` for the logs and never reaches an API client.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("could not open the database at {url}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "migration {version} ({name}) was changed after it was applied; add a new migration instead"
    )]
    MigrationEdited { version: i64, name: String },
    #[error(
        "the database has migration {version}, which this build does not know: it is newer than this binary"
    )]
    UnknownMigration { version: i64 },
    #[error("malformed pagination cursor")]
    InvalidCursor,
    #[error("the worker no longer holds the lease of job {job_id}")]
    LeaseLost { job_id: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH")]
    UnsupportedUrl(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}
