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
/// chunks of at most 64 KiB: a large list is written without ever being held whole.
pub fn chunked<I>(pieces: I) -> Body
where
    I: Iterator<Item = Bytes> + Send + Unpin + 'static,
{
    ChunkedBody {
        pieces,
        pending: None,
        done: false,
    }
    .boxed_unsync()
}

const CHUNK_BYTES: usize = 64 * 1024;

struct ChunkedBody<I> {
    pieces: I,
    /// A piece that did not fit the last chunk: it starts the next one.
    pending: Option<Bytes>,
    /// The iterator is exhausted.
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
        // A chunk is allocated at its full size and never grows: growing by doubling copied each
        // chunk's bytes about once more (and the allocator may not reallocate in place).
        let mut chunk: Option<BytesMut> = None;
        loop {
            let piece = match self.pending.take() {
                Some(piece) => piece,
                None if self.done => break,
                None => match self.pieces.next() {
                    Some(piece) => piece,
                    None => {
                        self.done = true;
                        break;
                    }
                },
            };
            match &mut chunk {
                None if piece.len() >= CHUNK_BYTES => {
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
                None => {
                    let mut fresh = BytesMut::with_capacity(CHUNK_BYTES);
                    fresh.extend_from_slice(&piece);
                    chunk = Some(fresh);
                }
                Some(full) if full.len() + piece.len() > CHUNK_BYTES => {
                    self.pending = Some(piece);
                    break;
                }
                Some(open) => open.extend_from_slice(&piece),
            }
        }
        Poll::Ready(chunk.map(|chunk| Ok(Frame::data(chunk.freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_none()
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

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    /// The frames of a chunked body of `sizes`-byte pieces (piece i filled with byte i).
    async fn frames(sizes: &[usize]) -> (Vec<Bytes>, Vec<u8>) {
        let pieces: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from(vec![i as u8; n]))
            .collect();
        let expected = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        let mut body = chunked(pieces.into_iter());
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                frames.push(data);
            }
        }
        assert!(http_body::Body::is_end_stream(&body));
        (frames, expected)
    }

    #[tokio::test]
    async fn chunks_hold_whole_pieces_up_to_64_kib_in_order() {
        let sizes = [1300; 200];
        let (frames, expected) = frames(&sizes).await;
        assert_eq!(frames.concat(), expected);
        // 50 pieces of 1,300 bytes fit a chunk, the 51st does not.
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0].len(), 50 * 1300);
        assert!(frames.iter().all(|f| f.len() <= CHUNK_BYTES));
    }

    #[tokio::test]
    async fn a_piece_of_a_chunk_or_more_goes_alone() {
        let sizes = [10, CHUNK_BYTES + 5, 20, CHUNK_BYTES - 20, 30];
        let (frames, expected) = frames(&sizes).await;
        assert_eq!(frames.concat(), expected);
        let lens: Vec<usize> = frames.iter().map(Bytes::len).collect();
        assert_eq!(lens, vec![10, CHUNK_BYTES + 5, CHUNK_BYTES, 30]);
    }

    #[tokio::test]
    async fn no_pieces_no_frames() {
        let (frames, _) = frames(&[]).await;
        assert!(frames.is_empty());
    }
}
