//! The OpenAI-compatible face, driven by a real OpenAI client library (`async-openai`):
//! books as models, completions streamed and not, with a persona and usage; the client's
//! own error types for an unknown book, a wrong or revoked key, quota and rate limits.
//! The wire details a typed client cannot see (reasoning, error chunks) are read raw.

use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestUserMessageArgs,
    ChatCompletionStreamOptions, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    FinishReason,
};
use async_openai::Client;
use futures::StreamExt;
use refbook_core::backend_tests;
use refbook_core::testing::{MockReply, Step, TestDatabase};
use serde_json::{json, Value};

use crate::api_keys::{create_key, key_of};
use crate::helpers::{spawn_app, spawn_app_with, token, TestApp, SANTI};
use refbook_core::testing::book_sources::no_source_has_it;

/// An unchanged OpenAI client pointed at the server's `/v1` with `key`.
pub(crate) fn openai(app: &TestApp, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(app.url("/v1"))
            .with_api_key(key),
    )
}

/// A user with 三体 stored and talked about, and a personal API key: `(access token, key)`.
pub(crate) async fn reader_with_key(app: &TestApp, username: &str) -> (String, String) {
    let (t, _) = app.user_with_conversation(username).await;
    let key = key_of(&create_key(app, &t, "sdk").await).to_owned();
    (t, key)
}

pub(crate) fn question(model: &str, text: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(text)
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap()
}

/// The HTTP status and OpenAI error of a failed call.
#[track_caller]
pub(crate) fn api_error(err: OpenAIError) -> (u16, async_openai::error::ApiError) {
    match err {
        OpenAIError::ApiError(response) => (response.status_code.as_u16(), response.api_error),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn an_openai_client_talks_with_a_book(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.llm.max_tokens = 2000).await;
    let (t, key) = reader_with_key(&app, "sdk_reader").await;
    let client = openai(&app, &key);

    // Models: the books the reader talked about; any book by ISBN and persona.
    let models = client.models().list().await.unwrap();
    let ids: Vec<&str> = models.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [SANTI.to_owned(), format!("{SANTI}@author")]);
    assert_eq!(models.data[0].owned_by, "refbook");
    let one = client
        .models()
        .retrieve("978-7-5366-9293-0@author")
        .await
        .unwrap();
    assert_eq!(one.id, format!("{SANTI}@author"));

    // Not streamed, as the author, with the reader's own instructions and sampling.
    app.llm.push(MockReply::answer(
        &["回忆写作"],
        &["我写三体", "是为了……"],
        Duration::ZERO,
    ));
    let request = CreateChatCompletionRequestArgs::default()
        .model(format!("{SANTI}@author"))
        .messages([
            ChatCompletionRequestSystemMessageArgs::default()
                .content("请用一句话回答。")
                .build()
                .unwrap()
                .into(),
            ChatCompletionRequestUserMessageArgs::default()
                .content("你为什么写这本书？")
                .build()
                .unwrap()
                .into(),
        ])
        .max_completion_tokens(100_000u32)
        .temperature(0.3)
        .top_p(0.9)
        .stop("###")
        .user("someone-else")
        .build()
        .unwrap();
    let answer = client.chat().create(request).await.unwrap();
    assert_eq!(answer.object, "chat.completion");
    assert_eq!(answer.model, format!("{SANTI}@author"));
    assert!(answer.id.starts_with("chatcmpl-"));
    let choice = &answer.choices[0];
    assert_eq!(choice.message.content.as_deref(), Some("我写三体是为了……"));
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    let usage = answer.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (120, 48, 168)
    );
    let sent = app.llm.requests().pop().unwrap();
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap();
    assert!(
        system.contains("《三体》的作者"),
        "the author persona: {system}"
    );
    assert!(
        system.find("书目信息").unwrap() < system.find("请用一句话回答。").unwrap(),
        "the book's prompt first, the reader's instructions after: {system}"
    );
    assert_eq!(
        messages.len(),
        2,
        "the client's system message is folded in"
    );
    assert_eq!(messages[1]["content"], "你为什么写这本书？");
    assert_eq!(sent["max_tokens"], 2000, "capped by the server's maximum");
    assert_eq!(sent["stop"], json!(["###"]));
    assert!((sent["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    assert!((sent["top_p"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(
        sent["user"],
        app.get("/api/auth/me/", Some(&t)).await.body["id"].to_string()
    );

    // Streamed, with usage in a last chunk without choices.
    app.llm.push(MockReply::answer(
        &["想"],
        &["刘慈欣", "写的"],
        Duration::from_millis(5),
    ));
    let mut request = question(SANTI, "谁写的？");
    request.stream = Some(true);
    request.stream_options = Some(ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
    });
    let mut stream = client.chat().create_stream(request).await.unwrap();
    let (mut text, mut finish, mut usage, mut chunks) = (String::new(), None, None, 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        chunks += 1;
        assert_eq!(chunk.object, "chat.completion.chunk");
        assert_eq!(chunk.model, SANTI);
        if let Some(u) = chunk.usage {
            assert!(
                chunk.choices.is_empty(),
                "usage comes in its own last chunk"
            );
            usage = Some(u);
            continue;
        }
        for choice in chunk.choices {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
            finish = finish.or(choice.finish_reason);
        }
    }
    assert_eq!(text, "刘慈欣写的");
    assert_eq!(finish, Some(FinishReason::Stop));
    assert_eq!(usage.map(|u| u.total_tokens), Some(168));
    assert!(chunks >= 4, "role, pieces, finish, usage: {chunks}");

    // Usage counts toward the quota; nothing is stored as a conversation.
    let profile = app.get("/api/user/profile/", Some(&t)).await;
    assert_eq!(profile.body["usage"]["used_tokens"], 2 * 168);
    let conversations = app.get("/api/conversations/", Some(&t)).await;
    assert_eq!(conversations.body["count"], 1);
    assert_eq!(
        conversations.body["results"][0]["message_count"], 0,
        "{}",
        conversations.text
    );
}

async fn an_openai_client_gets_its_own_errors(db: TestDatabase) {
    let app = spawn_app(db).await;
    no_source_has_it(&app.books).await;
    let (t, key) = reader_with_key(&app, "sdk_errors").await;
    let client = openai(&app, &key);

    // Unknown book, nonsense model, unknown persona: 404 model_not_found.
    for model in ["9780000000002", "gpt-4o", "9787536692930@nobody"] {
        let err = client
            .chat()
            .create(question(model, "你好"))
            .await
            .unwrap_err();
        let (status, error) = api_error(err);
        assert_eq!(status, 404, "{model}: {error:?}");
        assert_eq!(error.code.as_deref(), Some("model_not_found"), "{model}");
        assert_eq!(error.param.as_deref(), Some("model"));
        assert!(
            error.message.is_ascii() && error.message.contains("model"),
            "English without Accept-Language: {}",
            error.message
        );
    }
    // A client that asks for Chinese gets it (and `/api` keeps the configured default).
    let chinese = app
        .send(
            app.client
                .get(app.url("/v1/models/9780000000002"))
                .bearer_auth(&key)
                .header("accept-language", "zh-CN"),
        )
        .await;
    assert_eq!(chinese.status.as_u16(), 404);
    let message = chinese.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("模型 "), "{message}");
    let api = app.get("/api/books/9780000000002/", Some(&t)).await;
    assert!(
        !api.body["message"].as_str().unwrap_or("").is_ascii(),
        "/api in the configured language: {}",
        api.text
    );

    // A malformed exchange (an answer with no question): 400 invalid_request_error.
    let mut last_assistant = question(SANTI, "问");
    last_assistant.messages.clear();
    last_assistant.messages.push(
        async_openai::types::chat::ChatCompletionRequestAssistantMessageArgs::default()
            .content("答")
            .build()
            .unwrap()
            .into(),
    );
    let (status, error) = api_error(client.chat().create(last_assistant).await.unwrap_err());
    assert_eq!(
        (status, error.r#type.as_deref()),
        (400, Some("invalid_request_error"))
    );

    // Wrong and revoked keys: 401, as OpenAI answers a bad key.
    let wrong = openai(&app, "rbk_not-a-real-key");
    let (status, error) = api_error(wrong.models().list().await.unwrap_err());
    assert_eq!(status, 401);
    assert_eq!(error.code.as_deref(), Some("invalid_api_key"));
    let spare = create_key(&app, &t, "spare").await;
    let revoked = openai(&app, key_of(&spare));
    revoked.models().list().await.unwrap();
    let id = spare["id"].as_i64().unwrap();
    app.delete(&format!("/api/user/api-keys/{id}/"), Some(&t))
        .await
        .assert_ok();
    let (status, _) = api_error(revoked.models().list().await.unwrap_err());
    assert_eq!(status, 401);
}

async fn quota_and_rate_limits_surface_as_openai_errors(db: TestDatabase) {
    let app = spawn_app_with(db, |c| {
        c.http.chat_rate_per_min = 3;
        c.core.chat.daily_token_quota = 300;
    })
    .await;
    let (_, key) = reader_with_key(&app, "sdk_limits").await;
    let client = openai(&app, &key);

    // Quota: the first answer (168 tokens) fits, the second brings the day to 336 > 300,
    // the third is refused as OpenAI refuses an exhausted quota.
    client.chat().create(question(SANTI, "一")).await.unwrap();
    client.chat().create(question(SANTI, "二")).await.unwrap();
    let (status, error) = api_error(
        client
            .chat()
            .create(question(SANTI, "三"))
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 429);
    assert_eq!(error.r#type.as_deref(), Some("insufficient_quota"));

    // Rate limit: a fourth question within the minute. The SDK's default client would
    // wait out our Retry-After and try again, as it does with OpenAI; one without its
    // retry layer shows the error itself.
    let no_retry = openai(&app, &key).with_http_service(ReqwestService::default());
    let (status, error) = api_error(
        no_retry
            .chat()
            .create(question(SANTI, "四"))
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 429);
    assert_eq!(error.r#type.as_deref(), Some("rate_limit_error"));
    assert_eq!(error.code.as_deref(), Some("rate_limit_exceeded"));
    let limited = app
        .send(
            app.client
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&json!({"model": SANTI, "messages": [{"role": "user", "content": "五"}]})),
        )
        .await;
    assert_eq!(limited.status.as_u16(), 429, "{}", limited.text);
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
}

/// The `data:` payloads of an OpenAI-style SSE body (comments skipped).
fn data_lines(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter(|block| !block.is_empty() && !block.starts_with(':'))
        .map(|block| block.strip_prefix("data: ").expect("data lines only"))
        .collect()
}

async fn the_wire_carries_reasoning_and_errors_as_openai_does(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (_, key) = reader_with_key(&app, "sdk_wire").await;
    let post = |body: Value| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&body)
    };
    // Reasoning arrives as delta.reasoning_content; no usage chunk unless asked for.
    app.llm.push(MockReply::answer(
        &["先想", "一想"],
        &["答案"],
        Duration::ZERO,
    ));
    let streamed = app
        .send(post(json!({"model": SANTI, "stream": true, "messages": [{"role": "user", "content": [{"type": "text", "text": "问"}]}]})))
        .await;
    assert_eq!(
        streamed.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let lines = data_lines(&streamed.text);
    assert_eq!(lines.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "先想一想");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );

    // Not streamed: reasoning beside the content.
    app.llm
        .push(MockReply::answer(&["想"], &["好"], Duration::ZERO));
    let whole = app
        .send(post(
            json!({"model": SANTI, "messages": [{"role": "user", "content": "问"}]}),
        ))
        .await;
    assert_eq!(
        whole.body["choices"][0]["message"]["reasoning_content"],
        "想"
    );

    // A model failing mid-stream: an error chunk, then [DONE].
    app.llm.push(MockReply::steps(vec![
        MockReply::content("说到一半"),
        Step::Raw("{\"choices\": [".into()),
        Step::Done,
    ]));
    let broken = app
        .send(post(json!({"model": SANTI, "stream": true, "messages": [{"role": "user", "content": "问"}]})))
        .await;
    let lines = data_lines(&broken.text);
    assert_eq!(lines.last(), Some(&"[DONE]"));
    let error: Value = serde_json::from_str(lines[lines.len() - 2]).unwrap();
    assert_eq!(error["error"]["type"], "server_error");
    assert_eq!(error["error"]["code"], "model_error");
    assert!(broken.text.contains("说到一半"));

    // A model refusing at once (not streamed): the error as the answer.
    app.llm.push(MockReply::error(500));
    let refused = app
        .send(post(
            json!({"model": SANTI, "messages": [{"role": "user", "content": "问"}]}),
        ))
        .await;
    assert_eq!(refused.status.as_u16(), 503, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "model_error");

    // Unknown routes and methods under /v1 answer in OpenAI's shape too.
    let nowhere = app.get("/v1/embeddings", Some(&key)).await;
    assert_eq!(nowhere.status.as_u16(), 404);
    assert!(
        nowhere.body["error"]["message"].is_string(),
        "{}",
        nowhere.text
    );
    let wrong_method = app.get("/v1/chat/completions", Some(&key)).await;
    assert_eq!(wrong_method.status.as_u16(), 405);
    assert_eq!(wrong_method.body["error"]["type"], "invalid_request_error");
    // And an access token works there as well as a key.
    let t = token(&app.register("token_user").await).to_owned();
    let models = app.get("/v1/models", Some(&t)).await;
    assert_eq!(models.assert_ok(), &json!({"object": "list", "data": []}));
}

async fn a_reply_over_the_byte_cap_ends_with_length(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.llm.max_reply_bytes = 10).await;
    let (_, key) = reader_with_key(&app, "sdk_cap").await;
    app.llm.push(MockReply::answer(
        &[],
        &["一二三", "四五六"],
        Duration::ZERO,
    ));
    let answer = openai(&app, &key)
        .chat()
        .create(question(SANTI, "数一数"))
        .await
        .unwrap();
    // 10 bytes hold three 3-byte characters; the fourth would split.
    assert_eq!(answer.choices[0].message.content.as_deref(), Some("一二三"));
    assert_eq!(answer.choices[0].finish_reason, Some(FinishReason::Length));
    assert!(answer.usage.unwrap().completion_tokens > 0);
}

async fn the_stream_keeps_alive_while_the_model_is_silent(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.http.sse_keepalive_secs = 1).await;
    let (_, key) = reader_with_key(&app, "sdk_quiet").await;
    app.llm.push(MockReply::steps(vec![
        MockReply::content("先说"),
        Step::Sleep(Duration::from_millis(2500)),
        MockReply::content("再说"),
        Step::Done,
    ]));
    let streamed = app
        .send(
            app.client
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&json!({"model": SANTI, "stream": true, "messages": [{"role": "user", "content": "问"}]})),
        )
        .await;
    let keep_alives = streamed.text.matches(": keep-alive\n\n").count();
    assert!((1..=3).contains(&keep_alives), "{}", streamed.text);
    assert!(streamed.text.contains("再说") && streamed.text.ends_with("data: [DONE]\n\n"));
}

backend_tests!(
    the_stream_keeps_alive_while_the_model_is_silent,
    a_reply_over_the_byte_cap_ends_with_length,
    an_openai_client_talks_with_a_book,
    an_openai_client_gets_its_own_errors,
    quota_and_rate_limits_surface_as_openai_errors,
    the_wire_carries_reasoning_and_errors_as_openai_does,
);
