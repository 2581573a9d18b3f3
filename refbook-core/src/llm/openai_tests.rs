//! Tests of the OpenAI-compatible client's wire format.

use super::*;

#[test]
fn an_unfinished_answer_is_continued_by_prefix_or_by_instruction() {
    let said = |role, content: &str| PromptMessage {
        role,
        content: content.to_owned(),
    };
    let question = [said(Role::System, "S"), said(Role::User, "Q")];
    let plain = wire_messages(&question, true);
    assert_eq!(plain.len(), 2);
    assert!(plain.iter().all(|m| m.get("prefix").is_none()));
    let unfinished = [
        said(Role::System, "S"),
        said(Role::User, "Q"),
        said(Role::Assistant, "Half an"),
    ];
    let prefix = wire_messages(&unfinished, true);
    assert_eq!(
        prefix.last().unwrap(),
        &json!({"role": "assistant", "content": "Half an", "prefix": true})
    );
    let instructed = wire_messages(&unfinished, false);
    assert_eq!(instructed.len(), 4);
    assert_eq!(instructed[2]["content"], "Half an");
    assert!(instructed[2].get("prefix").is_none());
    assert_eq!(instructed[3]["role"], "user");
    assert_eq!(instructed[3]["content"], CONTINUE_INSTRUCTION);
}

#[test]
fn chunks_of_every_shape() {
    let deepseek = r#"{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"reasoning_content":"想"},"finish_reason":null}],"usage":null}"#;
    assert_eq!(
        parse_data(deepseek).unwrap().unwrap(),
        [ModelEvent::Reasoning("想".into())]
    );
    let ollama = r#"{"choices":[{"index":0,"delta":{"reasoning":"think"}}]}"#;
    assert_eq!(
        parse_data(ollama).unwrap().unwrap(),
        [ModelEvent::Reasoning("think".into())]
    );
    let content = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"答"},"finish_reason":"stop"}]}"#;
    assert_eq!(
        parse_data(content).unwrap().unwrap(),
        [
            ModelEvent::Content("答".into()),
            ModelEvent::Finish(FinishReason::Stop)
        ]
    );
    let usage_empty =
        r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#;
    assert_eq!(
        parse_data(usage_empty).unwrap().unwrap(),
        [ModelEvent::Usage(TokenUsage::new(10, 5))]
    );
    let usage_null = r#"{"choices":null,"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
    assert_eq!(
        parse_data(usage_null).unwrap().unwrap(),
        [ModelEvent::Usage(TokenUsage::new(1, 2))]
    );
    let call = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#;
    let events = parse_data(call).unwrap().unwrap();
    assert!(matches!(&events[0], ModelEvent::ToolCall(c) if c.arguments == "{}"));
    assert_eq!(events[1], ModelEvent::Finish(FinishReason::ToolCalls));
    let empty = r#"{"choices":[{"index":0,"delta":{"content":""}}]}"#;
    assert!(parse_data(empty).unwrap().unwrap().is_empty());
    assert_eq!(parse_data("[DONE]").unwrap(), None);
    assert!(
        parse_data(r#"{"error":{"message":"overloaded","type":"server_error","code":503}}"#)
            .is_err()
    );
    assert_eq!(parse_data("not json"), Err(ModelError::Corrupt));
    assert!(is_context_error(
        r#"{"error":{"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}}"#
    ));
    assert!(!is_context_error(r#"{"error":{"message":"bad model"}}"#));
}
