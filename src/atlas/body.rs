//! Reading an answer's body within a size limit and a time, and describing what went wrong on
//! the wire, for the client's calls and its token requests.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::config::format_size;

/// Why a body could not be read whole.
pub(super) enum BodyFailure {
    /// Past the limit, announced by `Content-Length` or counted while reading.
    TooLarge,
    /// The connection failed mid-body: reset, closed early, a broken chunk or gzip stream.
    Broken(String),
    /// Still arriving when the attempt's time ran out, after this many bytes.
    TimedOut(usize),
}

impl BodyFailure {
    pub(super) fn describe(&self, limit: u64, timeout: Duration) -> String {
        match self {
            BodyFailure::TooLarge => format!(
                "the answer is larger than atlas.max_response_size ({})",
                format_size(limit)
            ),
            BodyFailure::Broken(message) => message.clone(),
            BodyFailure::TimedOut(read) => format!(
                "the body was still arriving after {} ms ({read} bytes read)",
                timeout.as_millis()
            ),
        }
    }
}

/// The most a body's buffer is given up front, whatever `Content-Length` says.
const MAX_PREALLOCATION: u64 = 1 << 20;

/// Reads a body chunk by chunk as reqwest hands it over (after decompression), keeping at most
/// `limit` bytes: an answer past it is given up at once, so however large, endless or
/// compressed the body is, one request in flight holds no more than `limit`.
pub(super) async fn read_body(
    response: &mut reqwest::Response,
    limit: u64,
    end: tokio::time::Instant,
) -> Result<bytes::Bytes, BodyFailure> {
    let announced = response.content_length();
    if announced.is_some_and(|length| length > limit) {
        return Err(BodyFailure::TooLarge);
    }
    // What the other end announces is a claim, not memory to set aside: past this the buffer
    // grows as bytes actually arrive.
    let capacity =
        usize::try_from(announced.unwrap_or(0).min(limit).min(MAX_PREALLOCATION)).unwrap_or(0);
    let mut body = Vec::with_capacity(capacity);
    loop {
        let chunk = match tokio::time::timeout_at(end, response.chunk()).await {
            Err(_) => return Err(BodyFailure::TimedOut(body.len())),
            Ok(Err(error)) => return Err(BodyFailure::Broken(error_chain(&error))),
            Ok(Ok(None)) => return Ok(body.into()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        append_within(&mut body, &chunk, limit)?;
    }
}

/// Appends `chunk` to `body` unless that would pass `limit`. The buffer grows by doubling as
/// `Vec` does, but never past `limit`, so the buffer itself keeps the promise of [`read_body`].
fn append_within(body: &mut Vec<u8>, chunk: &[u8], limit: u64) -> Result<(), BodyFailure> {
    let needed = body.len() + chunk.len();
    if needed as u64 > limit {
        return Err(BodyFailure::TooLarge);
    }
    if needed > body.capacity() {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let target = body.capacity().saturating_mul(2).max(needed).min(limit);
        body.reserve_exact(target - body.len());
    }
    body.extend_from_slice(chunk);
    Ok(())
}

/// An error and its causes, "error decoding response body: ...: connection reset by peer":
/// reqwest's own message alone does not say what went wrong.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Where a redirect pointed, for the error that refuses it: quoted, control characters
/// escaped, and cut short, since it is whatever the other end sent.
pub(super) fn not_followed(headers: &HeaderMap) -> String {
    const SHOWN: usize = 200;
    match headers.get(reqwest::header::LOCATION) {
        Some(location) => {
            let text = String::from_utf8_lossy(location.as_bytes());
            let mut shown: String = text.chars().take(SHOWN).collect();
            if text.chars().count() > SHOWN {
                shown.push('…');
            }
            format!("redirect to {shown:?} not followed (Atlas does not redirect API calls)")
        }
        None => "redirect without a Location not followed (Atlas does not redirect API calls)"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_buffer_grows_by_doubling_but_never_past_the_limit() {
        let mut body = Vec::new();
        let chunk = [7u8; 300];
        let mut capacities = Vec::new();
        for _ in 0..3 {
            assert!(append_within(&mut body, &chunk, 1000).is_ok());
            capacities.push(body.capacity());
        }
        assert!(append_within(&mut body, &chunk[..100], 1000).is_ok());
        capacities.push(body.capacity());
        // 300, doubled to 600, doubled to 1000 rather than 1200, then full.
        assert_eq!(capacities, [300, 600, 1000, 1000]);
        assert_eq!(body.len(), 1000);
        assert!(matches!(
            append_within(&mut body, &[0], 1000),
            Err(BodyFailure::TooLarge)
        ));
        assert_eq!((body.len(), body.capacity()), (1000, 1000));
    }
}
