//! The Responses API's wire format: the `response` object, and its stream of typed events
//! (`event: <type>` and `data:` with the same `type` and a `sequence_number`):
//! `response.created`, `response.in_progress`, `response.output_item.added`,
//! `response.content_part.added`, one `response.output_text.delta` per piece of answer,
//! `response.output_text.done`, `response.content_part.done`,
//! `response.output_item.done`, then `response.completed` (or `response.incomplete` when
//! cut short); a model failing mid-stream sends `error` and `response.failed`.
//! `: keep-alive` comments are sent while the model is silent. There is no `[DONE]`.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use refbook_core::chat::{
    citations_in, CompletionEvent, CompletionStream, FinishReason, ResponseDraft, ResponseOutcome,
    Source, StoredResponse, TokenUsage,
};
use refbook_core::{Error, Language};
use serde_json::{json, Value};

use crate::app::App;
use crate::body::Body;
use crate::frame_pump::{event_stream, FrameWriter, Frames};
use crate::responses_request::Echoed;

/// What every shape of one response shares.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    /// `resp_…`.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The model's canonical name.
    pub model: String,
    /// The request's instructions.
    pub instructions: Option<String>,
    /// The response it follows.
    pub previous_id: Option<String>,
    /// Whether it is kept.
    pub store: bool,
    /// What the request set.
    pub echoed: Echoed,
}

impl ResponseMeta {
    /// The shape of a response just started.
    pub fn of_draft(draft: &ResponseDraft, echoed: Echoed) -> Self {
        Self {
            id: draft.id.clone(),
            created_at: draft.created_at.unix_seconds(),
            model: draft.model.clone(),
            instructions: draft.instructions.clone(),
            previous_id: draft.previous_id.clone(),
            store: draft.store,
            echoed,
        }
    }

    /// The shape of a kept response.
    pub fn of_kept(kept: &StoredResponse) -> Self {
        Self {
            id: kept.id.clone(),
            created_at: kept.created_at.unix_seconds(),
            model: kept.model.clone(),
            instructions: kept.instructions.clone(),
            previous_id: kept.previous_id.clone(),
            store: true,
            echoed: Echoed::default(),
        }
    }

    /// The id of the response's one output message.
    fn message_id(&self) -> String {
        format!("msg_{}", self.id.trim_start_matches("resp_"))
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

fn message_item(meta: &ResponseMeta, status: &str, text: Option<&str>) -> Value {
    let content: Vec<Value> = text.map(text_part).into_iter().collect();
    json!({"type": "message", "id": meta.message_id(), "status": status,
           "role": "assistant", "content": content})
}

fn usage_object(usage: &TokenUsage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    })
}

/// How a response stands, for its object.
pub struct Standing<'a> {
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: &'a str,
    /// The answer so far (`None`: no output item yet).
    pub text: Option<&'a str>,
    /// The tokens used, once known.
    pub usage: Option<&'a TokenUsage>,
    /// The passages the model was given.
    pub sources: &'a [Source],
    /// The error of a failed response.
    pub error: Option<Value>,
}

/// The `response` object.
pub fn response_object(meta: &ResponseMeta, standing: &Standing<'_>) -> Value {
    let item_status = match standing.status {
        "in_progress" => "in_progress",
        "completed" => "completed",
        _ => "incomplete",
    };
    let output: Vec<Value> = standing
        .text
        .map(|text| message_item(meta, item_status, Some(text)))
        .into_iter()
        .collect();
    let incomplete =
        (standing.status == "incomplete").then(|| json!({"reason": "max_output_tokens"}));
    let mut object = json!({
        "id": meta.id,
        "object": "response",
        "created_at": meta.created_at,
        "status": standing.status,
        "model": meta.model,
        "output": output,
        "instructions": meta.instructions,
        "previous_response_id": meta.previous_id,
        "store": meta.store,
        "max_output_tokens": meta.echoed.max_output_tokens,
        "temperature": meta.echoed.temperature,
        "top_p": meta.echoed.top_p,
        "error": standing.error,
        "incomplete_details": incomplete,
        "parallel_tool_calls": false,
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "metadata": {},
        "usage": standing.usage.map(usage_object),
    });
    if !standing.sources.is_empty() {
        object["sources"] = json!(standing.sources);
        object["citations"] = json!(citations_in(
            standing.text.unwrap_or(""),
            standing.sources.len()
        ));
    }
    object
}

/// A kept response as `GET /v1/responses/{id}` answers it.
pub fn kept_object(kept: &StoredResponse) -> Value {
    response_object(
        &ResponseMeta::of_kept(kept),
        &Standing {
            status: &kept.status,
            text: Some(&kept.output),
            usage: Some(&kept.usage),
            sources: &kept.sources,
            error: None,
        },
    )
}

/// What keeping a response needs, and how it ended.
pub struct Finished {
    /// The answer.
    pub text: String,
    /// Cut short by the token or byte cap.
    pub incomplete: bool,
    /// The tokens used.
    pub usage: TokenUsage,
}

/// Keeps a finished response (when asked to); a failure to keep it is logged, the answer
/// still goes out.
pub async fn keep(app: &App, draft: ResponseDraft, finished: &Finished, sources: &[Source]) {
    let outcome = ResponseOutcome {
        output: finished.text.clone(),
        incomplete: finished.incomplete,
        usage: finished.usage,
        sources: sources.to_vec(),
    };
    if let Err(err) = app
        .refbook()
        .answering()
        .keep_response(draft, outcome)
        .await
    {
        tracing::error!(error = %err, "keeping a response failed");
    }
}

struct Streaming {
    app: App,
    meta: ResponseMeta,
    draft: Option<ResponseDraft>,
    sources: Vec<Source>,
    finished: Finished,
    language: Language,
    sequence: u64,
    frames: Frames,
}

impl Streaming {
    fn event(&mut self, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        self.frames
            .pending
            .push_back(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")));
    }

    fn standing(&self, status: &'static str, text: Option<bool>) -> Value {
        response_object(
            &self.meta,
            &Standing {
                status,
                text: text.map(|_| self.finished.text.as_str()),
                usage: (status != "in_progress").then_some(&self.finished.usage),
                sources: &self.sources,
                error: None,
            },
        )
    }

    fn start(&mut self) {
        let created = self.standing("in_progress", None);
        self.event("response.created", json!({"response": created}));
        let progress = self.standing("in_progress", None);
        self.event("response.in_progress", json!({"response": progress}));
        let item = message_item(&self.meta, "in_progress", None);
        self.event(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        );
        let part = text_part("");
        let item_id = self.meta.message_id();
        self.event(
            "response.content_part.added",
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": part}),
        );
    }

    /// The closing events, once the answer is kept.
    fn finish(&mut self) {
        let item_id = self.meta.message_id();
        let text = self.finished.text.clone();
        self.event(
            "response.output_text.done",
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "text": text}),
        );
        self.event(
            "response.content_part.done",
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": text_part(&text)}),
        );
        let (status, kind) = if self.finished.incomplete {
            ("incomplete", "response.incomplete")
        } else {
            ("completed", "response.completed")
        };
        let item = message_item(
            &self.meta,
            if self.finished.incomplete {
                "incomplete"
            } else {
                "completed"
            },
            Some(&text),
        );
        self.event(
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        );
        let response = self.standing(status, Some(true));
        self.event(kind, json!({"response": response}));
        self.frames.ended = true;
    }

    fn fail(&mut self, err: &Error) {
        let error = crate::openai_wire::model_error(err, self.language)["error"].clone();
        self.event(
            "error",
            json!({"code": error["code"], "message": error["message"], "param": null}),
        );
        let mut response = self.standing("failed", Some(true));
        response["error"] = json!({"code": error["code"], "message": error["message"]});
        self.event("response.failed", json!({"response": response}));
        self.frames.ended = true;
    }
}

impl FrameWriter for Streaming {
    fn frames(&mut self) -> &mut Frames {
        &mut self.frames
    }

    async fn write(
        &mut self,
        event: Option<Result<CompletionEvent, Error>>,
        events: &mut CompletionStream,
    ) {
        match event {
            Some(Ok(CompletionEvent::Content(delta))) => {
                self.finished.text.push_str(&delta);
                let item_id = self.meta.message_id();
                self.event(
                    "response.output_text.delta",
                    json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": delta}),
                );
            }
            // No tools pass through on this face.
            Some(Ok(CompletionEvent::Reasoning(_) | CompletionEvent::ToolCall(_))) => {}
            Some(Ok(CompletionEvent::Finish(reason))) => {
                self.finished.incomplete = reason == FinishReason::Length;
            }
            Some(Ok(CompletionEvent::Usage(usage))) => self.finished.usage = usage,
            Some(Err(err)) => self.fail(&err),
            None => {
                // The tokens count, and the response is kept, before it is said done.
                events.record_usage().await;
                if let Some(draft) = self.draft.take() {
                    keep(&self.app, draft, &self.finished, &self.sources).await;
                }
                self.finish();
            }
        }
    }
}

/// What a streamed response is written from.
pub struct StreamParts {
    /// The server (to keep the response when it ends).
    pub app: App,
    /// The response's shape.
    pub meta: ResponseMeta,
    /// What keeping it needs.
    pub draft: ResponseDraft,
    /// The model's events.
    pub events: CompletionStream,
    /// The passages the model was given.
    pub sources: Vec<Source>,
    /// The language of errors.
    pub language: Language,
}

/// A `200` SSE response streaming the Responses API's events.
pub fn stream_response(parts: StreamParts) -> Response<Body> {
    let keep_alive = Duration::from_secs(parts.app.settings().sse_keepalive_secs.max(1));
    let open = parts.app.metrics().stream_opened();
    let mut state = Streaming {
        app: parts.app,
        meta: parts.meta,
        draft: Some(parts.draft),
        sources: parts.sources,
        finished: Finished {
            text: String::new(),
            incomplete: false,
            usage: TokenUsage::default(),
        },
        language: parts.language,
        sequence: 0,
        frames: Frames::default(),
    };
    state.start();
    event_stream(state, parts.events, keep_alive, open)
}
