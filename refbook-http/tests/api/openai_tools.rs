//! Tools and structured output passed through to a remote model (the issue "The OpenAI
//! face as real clients use it"), driven by `async-openai`: a tool call comes back in
//! OpenAI's shapes, streamed and not; the tool's result goes to the model after the
//! book's prompt and the question; a JSON answer under a strict schema; the model's
//! refusal of the tools as a `400` naming them; and with passthrough off, the honest
//! refusals of what cannot be kept.

use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestToolMessageArgs,
    ChatCompletionToolChoiceOption, FinishReason, FunctionCall, ResponseFormat,
    ResponseFormatJsonSchema, ToolChoiceOptions,
};
use futures::StreamExt;
use refbook_core::backend_tests;
use refbook_core::testing::{MockReply, TestDatabase};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, SANTI};
use crate::openai_clients::lookup_tool;
use crate::openai_face::{api_error, openai, question, reader_with_key};

/// The book's prompt is the first message the model got.
#[track_caller]
fn book_prompt_first(sent: &Value) {
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert_eq!(sent["messages"][0]["role"], "system");
    assert!(system.contains("书目信息"), "{system}");
}

async fn a_tool_call_passes_through_and_comes_back(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (_, key) = reader_with_key(&app, "agent").await;
    let client = openai(&app, &key);

    // Not streamed: the call in the message, finish reason `tool_calls`.
    app.llm.push(MockReply::tool_call(
        "call_abc",
        "lookup",
        &["{\"word\":", " \"智子\"}"],
    ));
    let mut request = question(SANTI, "查一下“智子”");
    request.tools = Some(vec![lookup_tool()]);
    request.tool_choice = Some(ChatCompletionToolChoiceOption::Mode(
        ToolChoiceOptions::Required,
    ));
    let answer = client.chat().create(request.clone()).await.unwrap();
    let choice = &answer.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.clone().unwrap();
    let [ChatCompletionMessageToolCalls::Function(call)] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(call.id, "call_abc");
    assert_eq!(call.function.name, "lookup");
    assert_eq!(call.function.arguments, "{\"word\": \"智子\"}");
    assert_eq!(answer.usage.unwrap().prompt_tokens, 90);
    let sent = app.llm.requests().pop().unwrap();
    book_prompt_first(&sent);
    assert_eq!(sent["tools"][0]["function"]["name"], "lookup");
    assert_eq!(sent["tool_choice"], "required");
    let last = sent["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["content"], "查一下“智子”");

    // Streamed: the pieces as OpenAI streams them.
    app.llm.push(MockReply::tool_call(
        "call_def",
        "lookup",
        &["{\"word\":", " \"三体\"}"],
    ));
    request.stream = Some(true);
    let mut stream = client.chat().create_stream(request).await.unwrap();
    let (mut id, mut name, mut arguments, mut finish) = (None, None, String::new(), None);
    while let Some(chunk) = stream.next().await {
        for choice in chunk.unwrap().choices {
            for piece in choice.delta.tool_calls.unwrap_or_default() {
                assert_eq!(piece.index, 0);
                id = id.or(piece.id);
                let function = piece.function.unwrap();
                name = name.or(function.name);
                arguments.push_str(function.arguments.as_deref().unwrap_or(""));
            }
            finish = finish.or(choice.finish_reason);
        }
    }
    assert_eq!(id.as_deref(), Some("call_def"));
    assert_eq!(name.as_deref(), Some("lookup"));
    assert_eq!(arguments, "{\"word\": \"三体\"}");
    assert_eq!(finish, Some(FinishReason::ToolCalls));
}

async fn the_tools_result_goes_to_the_model_after_the_question(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (_, key) = reader_with_key(&app, "looper").await;
    let call = ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
        id: "call_abc".into(),
        function: FunctionCall {
            name: "lookup".into(),
            arguments: "{\"word\": \"智子\"}".into(),
        },
    });
    let mut request = question(SANTI, "查一下“智子”");
    request.tools = Some(vec![lookup_tool()]);
    request.messages.push(
        ChatCompletionRequestAssistantMessageArgs::default()
            .tool_calls(vec![call])
            .build()
            .unwrap()
            .into(),
    );
    request.messages.push(
        ChatCompletionRequestToolMessageArgs::default()
            .tool_call_id("call_abc")
            .content("智子：三体人送来的质子计算机")
            .build()
            .unwrap()
            .into(),
    );
    app.llm.push(MockReply::answer(
        &[],
        &["智子是", "质子计算机。"],
        Duration::ZERO,
    ));
    let answer = openai(&app, &key).chat().create(request).await.unwrap();
    assert_eq!(
        answer.choices[0].message.content.as_deref(),
        Some("智子是质子计算机。")
    );
    assert_eq!(answer.choices[0].finish_reason, Some(FinishReason::Stop));
    let sent = app.llm.requests().pop().unwrap();
    book_prompt_first(&sent);
    let messages = sent["messages"].as_array().unwrap();
    let n = messages.len();
    assert_eq!(messages[n - 3]["role"], "user");
    assert_eq!(messages[n - 3]["content"], "查一下“智子”");
    assert_eq!(messages[n - 2]["tool_calls"][0]["id"], "call_abc");
    assert_eq!(
        messages[n - 2]["tool_calls"][0]["function"]["arguments"],
        "{\"word\": \"智子\"}"
    );
    assert_eq!(
        messages[n - 1],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": "智子：三体人送来的质子计算机"})
    );
}

fn author_schema(strict: bool) -> ResponseFormat {
    ResponseFormat::JsonSchema {
        json_schema: ResponseFormatJsonSchema {
            description: None,
            name: "answer".into(),
            schema: json!({"type": "object", "properties": {"author": {"type": "string"}},
                           "required": ["author"], "additionalProperties": false}),
            strict: Some(strict),
        },
    }
}

async fn a_json_answer_passes_through(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (_, key) = reader_with_key(&app, "structured").await;
    let client = openai(&app, &key);

    // Chat completions: the strict schema goes to the model, which keeps it.
    app.llm.push(MockReply::answer(
        &[],
        &["{\"author\":", " \"刘慈欣\"}"],
        Duration::ZERO,
    ));
    let mut request = question(SANTI, "谁写的？");
    request.response_format = Some(author_schema(true));
    let answer = client.chat().create(request).await.unwrap();
    let content = answer.choices[0].message.content.clone().unwrap();
    let parsed: Value = serde_json::from_str(&content).unwrap();
    assert_eq!(parsed["author"], "刘慈欣");
    let sent = app.llm.requests().pop().unwrap();
    book_prompt_first(&sent);
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["strict"], true);
    assert_eq!(sent["response_format"]["json_schema"]["name"], "answer");

    // The Responses API's `text.format`, as chat completions' `response_format`.
    app.llm.push(MockReply::answer(
        &[],
        &["{\"author\": \"刘慈欣\"}"],
        Duration::ZERO,
    ));
    let response = app
        .send(
            app.client
                .post(app.url("/v1/responses"))
                .bearer_auth(&key)
                .json(
                    &json!({"model": SANTI, "input": "谁写的？", "text": {"format": {
                    "type": "json_schema", "name": "answer", "strict": true,
                    "schema": {"type": "object", "properties": {"author": {"type": "string"}}}}}}),
                ),
        )
        .await;
    assert_eq!(response.status.as_u16(), 200, "{}", response.text);
    assert_eq!(
        response.body["output"][0]["content"][0]["text"],
        "{\"author\": \"刘慈欣\"}"
    );
    let sent = app.llm.requests().pop().unwrap();
    assert_eq!(sent["response_format"]["json_schema"]["name"], "answer");
    assert_eq!(sent["response_format"]["json_schema"]["strict"], true);
    assert!(sent["response_format"]["json_schema"].get("type").is_none());
    assert!(sent.get("tools").is_none());
}

async fn a_model_that_refuses_the_tools_is_a_400_naming_them(db: TestDatabase) {
    let app = spawn_app(db).await;
    let (t, key) = reader_with_key(&app, "refused").await;
    app.llm.push(MockReply::error_with(
        400,
        json!({"error": {"message": "tools are not supported by this model", "type": "invalid_request_error"}}),
    ));
    let mut request = question(SANTI, "查一下“智子”");
    request.tools = Some(vec![lookup_tool()]);
    let (status, error) = api_error(openai(&app, &key).chat().create(request).await.unwrap_err());
    assert_eq!((status, error.param.as_deref()), (400, Some("tools")));
    assert!(
        error.message.contains("refused the request's tools"),
        "{}",
        error.message
    );
    // Nothing was counted for an answer that never started.
    let profile = app.get("/api/user/profile/", Some(&t)).await;
    assert_eq!(profile.body["usage"]["used_tokens"], 0);
}

async fn with_passthrough_off_demanded_tools_and_tool_turns_are_refused(db: TestDatabase) {
    let app = spawn_app_with(db, |c| c.core.llm.passthrough_tools = false).await;
    let (_, key) = reader_with_key(&app, "plain").await;
    let client = openai(&app, &key);
    let before = app.llm.requests().len();
    let mut demanded = question(SANTI, "查一下“智子”");
    demanded.tools = Some(vec![lookup_tool()]);
    demanded.tool_choice = Some(ChatCompletionToolChoiceOption::Mode(
        ToolChoiceOptions::Required,
    ));
    let (status, error) = api_error(client.chat().create(demanded).await.unwrap_err());
    assert_eq!((status, error.param.as_deref()), (400, Some("tool_choice")));
    let mut strict = question(SANTI, "谁写的？");
    strict.response_format = Some(author_schema(true));
    let (status, error) = api_error(client.chat().create(strict).await.unwrap_err());
    assert_eq!(
        (status, error.param.as_deref()),
        (400, Some("response_format"))
    );
    let mut result = question(SANTI, "查一下“智子”");
    result.messages.push(
        ChatCompletionRequestToolMessageArgs::default()
            .tool_call_id("call_abc")
            .content("质子计算机")
            .build()
            .unwrap()
            .into(),
    );
    let (status, error) = api_error(client.chat().create(result).await.unwrap_err());
    assert_eq!((status, error.param.as_deref()), (400, Some("messages")));
    assert_eq!(
        app.llm.requests().len(),
        before,
        "nothing reached the model"
    );
}

backend_tests!(
    a_tool_call_passes_through_and_comes_back,
    the_tools_result_goes_to_the_model_after_the_question,
    a_json_answer_passes_through,
    a_model_that_refuses_the_tools_is_a_400_naming_them,
    with_passthrough_off_demanded_tools_and_tool_turns_are_refused,
);
