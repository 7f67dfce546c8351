//! [`Llm`]: what the workflow calls. Around a [`ChatModel`] it adds the response cache, the
//! per-job token budget, token accounting, generation logs and conversations, and structured
//! output with its fallbacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use toolsmith_domain::ids::to_hex;
use toolsmith_domain::time::now_ms;
use toolsmith_store::{
    CachedCompletion, LlmCallRecord, LogLevel, NewGenerationLog, Store, TokenUsage,
};

use crate::json::{extract_json, validate};
use crate::schemas::StructuredPhase;
use crate::types::{ChatRequest, ChatResponse, Message, ResponseFormat, Usage};
use crate::{ChatModel, LlmError};

#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub model: String,
    /// Used for plans estimated `low` complexity, when set.
    pub simple_model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Tokens (prompt + completion, cache hits excluded) one job may spend.
    pub job_token_budget: Option<i64>,
}

impl LlmSettings {
    pub fn new(model: impl Into<String>) -> Self {
        LlmSettings {
            model: model.into(),
            simple_model: None,
            temperature: Some(0.2),
            max_tokens: None,
            job_token_budget: None,
        }
    }
}

/// Who a call is for: accounting, budget, logs and the conversation hang off it.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub job_id: Option<String>,
    pub session_id: Option<String>,
    pub requirement_index: Option<u32>,
    /// Overrides the configured model (see [`Llm::model_for_complexity`]).
    pub model: Option<String>,
}

/// How structured answers are requested; an endpoint that rejects one mode is asked in the
/// next, and the mode that worked is kept for the following calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatMode {
    JsonSchema = 0,
    JsonObject = 1,
    Text = 2,
}

impl FormatMode {
    fn from_u8(v: u8) -> FormatMode {
        match v {
            0 => FormatMode::JsonSchema,
            1 => FormatMode::JsonObject,
            _ => FormatMode::Text,
        }
    }

    fn next(self) -> Option<FormatMode> {
        match self {
            FormatMode::JsonSchema => Some(FormatMode::JsonObject),
            FormatMode::JsonObject => Some(FormatMode::Text),
            FormatMode::Text => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StructuredReply {
    pub value: Value,
    pub model: String,
    /// Tokens of this answer (all calls, repair included).
    pub usage: Usage,
    /// Answered from the cache: no HTTP call was made.
    pub cached: bool,
}

pub struct Llm {
    model: Arc<dyn ChatModel>,
    store: Arc<dyn Store>,
    settings: LlmSettings,
    mode: AtomicU8,
}

/// The cache key: a hash of everything that determines an answer.
pub fn cache_key(request: &ChatRequest) -> String {
    let format = match &request.response_format {
        ResponseFormat::Text => json!("text"),
        ResponseFormat::JsonObject => json!("json_object"),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => json!({"name": name, "schema": schema, "strict": strict}),
    };
    let canonical = json!({
        "model": request.model,
        "messages": request.messages,
        "format": format,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    });
    to_hex(&Sha256::digest(canonical.to_string().as_bytes()))
}

/// A marker the mock server (and people reading logs) can match when the phase is not in
/// `response_format` (JSON object and text modes).
pub const PHASE_MARKER: &str = "toolsmith-phase:";

impl Llm {
    pub fn new(model: Arc<dyn ChatModel>, store: Arc<dyn Store>, settings: LlmSettings) -> Self {
        Llm {
            model,
            store,
            settings,
            mode: AtomicU8::new(FormatMode::JsonSchema as u8),
        }
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// The format mode structured calls start in.
    pub fn format_mode(&self) -> FormatMode {
        FormatMode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    /// The cheaper model for a `low` complexity plan when one is configured.
    pub fn model_for_complexity(&self, complexity: &str) -> &str {
        match (&self.settings.simple_model, complexity) {
            (Some(simple), "low") => simple,
            _ => &self.settings.model,
        }
    }

    pub async fn usage(
        &self,
        job_id: &str,
        requirement_index: Option<u32>,
    ) -> Result<TokenUsage, LlmError> {
        self.store
            .token_usage(job_id, requirement_index)
            .await
            .map_err(|err| LlmError::InvalidResponse(format!("could not read token usage: {err}")))
    }

    fn request(
        &self,
        ctx: &CallContext,
        messages: Vec<Message>,
        format: ResponseFormat,
    ) -> ChatRequest {
        ChatRequest {
            model: ctx
                .model
                .clone()
                .unwrap_or_else(|| self.settings.model.clone()),
            messages,
            temperature: self.settings.temperature,
            max_tokens: self.settings.max_tokens,
            response_format: format,
        }
    }

    /// A free-text completion (cached, accounted, logged like the structured ones).
    pub async fn complete_text(
        &self,
        ctx: &CallContext,
        phase: &str,
        messages: Vec<Message>,
    ) -> Result<ChatResponse, LlmError> {
        let request = self.request(ctx, messages, ResponseFormat::Text);
        let key = cache_key(&request);
        if let Some(hit) = self.cache_get(&key).await {
            let response = ChatResponse {
                content: hit.content,
                finish_reason: "stop".to_owned(),
                usage: Usage {
                    prompt_tokens: hit.prompt_tokens,
                    completion_tokens: hit.completion_tokens,
                },
                model: hit.model,
            };
            self.account(ctx, phase, &request, Ok(&response), true, 0)
                .await;
            return Ok(response);
        }
        let response = self.call(ctx, phase, &request).await?;
        self.cache_put(&key, &response).await;
        Ok(response)
    }

    /// A structured answer for `phase`, validated against its schema.
    pub async fn complete_structured(
        &self,
        ctx: &CallContext,
        phase: StructuredPhase,
        messages: Vec<Message>,
    ) -> Result<StructuredReply, LlmError> {
        let schema = phase.schema();
        // The cache key is the schema-mode request, whichever mode ends up answering.
        let canonical = self.request(ctx, messages.clone(), schema_format(phase, &schema));
        let key = cache_key(&canonical);
        if let Some(hit) = self.cache_get(&key).await
            && let Ok(value) = extract_json(&hit.content)
            && validate(&schema, &value).is_ok()
        {
            let response = ChatResponse {
                content: hit.content.clone(),
                finish_reason: "stop".to_owned(),
                usage: Usage {
                    prompt_tokens: hit.prompt_tokens,
                    completion_tokens: hit.completion_tokens,
                },
                model: hit.model.clone(),
            };
            self.account(ctx, phase.name(), &canonical, Ok(&response), true, 0)
                .await;
            return Ok(StructuredReply {
                value,
                model: hit.model,
                usage: response.usage,
                cached: true,
            });
        }

        let (request, response) = self
            .call_in_some_mode(ctx, phase, &schema, &messages)
            .await?;
        let mut usage = response.usage;
        let checked = extract_json(&response.content)
            .map_err(|e| vec![e])
            .and_then(|value| validate(&schema, &value).map(|()| value));
        let (value, model) = match checked {
            Ok(value) => (value, response.model),
            Err(errors) => {
                let errors = errors.join("; ");
                tracing::info!(phase = phase.name(), %errors, "invalid structured answer; asking for a repair");
                let mut repair = request.clone();
                repair
                    .messages
                    .push(Message::assistant(response.content.clone()));
                repair.messages.push(Message::user(format!(
                    "Your answer is not valid for the `{}` schema: {errors}\nReply again with only the corrected JSON object, nothing else.",
                    phase.name()
                )));
                let fixed = self
                    .call(ctx, &format!("{}:repair", phase.name()), &repair)
                    .await?;
                usage.prompt_tokens += fixed.usage.prompt_tokens;
                usage.completion_tokens += fixed.usage.completion_tokens;
                let value = extract_json(&fixed.content)
                    .map_err(|e| vec![e])
                    .and_then(|value| validate(&schema, &value).map(|()| value))
                    .map_err(|errors| LlmError::InvalidOutput {
                        phase: phase.name().to_owned(),
                        errors: errors.join("; "),
                    })?;
                (value, fixed.model)
            }
        };
        self.cache_put(
            &key,
            &ChatResponse {
                content: value.to_string(),
                finish_reason: "stop".to_owned(),
                usage,
                model: model.clone(),
            },
        )
        .await;
        Ok(StructuredReply {
            value,
            model,
            usage,
            cached: false,
        })
    }

    /// Calls in the current format mode, stepping down (schema → object → text) when the
    /// endpoint rejects the request as malformed, and remembering the mode that worked.
    async fn call_in_some_mode(
        &self,
        ctx: &CallContext,
        phase: StructuredPhase,
        schema: &Value,
        messages: &[Message],
    ) -> Result<(ChatRequest, ChatResponse), LlmError> {
        let mut mode = self.format_mode();
        loop {
            let request = self.request(
                ctx,
                with_format_instructions(mode, phase, schema, messages),
                match mode {
                    FormatMode::JsonSchema => schema_format(phase, schema),
                    FormatMode::JsonObject => ResponseFormat::JsonObject,
                    FormatMode::Text => ResponseFormat::Text,
                },
            );
            match self.call(ctx, phase.name(), &request).await {
                Ok(response) => {
                    self.mode.store(mode as u8, Ordering::Relaxed);
                    return Ok((request, response));
                }
                Err(LlmError::Http {
                    status: 400 | 422,
                    message,
                }) if mode.next().is_some() => {
                    let next = mode.next().unwrap_or(FormatMode::Text);
                    tracing::warn!(endpoint = %self.model.endpoint(), ?mode, ?next, %message,
                        "the endpoint rejected the structured-output request; falling back");
                    self.log(
                        ctx,
                        phase.name(),
                        "llm-format-fallback",
                        LogLevel::Warn,
                        format!("the endpoint rejected {mode:?} ({message}); trying {next:?}"),
                        None,
                        None,
                    )
                    .await;
                    mode = next;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// One call to the model: budget first, then accounting, log and conversation.
    async fn call(
        &self,
        ctx: &CallContext,
        phase: &str,
        request: &ChatRequest,
    ) -> Result<ChatResponse, LlmError> {
        if let (Some(budget), Some(job_id)) = (self.settings.job_token_budget, &ctx.job_id) {
            let used = self.usage(job_id, None).await?.paid();
            if used >= budget {
                let err = LlmError::BudgetExhausted { used, budget };
                self.log(
                    ctx,
                    phase,
                    "llm-budget",
                    LogLevel::Error,
                    err.to_string(),
                    None,
                    None,
                )
                .await;
                return Err(err);
            }
        }
        let started = Instant::now();
        let result = self.model.complete(request).await;
        let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.account(ctx, phase, request, result.as_ref(), false, latency)
            .await;
        result
    }

    async fn account(
        &self,
        ctx: &CallContext,
        phase: &str,
        request: &ChatRequest,
        result: Result<&ChatResponse, &LlmError>,
        cached: bool,
        latency_ms: i64,
    ) {
        let (usage, outcome, model) = match result {
            Ok(r) => (r.usage, "ok".to_owned(), r.model.clone()),
            Err(e) => (
                Usage::default(),
                e.code().as_str().to_owned(),
                request.model.clone(),
            ),
        };
        let record = LlmCallRecord {
            job_id: ctx.job_id.clone(),
            requirement_index: ctx.requirement_index,
            phase: phase.to_owned(),
            model: model.clone(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached,
            latency_ms,
            outcome,
            created_at: now_ms(),
        };
        if let Err(err) = self.store.record_llm_call(&record).await {
            tracing::warn!(error = %err, "could not record an LLM call");
        }
        let prompt = serde_json::to_string_pretty(&request.messages).unwrap_or_default();
        let (step, level, message, response) = match result {
            Ok(r) if cached => (
                "llm-cache-hit",
                LogLevel::Info,
                format!(
                    "answered from the cache ({} tokens not spent)",
                    usage.total()
                ),
                Some(r.content.clone()),
            ),
            Ok(r) => (
                "llm-call",
                LogLevel::Info,
                format!(
                    "{model} answered in {latency_ms} ms ({} prompt + {} completion tokens)",
                    usage.prompt_tokens, usage.completion_tokens
                ),
                Some(r.content.clone()),
            ),
            Err(e) => ("llm-call", LogLevel::Error, e.to_string(), None),
        };
        let entry = NewGenerationLog {
            phase: phase.to_owned(),
            step: Some(step.to_owned()),
            level,
            message,
            prompt_sent: Some(prompt),
            response_received: response.clone(),
            model_used: Some(model),
            tokens_used: Some(usage.total()),
            execution_time_ms: Some(latency_ms),
            ..NewGenerationLog::default()
        };
        self.write_log(ctx, entry).await;
        if let (Some(session_id), Some(job_id), Some(index), Some(content)) = (
            &ctx.session_id,
            &ctx.job_id,
            ctx.requirement_index,
            response,
        ) {
            let mut messages: Vec<Value> = request
                .messages
                .iter()
                .map(|m| json!({"role": m.role, "content": m.content, "phase": phase}))
                .collect();
            messages.push(
                json!({"role": "assistant", "content": content, "phase": phase, "cached": cached}),
            );
            if let Err(err) = self
                .store
                .append_conversation(session_id, job_id, index, &messages, now_ms())
                .await
            {
                tracing::warn!(error = %err, "could not record the conversation");
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self,
        ctx: &CallContext,
        phase: &str,
        step: &str,
        level: LogLevel,
        message: String,
        prompt: Option<String>,
        response: Option<String>,
    ) {
        self.write_log(
            ctx,
            NewGenerationLog {
                phase: phase.to_owned(),
                step: Some(step.to_owned()),
                level,
                message,
                prompt_sent: prompt,
                response_received: response,
                ..NewGenerationLog::default()
            },
        )
        .await;
    }

    async fn write_log(&self, ctx: &CallContext, mut entry: NewGenerationLog) {
        let (Some(session_id), Some(job_id)) = (&ctx.session_id, &ctx.job_id) else {
            return;
        };
        entry.session_id.clone_from(session_id);
        entry.job_id.clone_from(job_id);
        entry.requirement_index = ctx.requirement_index;
        entry.created_at = now_ms();
        if let Err(err) = self.store.append_log(entry).await {
            tracing::warn!(error = %err, "could not write a generation log");
        }
    }

    async fn cache_get(&self, key: &str) -> Option<CachedCompletion> {
        match self.store.cache_get(key).await {
            Ok(hit) => hit,
            Err(err) => {
                tracing::warn!(error = %err, "the LLM cache could not be read; calling the endpoint");
                None
            }
        }
    }

    async fn cache_put(&self, key: &str, response: &ChatResponse) {
        let completion = CachedCompletion {
            model: response.model.clone(),
            content: response.content.clone(),
            prompt_tokens: response.usage.prompt_tokens,
            completion_tokens: response.usage.completion_tokens,
        };
        if let Err(err) = self.store.cache_put(key, &completion, now_ms()).await {
            tracing::warn!(error = %err, "could not cache an LLM answer");
        }
    }
}

fn schema_format(phase: StructuredPhase, schema: &Value) -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: phase.name().to_owned(),
        schema: schema.clone(),
        strict: false,
    }
}

/// Without `json_schema`, the schema and the phase go into the prompt.
fn with_format_instructions(
    mode: FormatMode,
    phase: StructuredPhase,
    schema: &Value,
    messages: &[Message],
) -> Vec<Message> {
    let mut out = messages.to_vec();
    if mode != FormatMode::JsonSchema {
        out.insert(0, Message::system(format!(
            "{PHASE_MARKER} {}\nAnswer with a single JSON object, and nothing else, that validates against this JSON Schema:\n{}",
            phase.name(),
            schema
        )));
    }
    out
}
