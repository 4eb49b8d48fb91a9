//! Bodies that misbehave on the wire, for [`Fault`](crate::Fault)s such as `gzip_bomb`,
//! `endless` and `reset_mid_body`: streamed as the client reads them and counted in a
//! [`Meter`](crate::Meter).

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use flate2::{Compress, Compression, Crc, FlushCompress};
use futures_util::stream;

use super::connections::ResetSwitch;
use super::faults::{BadBody, BodyGuard, Gate, Meter};

/// Blanks, the padding of the oversized and endless pages (valid JSON whitespace).
static BLANKS: [u8; 64 * 1024] = [b' '; 64 * 1024];
/// A page of one job, which the broken bodies send half of.
const ONE_JOB_PAGE: &str = r#"{"links":[],"results":[{"id":"605ccba3c1c7613f423e1585","state":"Queued","createdAt":"2026-08-10T03:28:25Z"}],"totalCount":1}"#;
/// What the trickle sends, one byte at a time.
const EMPTY_PAGE: &str = r#"{"links":[],"results":[],"totalCount":0}"#;
/// The start and end of a padded page: `{"results":[]` blanks `}`.
const PAGE_START: &[u8] = br#"{"results":[]"#;
const PAGE_END: &[u8] = b"}";

/// An error that breaks a body off on purpose.
type Broken = std::io::Error;

/// The answer for `bad`, counting into `meter`. `reset` is the connection's switch, when the
/// stand-in serves it (see `connections`).
pub(super) fn respond(bad: BadBody, meter: &Meter, reset: Option<ResetSwitch>) -> Response {
    let guard = meter.start();
    let (body, length, gzip) = match bad {
        BadBody::Oversized(bytes, gate) => (padded_page(guard, bytes, gate), Some(bytes), false),
        BadBody::GzipBomb(inflated) => (gzip_bomb(guard, inflated), None, true),
        BadBody::Endless => (endless(guard), None, false),
        BadBody::Trickle(every) => (trickle(guard, every), Some(EMPTY_PAGE.len() as u64), false),
        BadBody::ResetMidBody => (
            half_then_fail(guard, reset),
            Some(ONE_JOB_PAGE.len() as u64),
            false,
        ),
        BadBody::TruncatedChunked => (half_then_fail(guard, None), None, false),
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// `{"results":[]`, blanks, `}`: `bytes` bytes in all, a chunk at a time, the first once
/// `gate` (if any) is open.
fn padded_page(guard: BodyGuard, bytes: u64, gate: Option<Gate>) -> Body {
    let state = (guard, 0u64, gate);
    Body::from_stream(stream::unfold(
        state,
        move |(guard, sent, gate)| async move {
            if sent >= bytes {
                return None;
            }
            if let Some(gate) = &gate {
                gate.pass().await;
            }
            let left = usize::try_from(bytes - sent).unwrap_or(usize::MAX);
            let chunk = if sent == 0 {
                Bytes::from_static(PAGE_START)
            } else if left <= PAGE_END.len() {
                Bytes::from_static(PAGE_END)
            } else {
                let n = (left - PAGE_END.len()).min(BLANKS.len());
                Bytes::from_static(&BLANKS[..n])
            };
            let chunk = chunk.slice(..chunk.len().min(left));
            guard.count(chunk.len(), chunk.len());
            let sent = sent + chunk.len() as u64;
            Some((Ok::<_, Broken>(chunk), (guard, sent, None)))
        },
    ))
}

/// `{"results":[` and then blanks for ever.
fn endless(guard: BodyGuard) -> Body {
    Body::from_stream(stream::unfold((guard, true), |(guard, first)| async move {
        let chunk = if first {
            Bytes::from_static(br#"{"results":["#)
        } else {
            Bytes::from_static(&BLANKS)
        };
        guard.count(chunk.len(), chunk.len());
        Some((Ok::<_, Broken>(chunk), (guard, false)))
    }))
}

/// An empty page, one byte every `every`.
fn trickle(guard: BodyGuard, every: Duration) -> Body {
    Body::from_stream(stream::unfold(
        (guard, 0usize),
        move |(guard, at)| async move {
            if at >= EMPTY_PAGE.len() {
                return None;
            }
            if at > 0 {
                tokio::time::sleep(every).await;
            }
            guard.count(1, 1);
            let byte = Bytes::from_static(&EMPTY_PAGE.as_bytes()[at..=at]);
            Some((Ok::<_, Broken>(byte), (guard, at + 1)))
        },
    ))
}

/// Half of a page of one job, then an error, which makes hyper drop the connection: with
/// `reset` flipped first, the close is a reset.
fn half_then_fail(guard: BodyGuard, reset: Option<ResetSwitch>) -> Body {
    let half = &ONE_JOB_PAGE.as_bytes()[..ONE_JOB_PAGE.len() / 2];
    Body::from_stream(stream::unfold(
        (guard, reset, false),
        move |(guard, reset, sent)| async move {
            if !sent {
                guard.count(half.len(), half.len());
                return Some((Ok(Bytes::from_static(half)), (guard, reset, true)));
            }
            // Once pending, so that hyper writes the half out before the error drops the
            // connection; a reset would discard what is still in its buffer.
            tokio::task::yield_now().await;
            if let Some(switch) = &reset {
                switch.flip();
            }
            let broken = Broken::other("the stand-in breaks this body off on purpose");
            Some((Err(broken), (guard, None, true)))
        },
    ))
}

/// The pieces of a gzip bomb: raw deflate for the page's start, for one block of blanks and
/// for the page's end, each ending on a full flush so the block can be repeated as it is.
struct Bomb {
    start: Vec<u8>,
    block: Vec<u8>,
    end: Vec<u8>,
    block_crc: Crc,
}

/// Blanks per repeated block: one MiB, which deflates to about a KiB.
const BOMB_BLOCK: usize = 1 << 20;

fn bomb() -> &'static Bomb {
    static BOMB: OnceLock<Bomb> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut deflate = Compress::new(Compression::best(), false);
        let mut piece = |input: &[u8], flush| {
            let mut out = Vec::with_capacity(input.len() / 256 + 64);
            let mut read = 0;
            loop {
                out.reserve(4096);
                let before = deflate.total_in();
                // Compressing into a Vec cannot fail: the stream is never corrupt.
                let _ = deflate.compress_vec(&input[read..], &mut out, flush);
                read += (deflate.total_in() - before) as usize;
                if read == input.len() && out.len() < out.capacity() {
                    return out;
                }
            }
        };
        let blanks = vec![b' '; BOMB_BLOCK];
        let mut block_crc = Crc::new();
        block_crc.update(&blanks);
        Bomb {
            start: piece(PAGE_START, FlushCompress::Full),
            block: piece(&blanks, FlushCompress::Full),
            end: piece(PAGE_END, FlushCompress::Finish),
            block_crc,
        }
    })
}

/// A gzip member that inflates to `{"results":[]`, at least `inflated` bytes of blanks in
/// one-MiB blocks, and `}`: the header and start, one compressed block per chunk, then the
/// end and the trailer (CRC-32 and length of what it inflates to).
fn gzip_bomb(guard: BodyGuard, inflated: u64) -> Body {
    let blocks = inflated.div_ceil(BOMB_BLOCK as u64);
    Body::from_stream(stream::unfold(
        (guard, 0u64),
        move |(guard, at)| async move {
            let bomb = bomb();
            let chunk = if at == 0 {
                // Magic, deflate, no flags, no time, best compression, unknown OS.
                let mut head = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];
                head.extend_from_slice(&bomb.start);
                guard.count(head.len(), PAGE_START.len());
                head
            } else if at <= blocks {
                guard.count(bomb.block.len(), BOMB_BLOCK);
                bomb.block.clone()
            } else if at == blocks + 1 {
                let mut crc = Crc::new();
                crc.update(PAGE_START);
                for _ in 0..blocks {
                    crc.combine(&bomb.block_crc);
                }
                crc.update(PAGE_END);
                let mut tail = bomb.end.clone();
                tail.extend_from_slice(&crc.sum().to_le_bytes());
                tail.extend_from_slice(&crc.amount().to_le_bytes());
                guard.count(tail.len(), PAGE_END.len());
                tail
            } else {
                return None;
            };
            Some((Ok::<_, Broken>(Bytes::from(chunk)), (guard, at + 1)))
        },
    ))
}
