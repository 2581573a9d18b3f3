//! The one loop behind the OpenAI face's streams (chat completion chunks and the
//! Responses API's typed events): it reads the model's events into a [`FrameWriter`],
//! sends what the writer queued, and a `: keep-alive` comment whenever nothing was sent
//! for the keep-alive interval.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::{stream, StreamExt};
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use refbook_core::chat::{CompletionEvent, CompletionStream};
use refbook_core::Error;

use crate::body::Body;
use crate::metrics::StreamGuard;
use crate::sse::KEEP_ALIVE_LINE;

/// The frames a writer queued, and whether the stream is over once they are sent.
#[derive(Debug, Default)]
pub struct Frames {
    /// Frames to send, in order.
    pub pending: VecDeque<Bytes>,
    /// Nothing follows the pending frames.
    pub ended: bool,
}

/// Turns a completion's events into the frames of one wire format.
pub trait FrameWriter: Send + 'static {
    /// What the writer has queued.
    fn frames(&mut self) -> &mut Frames;
    /// Queues what one model event writes (`None`: the model's stream ended); `events` is
    /// that stream, for recording its usage at the end.
    fn write(
        &mut self,
        event: Option<Result<CompletionEvent, Error>>,
        events: &mut CompletionStream,
    ) -> impl std::future::Future<Output = ()> + Send;
}

struct Pump<W> {
    writer: W,
    events: CompletionStream,
    keep_alive: Duration,
    /// The one keep-alive timer of this stream, pushed back whenever something is sent.
    silence: std::pin::Pin<Box<tokio::time::Sleep>>,
    _open: StreamGuard,
}

/// A `200` SSE response of `writer`'s frames for `events`; `open` counts it among the
/// open streams until it ends.
pub fn event_stream<W: FrameWriter>(
    writer: W,
    events: CompletionStream,
    keep_alive: Duration,
    open: StreamGuard,
) -> Response<Body> {
    let pump = Pump {
        writer,
        events,
        keep_alive,
        silence: Box::pin(tokio::time::sleep(keep_alive)),
        _open: open,
    };
    let frames = stream::unfold(pump, |mut pump| async move {
        loop {
            if let Some(bytes) = pump.writer.frames().pending.pop_front() {
                let deadline = tokio::time::Instant::now() + pump.keep_alive;
                pump.silence.as_mut().reset(deadline);
                return Some((Ok::<_, Infallible>(Frame::data(bytes)), pump));
            }
            if pump.writer.frames().ended {
                return None;
            }
            tokio::select! {
                next = pump.events.next() => pump.writer.write(next, &mut pump.events).await,
                () = &mut pump.silence => {
                    let deadline = tokio::time::Instant::now() + pump.keep_alive;
                    pump.silence.as_mut().reset(deadline);
                    let comment = Frame::data(Bytes::from_static(KEEP_ALIVE_LINE));
                    return Some((Ok(comment), pump));
                }
            }
        }
    });
    crate::sse::streaming_response(
        BodyExt::boxed_unsync(StreamBody::new(frames)),
        "text/event-stream; charset=utf-8",
    )
}
