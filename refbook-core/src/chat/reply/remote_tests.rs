//! Tests of [`remote`](super): the wire form and applying published events.

use super::*;
use crate::domain::ConversationId;

fn content(p: usize, v: usize, text: &str) -> WireEvent {
    WireEvent {
        p,
        v,
        event: WireKind::Content { t: text.into() },
    }
}

#[test]
fn published_events_continue_a_reply_exactly_once() {
    let reply = Reply::new(ConversationId::new(1), MessageId::new(2), "m".into());
    let start = WireEvent {
        p: 1,
        v: 0,
        event: WireKind::Start,
    };
    assert_eq!(
        apply(&reply, vec![start.clone(), content(4, 1, "答")]),
        Applied::Continued
    );
    // The same batch again (a rewrite after a Redis failure) changes nothing.
    assert_eq!(
        apply(&reply, vec![start, content(4, 1, "答")]),
        Applied::Continued
    );
    assert_eq!(reply.last_position(), 4);
    // A batch after a missed one is a gap and is not applied.
    assert_eq!(apply(&reply, vec![content(10, 7, "案")]), Applied::Gap);
    assert_eq!(reply.texts().1, "答");
    assert_eq!(apply(&reply, vec![content(7, 4, "案")]), Applied::Continued);
    let end = WireEvent {
        p: 7,
        v: 7,
        event: WireKind::End {
            status: MessageStatus::Complete,
        },
    };
    assert_eq!(apply(&reply, vec![end]), Applied::Ended);
    assert!(reply.is_finished());
}

#[test]
fn the_wire_form_round_trips_every_event() {
    let events = [
        ReplyEvent::Start,
        ReplyEvent::Sources(
            vec![Source {
                n: 1,
                section: crate::domain::SectionRef {
                    index: 2,
                    title: "第二章 红岸".into(),
                },
                start: 40,
                end: 80,
                quote: "叶文洁在红岸基地。".into(),
            }]
            .into(),
        ),
        ReplyEvent::Reasoning("想".into()),
        ReplyEvent::Content("答".into()),
        ReplyEvent::Finish {
            reason: FinishReason::Cancelled,
            status: MessageStatus::Partial,
            usage: TokenUsage::new(3, 4),
            citations: None,
        },
        ReplyEvent::Finish {
            reason: FinishReason::Stop,
            status: MessageStatus::Complete,
            usage: TokenUsage::new(3, 4),
            citations: Some(vec![1, 3].into()),
        },
        ReplyEvent::Error {
            code: "MODEL_ERROR",
            message: "x".into(),
        },
    ];
    for event in events {
        let wire = WireEvent {
            p: 1,
            v: 0,
            event: WireKind::of(&event),
        };
        let text = serde_json::to_string(&vec![wire]).unwrap();
        let back = parse_batch(text.as_bytes()).remove(0);
        assert_eq!(back.event.into_event(), Some(event));
    }
}
