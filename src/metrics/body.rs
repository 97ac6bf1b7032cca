//! A body wrapper that counts data bytes as they flow through it (request bodies as the
//! handlers read them, response bodies as hyper sends them) into the received/sent
//! counters. Nothing is buffered: each frame is counted and passed on.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Which counter a [`Counted`] body adds to.
#[derive(Clone, Copy, Debug)]
pub enum Direction {
    Received,
    Sent,
}

pub struct Counted<B> {
    inner: B,
    direction: Direction,
}

impl<B> Counted<B> {
    pub fn new(inner: B, direction: Direction) -> Self {
        Self { inner, direction }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let n = data.len() as u64;
                match self.direction {
                    Direction::Received => super::global().received(n),
                    Direction::Sent => super::global().sent(n),
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
