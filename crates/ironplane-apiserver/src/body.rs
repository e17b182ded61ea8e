//! Response bodies (whole, streamed from a channel, or streamed from cached objects) and
//! reading request bodies within upstream's 3 MiB limit.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use ironplane_apimachinery::ApiError;
use ironplane_apimachinery::codec::MAX_REQUEST_BODY_BYTES;
use tokio::sync::mpsc;

/// The body of every response.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A response.
pub type Response = http::Response<Body>;

/// A request as the server receives it.
pub type Request = http::Request<hyper::body::Incoming>;

/// A body holding these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A body fed by a channel: each message is sent as it arrives (watch streams). The body ends
/// when every sender is dropped; dropping the body (client gone) makes sends fail.
pub fn channel(receiver: mpsc::Receiver<Bytes>) -> Body {
    ChannelBody { receiver }.boxed_unsync()
}

struct ChannelBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(bytes)) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A body that produces its bytes piece by piece from an iterator, batching small pieces into
/// chunks of about 64 KiB: a large list is written without ever being held whole.
pub fn chunked<I>(pieces: I) -> Body
where
    I: Iterator<Item = Bytes> + Send + Unpin + 'static,
{
    ChunkedBody {
        pieces,
        done: false,
    }
    .boxed_unsync()
}

const CHUNK_BYTES: usize = 64 * 1024;

struct ChunkedBody<I> {
    pieces: I,
    done: bool,
}

impl<I> http_body::Body for ChunkedBody<I>
where
    I: Iterator<Item = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut chunk = BytesMut::new();
        loop {
            match self.pieces.next() {
                Some(piece) if chunk.is_empty() && piece.len() >= CHUNK_BYTES => {
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
                Some(piece) => {
                    chunk.extend_from_slice(&piece);
                    if chunk.len() >= CHUNK_BYTES {
                        break;
                    }
                }
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        if chunk.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(Frame::data(chunk.freeze()))))
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Read a request body, refusing more than 3 MiB with 413 as upstream does.
pub async fn read_limited(body: hyper::body::Incoming) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_REQUEST_BODY_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(
            ApiError::request_entity_too_large(&format!("limit is {MAX_REQUEST_BODY_BYTES}")),
        ),
        Err(err) => Err(ApiError::bad_request(format!(
            "failed to read the request body: {err}"
        ))),
    }
}
