//! The OpenAI face as real clients use it (the issue "The OpenAI face as real clients use
//! it"), driven by `async-openai` where its types reach and raw where they do not: titles
//! and personas in the model list, an unseen book retrieved, "continue response", honest
//! refusals of required tools and strict schemas, a client's housekeeping tasks, and one
//! per-user cap for every reply however it was started.

use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionNamedToolChoice, ChatCompletionRequestAssistantMessageArgs, ChatCompletionTool,
    ChatCompletionToolChoiceOption, ChatCompletionTools, FunctionName, FunctionObjectArgs,
    ToolChoiceOptions,
};
use async_openai::types::chat::{ResponseFormat, ResponseFormatJsonSchema};
use futures::StreamExt;
use refbook_core::backend_tests;
use refbook_core::config::ContinueMode;
use refbook_core::testing::{MockReply, TestDatabase};
use serde_json::{json, Value};

use crate::chat::{slow_answer, wait_until_generating};
use crate::helpers::{spawn_app, spawn_app_with, token, TestApp, SANTI};
use crate::openai_face::{api_error, openai, question, reader_with_key};

/// The `(id, name)` pairs of `GET /v1/models` as `bearer` sees it.
async fn listed(app: &TestApp, bearer: &str) -> Vec<(String, String)> {
    let models = app.get("/v1/models", Some(bearer)).await;
    models.assert_ok()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            (
                m["id"].as_str().unwrap().to_owned(),
                m["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(id, name)| ((*id).to_owned(), (*name).to_owned()))
        .collect()
}

async fn the_model_list_names_books_and_personas(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, key) = reader_with_key(&app, "picker").await;

    // The book under its title, and once per persona other than the default.
    assert_eq!(
        listed(&app, &key).await,
        pairs(&[(SANTI, "三体"), (&format!("{SANTI}@author"), "三体 · 作者")])
    );
    let persona = app
        .post(
            "/api/personas/",
            Some(&t),
            json!({"name": "福尔摩斯", "description": "一位爱推理的侦探。"}),
        )
        .await;
    let pid = persona.assert_ok()["id"].as_i64().unwrap();
    let own = format!("{SANTI}@{pid}");
    assert_eq!(
        listed(&app, &key).await,
        pairs(&[
            (SANTI, "三体"),
            (&format!("{SANTI}@author"), "三体 · 作者"),
            (&own, "三体 · 福尔摩斯"),
        ])
    );
    // The real client reads the same ids (it has no field for the name).
    let ids: Vec<String> = openai(&app, &key)
        .models()
        .list()
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        ids,
        [SANTI.to_owned(), format!("{SANTI}@author"), own.clone()]
    );
    // Another user sees neither the first one's book nor their persona.
    let stranger = token(&app.register("stranger").await).to_owned();
    assert!(listed(&app, &stranger).await.is_empty());

    // A book the stranger never touched is retrieved by ISBN (any form) with its name.
    let one = app
        .get("/v1/models/978-7-5366-9293-0@author", Some(&stranger))
        .await;
    assert_eq!(one.assert_ok()["id"], format!("{SANTI}@author"));
    assert_eq!(one.body["name"], "三体 · 作者");
    let retrieved = openai(&app, &key).models().retrieve(&own).await.unwrap();
    assert_eq!(retrieved.id, own);
    let theirs = app.get(&format!("/v1/models/{own}"), Some(&stranger)).await;
    assert_eq!(theirs.status.as_u16(), 404, "{}", theirs.text);

    // A book with a text the reader can read is listed too (their own copy here).
    let uploaded = app
        .send(
            app.client
                .put(app.url(&format!("/api/books/{SANTI}/text/")))
                .bearer_auth(&stranger)
                .header("content-type", "text/plain; charset=utf-8")
                .body("第一章\n\n汪淼是纳米材料研究者。\n"),
        )
        .await;
    assert!(uploaded.status.is_success(), "{}", uploaded.text);
    let theirs = listed(&app, &stranger).await;
    assert_eq!(
        theirs.first().map(|m| m.1.as_str()),
        Some("三体"),
        "{theirs:?}"
    );
}

/// 三体, asked who wrote it, with the start of the answer to continue.
fn unfinished_question() -> async_openai::types::chat::CreateChatCompletionRequest {
    let mut request = question(SANTI, "三体是谁写的？");
    request.messages.push(
        ChatCompletionRequestAssistantMessageArgs::default()
            .content("三体的作者是")
            .build()
            .unwrap()
            .into(),
    );
    request
}

async fn an_unfinished_answer_is_continued_by_instruction(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (_, key) = reader_with_key(&app, "continuer").await;
    // The mock's base URL is not DeepSeek's beta: `auto` continues by instruction.
    app.llm
        .push(MockReply::answer(&[], &["刘慈欣", "。"], Duration::ZERO));
    let answer = openai(&app, &key)
        .chat()
        .create(unfinished_question())
        .await
        .unwrap();
    assert_eq!(
        answer.choices[0].message.content.as_deref(),
        Some("刘慈欣。"),
        "only the new text comes back"
    );
    let sent = app.llm.requests().pop().unwrap();
    let messages = sent["messages"].as_array().unwrap();
    let n = messages.len();
    assert_eq!(messages[n - 3]["content"], "三体是谁写的？");
    assert_eq!(messages[n - 2]["role"], "assistant");
    assert_eq!(messages[n - 2]["content"], "三体的作者是");
    assert_eq!(messages[n - 1]["role"], "user");
    assert!(messages[n - 1]["content"]
        .as_str()
        .unwrap()
        .contains("Continue your previous answer"));
}

async fn an_unfinished_answer_is_continued_by_prefix(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.llm.continuation = ContinueMode::Prefix).await;
    let (_, key) = reader_with_key(&app, "prefixer").await;
    app.llm.push(MockReply::answer(
        &[],
        &["刘", "慈欣"],
        Duration::from_millis(5),
    ));
    let mut request = unfinished_question();
    request.stream = Some(true);
    let mut stream = openai(&app, &key)
        .chat()
        .create_stream(request)
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        for choice in chunk.unwrap().choices {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
        }
    }
    assert_eq!(text, "刘慈欣");
    let sent = app.llm.requests().pop().unwrap();
    let last = sent["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        json!({"role": "assistant", "content": "三体的作者是", "prefix": true})
    );
}

/// A function tool as clients declare one.
pub(crate) fn lookup_tool() -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default()
            .name("lookup")
            .description("Looks a word up")
            .parameters(json!({"type": "object", "properties": {"word": {"type": "string"}}}))
            .build()
            .unwrap(),
    })
}

async fn required_tools_and_strict_schemas_are_refused(db: TestDatabase) {
    // A model that cannot take them (passthrough off; the local model alike).
    let app = spawn_app_with(db, |c| c.core.llm.passthrough_tools = false).await;
    let (_, key) = reader_with_key(&app, "structured").await;
    let client = openai(&app, &key);
    let before = app.llm.requests().len();

    // A demanded tool call cannot be honoured: 400 naming the parameter, in English.
    for choice in [
        ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::Required),
        ChatCompletionToolChoiceOption::Function(ChatCompletionNamedToolChoice {
            function: FunctionName {
                name: "lookup".into(),
            },
        }),
    ] {
        let mut request = question(SANTI, "查一下“智子”");
        request.tools = Some(vec![lookup_tool()]);
        request.tool_choice = Some(choice);
        let (status, error) = api_error(client.chat().create(request).await.unwrap_err());
        assert_eq!(status, 400);
        assert_eq!(error.param.as_deref(), Some("tool_choice"));
        assert!(
            error.message.contains("cannot call tools"),
            "{}",
            error.message
        );
    }
    // So is a strict schema.
    let schema = ResponseFormatJsonSchema {
        description: None,
        name: "answer".into(),
        schema: json!({"type": "object", "properties": {"author": {"type": "string"}}}),
        strict: Some(true),
    };
    let mut strict = question(SANTI, "谁写的？");
    strict.response_format = Some(ResponseFormat::JsonSchema {
        json_schema: schema.clone(),
    });
    let (status, error) = api_error(client.chat().create(strict).await.unwrap_err());
    assert_eq!(
        (status, error.param.as_deref()),
        (400, Some("response_format"))
    );
    assert_eq!(
        app.llm.requests().len(),
        before,
        "nothing reached the model"
    );

    // Tools the model may leave unused: a text answer. JSON asked for: in the prompt.
    app.llm.set_fallback(MockReply::answer(
        &[],
        &["{\"author\": \"刘慈欣\"}"],
        Duration::ZERO,
    ));
    let mut optional = question(SANTI, "谁写的？");
    optional.tools = Some(vec![lookup_tool()]);
    optional.tool_choice = Some(ChatCompletionToolChoiceOption::Mode(
        ToolChoiceOptions::Auto,
    ));
    client.chat().create(optional).await.unwrap();
    for format in [
        ResponseFormat::JsonObject,
        ResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                strict: Some(false),
                ..schema.clone()
            },
        },
    ] {
        let mut request = question(SANTI, "谁写的？用 JSON 回答。");
        request.response_format = Some(format);
        let answer = client.chat().create(request).await.unwrap();
        let content = answer.choices[0].message.content.clone().unwrap();
        let parsed: Value = serde_json::from_str(&content).unwrap();
        assert_eq!(parsed["author"], "刘慈欣");
        let sent = app.llm.requests().pop().unwrap();
        let system = sent["messages"][0]["content"].as_str().unwrap().to_owned();
        assert!(
            system.find("书目信息").unwrap() < system.find("JSON object").unwrap(),
            "the book's prompt first, then the format: {system}"
        );
    }
    let sent = app.llm.requests().pop().unwrap();
    assert!(sent["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("\"author\""));
    assert!(sent.get("tools").is_none(), "not passed to the model");
}

/// Open WebUI's title task, as it sends it after an answer.
const TITLE_TASK: &str = "### Task:\nGenerate a concise, 3-5 word title with an emoji \
    summarizing the chat history.\n### Output:\nJSON format: { \"title\": \"your concise title here\" }\n\
    ### Chat History:\n<chat_history>\nUSER: 三体是谁写的？\nASSISTANT: 刘慈欣。\n</chat_history>";

async fn client_tasks_skip_the_book_and_cost_a_quarter(db: TestDatabase) {
    let app = spawn_app_with(db, |c| {
        c.http.chat_rate_per_min = 1;
        c.http.openai_task_header = Some("x-refbook-task".into());
    })
    .await;
    let (t, key) = reader_with_key(&app, "webui").await;
    let client = openai(&app, &key);

    // Recognised by its prompt: no book prompt, a quarter of the tokens (168 → 30 + 12).
    app.llm.push(MockReply::answer(
        &[],
        &["{\"title\": \"📚 三体作者\"}"],
        Duration::ZERO,
    ));
    let mut title = question(SANTI, TITLE_TASK);
    title.max_completion_tokens = Some(100_000);
    let answer = client.chat().create(title).await.unwrap();
    assert_eq!(
        answer.usage.unwrap().total_tokens,
        168,
        "the client sees the real count"
    );
    let sent = app.llm.requests().pop().unwrap();
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "the task alone: {messages:?}");
    assert_eq!(messages[0]["content"], TITLE_TASK);
    assert_eq!(sent["max_tokens"], refbook_core::chat::TASK_MAX_TOKENS);
    let profile = app.get("/api/user/profile/", Some(&t)).await;
    assert_eq!(profile.body["usage"]["used_tokens"], 42);

    // A reader's question: the book's prompt, the whole count, and the minute's rate.
    app.llm
        .push(MockReply::answer(&[], &["刘慈欣。"], Duration::ZERO));
    client
        .chat()
        .create(question(SANTI, "三体是谁写的？"))
        .await
        .unwrap();
    let sent = app.llm.requests().pop().unwrap();
    assert!(sent["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("书目信息"));
    let profile = app.get("/api/user/profile/", Some(&t)).await;
    assert_eq!(profile.body["usage"]["used_tokens"], 42 + 168);

    // Tasks are not held to the per-minute rate the question used up; with the
    // operator's header any request is a task.
    app.llm
        .set_fallback(MockReply::answer(&[], &["好"], Duration::ZERO));
    client
        .chat()
        .create(question(SANTI, TITLE_TASK))
        .await
        .unwrap();
    let marked = app
        .send(
            app.client
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&key)
                .header("x-refbook-task", "tags")
                .json(&json!({"model": SANTI, "messages": [
                    {"role": "system", "content": "Reply with tags."},
                    {"role": "user", "content": "三体"}]})),
        )
        .await;
    assert_eq!(marked.status.as_u16(), 200, "{}", marked.text);
    let sent = app.llm.requests().pop().unwrap();
    assert_eq!(sent["messages"][0]["content"], "Reply with tags.");
    let limited = app
        .send(
            app.client
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&json!({"model": SANTI, "messages": [{"role": "user", "content": "再问"}]})),
        )
        .await;
    assert_eq!(limited.status.as_u16(), 429, "{}", limited.text);
}

async fn one_cap_for_every_reply(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.chat.max_concurrent_generations = 1).await;
    let (t, key) = reader_with_key(&app, "capped").await;
    let id = app.get("/api/conversations/", Some(&t)).await.assert_ok()["results"][0]["id"]
        .as_i64()
        .unwrap();
    let client = openai(&app, &key);
    let no_retry = client
        .clone()
        .with_http_service(async_openai::middleware::ReqwestService::default());

    // A conversation's reply holds the user's one place: /v1 waits its turn.
    let (script, _) = slow_answer(8);
    app.llm.push(script);
    let running = app.spawn_ask(&t, id, "一");
    wait_until_generating(&app, &t, id, 0).await;
    let (status, error) = api_error(
        no_retry
            .chat()
            .create(question(SANTI, "二"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status, error.r#type.as_deref()),
        (429, Some("rate_limit_error"))
    );
    assert!(running.await.unwrap().ends_with("data: [DONE]\n\n"));

    // A /v1 completion holds it: the conversation and the stateless endpoint wait.
    let (script, _) = slow_answer(8);
    app.llm.push(script);
    let asked = app.llm.requests().len();
    let completion = tokio::spawn({
        let client = client.clone();
        async move {
            let mut request = question(SANTI, "三");
            request.stream = Some(true);
            let mut stream = client.chat().create_stream(request).await.unwrap();
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                for choice in chunk.unwrap().choices {
                    text.push_str(choice.delta.content.as_deref().unwrap_or(""));
                }
            }
            text
        }
    });
    while app.llm.requests().len() == asked {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.post(
        &format!("/api/conversations/{id}/messages/"),
        Some(&t),
        json!({"content": "四"}),
    )
    .await
    .assert_error(429, "RATE_LIMIT");
    app.post(
        "/api/chat/stream/",
        Some(&t),
        json!({"isbn": SANTI, "messages": [{"role": "user", "content": "五"}]}),
    )
    .await
    .assert_error(429, "RATE_LIMIT");
    assert!(!completion.await.unwrap().is_empty());

    // Once it ended, the place is free again.
    app.llm
        .push(MockReply::answer(&[], &["好"], Duration::ZERO));
    app.ask_streaming(&t, id, "六").await;
    assert_eq!(crate::chat::messages(&app, &t, id).await.len(), 4);
}

backend_tests!(
    the_model_list_names_books_and_personas,
    an_unfinished_answer_is_continued_by_instruction,
    an_unfinished_answer_is_continued_by_prefix,
    required_tools_and_strict_schemas_are_refused,
    client_tasks_skip_the_book_and_cost_a_quarter,
    one_cap_for_every_reply,
);
