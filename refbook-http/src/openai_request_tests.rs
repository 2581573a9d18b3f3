//! Tests of reading a chat completion request.

use super::*;
use serde_json::json;

/// What the model is told when nothing passes through.
fn instruction(
    tools: Option<&[Value]>,
    tool_choice: Option<&Value>,
    response_format: Option<&Value>,
) -> Result<Option<String>, ApiError> {
    let asked = Asked {
        tools,
        tool_choice,
        response_format,
    };
    output_instruction(
        &asked,
        Passed {
            tools: false,
            format: false,
        },
    )
}

fn field(result: Result<Option<String>, ApiError>) -> Option<String> {
    result.err().and_then(|err| err.field().map(str::to_owned))
}

#[test]
fn demanded_tool_calls_are_refused_and_optional_tools_answer_in_text() {
    let tools = [json!({"type": "function", "function": {"name": "f"}})];
    for choice in [
        json!("required"),
        json!({"type": "function", "function": {"name": "f"}}),
    ] {
        let refused = instruction(Some(&tools), Some(&choice), None);
        assert_eq!(field(refused).as_deref(), Some("tool_choice"), "{choice}");
    }
    let allowed =
        |mode: &str| json!({"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": []}});
    let refused = instruction(Some(&tools), Some(&allowed("required")), None);
    assert_eq!(field(refused).as_deref(), Some("tool_choice"));
    for choice in [
        None,
        Some(json!("auto")),
        Some(json!("none")),
        Some(allowed("auto")),
    ] {
        assert_eq!(
            instruction(Some(&tools), choice.as_ref(), None).ok(),
            Some(None)
        );
    }
    let odd = instruction(None, Some(&json!("sometimes")), None);
    assert_eq!(field(odd).as_deref(), Some("tool_choice"));
}

#[test]
fn json_is_asked_for_in_the_prompt_and_strict_schemas_are_refused() {
    let object = instruction(None, None, Some(&json!({"type": "json_object"})));
    assert!(object.unwrap().unwrap().contains("JSON"));
    let schema = json!({"type": "json_schema", "json_schema": {
        "name": "answer", "schema": {"type": "object", "properties": {"title": {"type": "string"}}}}});
    let asked = instruction(None, None, Some(&schema)).unwrap().unwrap();
    assert!(asked.contains("\"title\""), "{asked}");
    let mut strict = schema.clone();
    strict["json_schema"]["strict"] = json!(true);
    let refused = instruction(None, None, Some(&strict));
    assert_eq!(field(refused).as_deref(), Some("response_format"));
    let text = instruction(None, None, Some(&json!({"type": "text"})));
    assert_eq!(text.ok(), Some(None));
    let odd = instruction(None, None, Some(&json!({"type": "yaml"})));
    assert_eq!(field(odd).as_deref(), Some("response_format"));
}

#[test]
fn what_passes_through_is_not_refused() {
    let tools = [json!({"type": "function", "function": {"name": "f"}})];
    let strict =
        json!({"type": "json_schema", "json_schema": {"name": "a", "strict": true, "schema": {}}});
    let asked = Asked {
        tools: Some(&tools),
        tool_choice: Some(&json!("required")),
        response_format: Some(&strict),
    };
    let all = Passed {
        tools: true,
        format: true,
    };
    assert_eq!(output_instruction(&asked, all).ok(), Some(None));
    let format_only = Passed {
        tools: false,
        format: true,
    };
    let refused = output_instruction(&asked, format_only);
    assert_eq!(field(refused).as_deref(), Some("tool_choice"));
}

#[test]
fn the_open_tool_loop_passes_as_sent_and_earlier_ones_are_told_in_words() {
    let call = |id: &str| {
        json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": id, "type": "function", "function": {"name": "lookup", "arguments": "{\"w\":1}"}}]})
    };
    let result = |id: &str| json!({"role": "tool", "tool_call_id": id, "content": "42"});
    let raw = vec![
        json!({"role": "system", "content": "S"}),
        json!({"role": "user", "content": "Q1"}),
        call("c1"),
        result("c1"),
        json!({"role": "assistant", "content": "A1"}),
        json!({"role": "user", "content": "Q2"}),
        call("c2"),
        result("c2"),
    ];
    let (messages, turns) = split_tool_loop(raw).unwrap();
    assert_eq!(turns, vec![call("c2"), result("c2")]);
    let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        texts,
        [
            "S",
            "Q1",
            "[called tool lookup({\"w\":1})]",
            "[tool result c1] 42",
            "A1",
            "Q2"
        ]
    );
    // With no tool turn after the question, a last assistant message is an
    // unfinished answer as always.
    let (messages, turns) = split_tool_loop(vec![
        json!({"role": "user", "content": "Q"}),
        json!({"role": "assistant", "content": "Half"}),
    ])
    .unwrap();
    assert!(turns.is_empty());
    assert_eq!(messages.len(), 2);
    // A system message inside the loop is refused.
    let odd = split_tool_loop(vec![
        json!({"role": "user", "content": "Q"}),
        call("c"),
        json!({"role": "system", "content": "S"}),
    ]);
    assert_eq!(odd.err().unwrap().field(), Some("messages"));
}
