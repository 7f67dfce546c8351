-- The LLM layer: a response cache and one row per call for token accounting.

-- Answers keyed by a hash of (model, messages, response format, temperature).
CREATE TABLE llm_cache (
    key               TEXT PRIMARY KEY,
    model             TEXT    NOT NULL,
    content           TEXT    NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    hits              INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);

-- Every call, answered by the endpoint or from the cache.
CREATE TABLE llm_calls (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id            TEXT,
    requirement_index INTEGER,
    phase             TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached            INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    outcome           TEXT    NOT NULL,
    created_at        INTEGER NOT NULL
);
CREATE INDEX llm_calls_by_job ON llm_calls (job_id, requirement_index);
