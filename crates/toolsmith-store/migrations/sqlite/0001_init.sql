-- Toolsmith's first schema. Never edit an applied migration: add a new file instead.
-- Timestamps are integer milliseconds since the Unix epoch; JSON columns hold text.

CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    user_id           TEXT    NOT NULL,
    session_id        TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    client_session_id TEXT,
    client_id         TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    deadline_at       INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    attempts          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_by_status ON jobs (status, created_at DESC, id DESC);

CREATE TABLE job_requirements (
    job_id        TEXT    NOT NULL REFERENCES jobs (id),
    idx           INTEGER NOT NULL,
    description   TEXT    NOT NULL,
    input         TEXT    NOT NULL,
    output        TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    current_phase TEXT,
    next_phase    TEXT    NOT NULL,
    progress      INTEGER NOT NULL DEFAULT 0,
    checkpoint    TEXT    NOT NULL DEFAULT '{}',
    tool_name     TEXT,
    tool_id       TEXT,
    tool_version  TEXT,
    error_code    TEXT,
    error_message TEXT,
    started_at    INTEGER,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (job_id, idx)
);

-- Seed 002 `sessions`: one per job, tracking the workflow.
CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    job_id            TEXT    NOT NULL UNIQUE REFERENCES jobs (id),
    user_id           TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    current_phase     TEXT,
    progress          INTEGER NOT NULL DEFAULT 0,
    tool_ids          TEXT    NOT NULL DEFAULT '[]',
    tool_requirements TEXT    NOT NULL,
    client_session_id TEXT,
    client_id         TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC, id DESC);
CREATE INDEX sessions_by_status ON sessions (status, created_at DESC, id DESC);

-- Seed 002 `tools`; versions are immutable rows of `tool_versions`.
CREATE TABLE tools (
    id              TEXT PRIMARY KEY,
    user_id         TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    current_version TEXT    NOT NULL,
    tags            TEXT    NOT NULL DEFAULT '[]',
    quality_score   REAL    NOT NULL DEFAULT 1.0,
    usage_count     INTEGER NOT NULL DEFAULT 0,
    session_id      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE tool_versions (
    tool_id           TEXT    NOT NULL REFERENCES tools (id),
    version           TEXT    NOT NULL,
    code              TEXT    NOT NULL,
    sha256            TEXT    NOT NULL,
    entry_point       TEXT    NOT NULL,
    input_schema      TEXT    NOT NULL DEFAULT '{}',
    output_schema     TEXT    NOT NULL DEFAULT '{}',
    dependencies      TEXT    NOT NULL DEFAULT '[]',
    test_code         TEXT,
    test_cases        TEXT    NOT NULL DEFAULT '[]',
    spec              TEXT,
    plan              TEXT,
    job_id            TEXT,
    session_id        TEXT,
    requirement_index INTEGER,
    model             TEXT,
    change_reason     TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (tool_id, version)
);
-- A requirement of a job registers at most one version: a resumed job cannot duplicate it.
CREATE UNIQUE INDEX tool_versions_by_requirement
    ON tool_versions (job_id, requirement_index) WHERE job_id IS NOT NULL;

-- Seed 002 `agent_sessions`: the LLM conversation of each requirement (its messages are rows
-- of `agent_messages`, so appending one never rewrites the others).
CREATE TABLE agent_sessions (
    id                TEXT PRIMARY KEY,
    session_id        TEXT    NOT NULL,
    job_id            TEXT    NOT NULL,
    requirement_index INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (job_id, requirement_index)
);

CREATE TABLE agent_messages (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_session_id TEXT    NOT NULL REFERENCES agent_sessions (id),
    message          TEXT    NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX agent_messages_by_session ON agent_messages (agent_session_id, seq);

-- Seed 000 `ToolGenerationLog`.
CREATE TABLE generation_logs (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    session_id        TEXT    NOT NULL,
    job_id            TEXT    NOT NULL,
    requirement_index INTEGER,
    phase             TEXT    NOT NULL,
    step              TEXT,
    level             TEXT    NOT NULL,
    message           TEXT    NOT NULL,
    prompt_sent       TEXT,
    response_received TEXT,
    model_used        TEXT,
    tokens_used       INTEGER,
    code_executed     TEXT,
    execution_result  TEXT,
    execution_time_ms INTEGER,
    created_at        INTEGER NOT NULL
);
CREATE INDEX generation_logs_by_session ON generation_logs (session_id, seq);

-- Seed 000 `ToolExecutionLog`.
CREATE TABLE execution_logs (
    id                TEXT PRIMARY KEY,
    tool_id           TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    version           TEXT,
    input_params      TEXT,
    success           INTEGER NOT NULL,
    result            TEXT,
    error             TEXT,
    error_type        TEXT,
    execution_time_ms INTEGER,
    triggered_by      TEXT,
    created_at        INTEGER NOT NULL
);
CREATE INDEX execution_logs_by_tool ON execution_logs (tool_id, created_at DESC);

-- Seed 000 `ToolHealthReport`.
CREATE TABLE health_reports (
    id                  TEXT PRIMARY KEY,
    tool_id             TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    health_score        INTEGER NOT NULL,
    issues_detected     TEXT    NOT NULL DEFAULT '[]',
    error_patterns      TEXT,
    suggested_fixes     TEXT,
    root_cause_analysis TEXT,
    healing_attempted   INTEGER NOT NULL DEFAULT 0,
    healing_success     INTEGER,
    healed_code         TEXT,
    healing_log         TEXT,
    recent_success_rate REAL,
    recent_error_count  INTEGER NOT NULL DEFAULT 0,
    recent_usage_count  INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL
);
CREATE INDEX health_reports_by_tool ON health_reports (tool_id, created_at DESC);
