//! Logs to stderr in the two formats Prometheus exporters offer, `--log.format logfmt|json`.
//!
//! logfmt follows the go-kit layout users know from other exporters:
//! `ts=2026-11-28T16:39:23.123Z level=info msg="listening" address=[::]:9947`. The exporter's own events pass
//! at the chosen `--log.level`; its dependencies (hyper, reqwest...) only from `warn` up, so `debug` shows
//! the exporter's work rather than every socket read.
//!
//! JSON is `tracing-subscriber`'s. The logfmt formatter is this module's own, under 170 lines,
//! because no maintained crate writes that layout: `tracing-logfmt`, the logfmt layer for
//! `tracing`, names the message `message` rather than `msg`, quotes it only when it must, stamps
//! nanoseconds rather than go-kit's milliseconds, escapes with Rust's `escape_debug`, and prints an
//! error without its causes. The tests below hold each of those points.

use std::error::Error;
use std::fmt::{self, Write as _};

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The events of this crate (library and binary share the name) are filtered by `--log.level`.
const CRATE_TARGET: &str = env!("CARGO_CRATE_NAME");

/// `--log.level`: the least severe level that is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
        }
    }
}

/// `--log.format`: go-kit logfmt for people, JSON for log pipelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// Installs the process-wide subscriber, writing to stderr. Also routes the `log` crate's records (reqwest
/// uses it) through the same filter and format. A second call does nothing: the first subscriber stays.
pub fn init(level: LogLevel, format: LogFormat) {
    // The only failure is a subscriber already installed, which keeps working.
    let _ = dispatch(level, format, std::io::stderr).try_init();
}

/// Builds the subscriber without installing it, for tests that capture logs with
/// `tracing::dispatcher::with_default`.
pub fn dispatch<W>(level: LogLevel, format: LogFormat, writer: W) -> Dispatch
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(filter(level));
    match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .fmt_fields(LogfmtFields)
                    .event_format(Logfmt)
                    .with_writer(writer),
            )
            .into(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_span_list(false)
                    .with_timer(UtcMillis)
                    .with_writer(writer),
            )
            .into(),
    }
}

/// This crate at `level`; everything else at `warn` or above (or `error` when that is the level).
fn filter(level: LogLevel) -> Targets {
    let dependencies = LevelFilter::WARN.min(level.filter());
    Targets::new()
        .with_default(dependencies)
        .with_target(CRATE_TARGET, level.filter())
}

/// RFC 3339 in UTC with milliseconds, as Prometheus and its exporters print `ts`.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

struct UtcMillis;

impl FormatTime for UtcMillis {
    fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
        let now = OffsetDateTime::now_utc()
            .format(TIMESTAMP)
            .map_err(|_| fmt::Error)?;
        writer.write_str(&now)
    }
}

/// go-kit logfmt: `ts=... level=... msg="..."`, then the event's fields, then those of its spans, outermost
/// first. `msg` is always quoted, other values only when they must be.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = FieldPairs::default();
        event.record(&mut fields);
        writer.write_str("ts=")?;
        UtcMillis.format_time(&mut writer)?;
        write!(
            writer,
            " level={} msg=",
            level_name(*event.metadata().level())
        )?;
        let mut message = String::new();
        write_quoted(&mut message, fields.message.as_deref().unwrap_or_default());
        writer.write_str(&message)?;
        if !fields.logfmt.is_empty() {
            write!(writer, " {}", fields.logfmt)?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<N>>() {
                    if !formatted.fields.is_empty() {
                        write!(writer, " {}", formatted.fields)?;
                    }
                }
            }
        }
        writeln!(writer)
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Formats span fields as logfmt pairs, stored with the span and appended to each of its events.
struct LogfmtFields;

impl<'writer> FormatFields<'writer> for LogfmtFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut pairs = FieldPairs::default();
        fields.record(&mut pairs);
        if let Some(message) = pairs.message.take() {
            pairs.push("msg", &message);
        }
        writer.write_str(&pairs.logfmt)
    }
}

/// Collects fields as `key=value` pairs, keeping the event's message apart for `msg=`.
#[derive(Default)]
struct FieldPairs {
    message: Option<String>,
    /// The fields other than the message, as logfmt.
    logfmt: String,
}

impl FieldPairs {
    fn push(&mut self, key: &str, value: &str) {
        if !self.logfmt.is_empty() {
            self.logfmt.push(' ');
        }
        self.logfmt.push_str(key);
        self.logfmt.push('=');
        write_value(&mut self.logfmt, value);
    }

    fn record(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            // Added to records from the `log` crate; the formatter does not show sources.
            name if name.starts_with("log.") => {}
            name => self.push(name, value),
        }
    }
}

impl Visit for FieldPairs {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        // The whole chain, as anyhow's `{:#}` prints it: the outermost error alone is often "request failed".
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(error) = source {
            let _ = write!(text, ": {error}");
            source = error.source();
        }
        self.record(field, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, &format!("{value:?}"));
    }
}

/// Writes a value bare when it can be read back unambiguously, quoted otherwise.
fn write_value(out: &mut String, value: &str) {
    let needs_quotes = value.is_empty()
        || value
            .chars()
            .any(|c| c <= ' ' || c == '=' || c == '"' || c.is_control() || c.is_whitespace());
    if needs_quotes {
        write_quoted(out, value);
    } else {
        out.push_str(value);
    }
}

/// Writes `"value"` with quotes, backslashes and control characters escaped, so one event stays one line.
fn write_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// Collects everything the subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Capture {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().map(|bytes| bytes.clone()).unwrap_or_default();
            String::from_utf8(bytes)
                .expect("logs are UTF-8")
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Ok(mut bytes) = self.0.lock() {
                bytes.extend_from_slice(buf);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    fn capture(level: LogLevel, format: LogFormat, log: impl FnOnce()) -> Vec<String> {
        let capture = Capture::default();
        tracing::dispatcher::with_default(&dispatch(level, format, capture.clone()), log);
        capture.lines()
    }

    /// Splits off `ts=...` after checking it is RFC 3339 UTC with milliseconds.
    fn without_timestamp(line: &str) -> &str {
        let (ts, rest) = line.split_once(' ').expect("a space after ts");
        let ts = ts.strip_prefix("ts=").expect("ts first");
        assert_eq!(ts.len(), "2026-11-28T16:39:23.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z'), "{ts}");
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339 timestamp");
        rest
    }

    #[test]
    fn logfmt_looks_like_go_kit() {
        let lines = capture(LogLevel::Info, LogFormat::Logfmt, || {
            tracing::info!(address = "[::]:9947", "listening");
        });
        assert_eq!(lines.len(), 1);
        assert_eq!(
            without_timestamp(&lines[0]),
            r#"level=info msg="listening" address=[::]:9947"#
        );
    }

    #[test]
    fn logfmt_quotes_and_escapes_values_that_need_it() {
        let lines = capture(LogLevel::Info, LogFormat::Logfmt, || {
            tracing::warn!(
                plain = "Cluster0",
                spaced = "two words",
                equals = "a=b",
                quoted = r#"say "hi""#,
                newline = "line one\nline two",
                tab = "a\tb",
                backslash = r"C:\path",
                quoted_backslash = r#"C:\my "dir""#,
                escape = "\u{1b}[31mred",
                empty = "",
                number = 42,
                flag = true,
                "cluster \"Cluster0\" failed:\nstatus=500"
            );
        });
        assert_eq!(
            without_timestamp(&lines[0]),
            concat!(
                r#"level=warn msg="cluster \"Cluster0\" failed:\nstatus=500" plain=Cluster0 "#,
                r#"spaced="two words" equals="a=b" quoted="say \"hi\"" newline="line one\nline two" "#,
                r#"tab="a\tb" backslash=C:\path quoted_backslash="C:\\my \"dir\"" escape="\u{001b}[31mred" "#,
                r#"empty="" number=42 flag=true"#
            )
        );
    }

    #[test]
    fn logfmt_always_quotes_msg_even_when_empty() {
        let lines = capture(LogLevel::Info, LogFormat::Logfmt, || {
            tracing::error!(code = 500);
        });
        assert_eq!(
            without_timestamp(&lines[0]),
            r#"level=error msg="" code=500"#
        );
    }

    #[test]
    fn logfmt_appends_span_fields_outermost_first() {
        let lines = capture(LogLevel::Debug, LogFormat::Logfmt, || {
            let scrape = tracing::info_span!("scrape", scrape_id = 7);
            let _scrape = scrape.enter();
            let cluster = tracing::debug_span!(
                "cluster",
                group_id = "5f1a2b3c4d5e6f7a8b9c0d1e",
                cluster_name = "my cluster"
            );
            let _cluster = cluster.enter();
            tracing::debug!(page = 2, "fetched");
        });
        assert_eq!(
            without_timestamp(&lines[0]),
            r#"level=debug msg="fetched" page=2 scrape_id=7 group_id=5f1a2b3c4d5e6f7a8b9c0d1e cluster_name="my cluster""#
        );
    }

    #[test]
    fn logfmt_prints_an_error_with_its_causes() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("listing export jobs failed")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Outer(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        let lines = capture(LogLevel::Info, LogFormat::Logfmt, || {
            tracing::warn!(error = &error as &(dyn Error + 'static), "scrape degraded");
        });
        assert_eq!(
            without_timestamp(&lines[0]),
            r#"level=warn msg="scrape degraded" error="listing export jobs failed: deadline passed""#
        );
    }

    #[test]
    fn the_level_filters_this_crate_and_dependencies_stay_at_warn() {
        let log = || {
            tracing::debug!("own debug");
            tracing::info!("own info");
            tracing::warn!("own warn");
            tracing::info!(target: "hyper::proto", "dependency info");
            tracing::warn!(target: "reqwest::connect", "dependency warn");
            tracing::error!(target: "hyper::proto", "dependency error");
        };
        let messages = |level| -> Vec<String> {
            capture(level, LogFormat::Logfmt, log)
                .iter()
                .map(|line| {
                    let (_, msg) = line.split_once("msg=").expect("msg");
                    msg.trim_matches('"').to_owned()
                })
                .collect()
        };
        assert_eq!(
            messages(LogLevel::Debug),
            [
                "own debug",
                "own info",
                "own warn",
                "dependency warn",
                "dependency error"
            ]
        );
        assert_eq!(
            messages(LogLevel::Info),
            [
                "own info",
                "own warn",
                "dependency warn",
                "dependency error"
            ]
        );
        assert_eq!(
            messages(LogLevel::Warn),
            ["own warn", "dependency warn", "dependency error"]
        );
        assert_eq!(messages(LogLevel::Error), ["dependency error"]);
    }

    #[test]
    fn json_flattens_event_fields() {
        let lines = capture(LogLevel::Info, LogFormat::Json, || {
            tracing::info!(address = "[::]:9947", clusters = 3, "listening");
        });
        assert_eq!(lines.len(), 1);
        let event: serde_json::Value =
            serde_json::from_str(&lines[0]).expect("one JSON object per line");
        assert_eq!(event["level"], "INFO");
        assert_eq!(event["message"], "listening");
        assert_eq!(event["address"], "[::]:9947");
        assert_eq!(event["clusters"], 3);
        let timestamp = event["timestamp"].as_str().expect("timestamp");
        time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339 timestamp");
    }

    #[test]
    fn value_quoting_rules() {
        let quote = |value: &str| {
            let mut out = String::new();
            write_value(&mut out, value);
            out
        };
        assert_eq!(quote("Cluster0"), "Cluster0");
        assert_eq!(
            quote("https://cloud.mongodb.com/api?x"),
            "https://cloud.mongodb.com/api?x"
        );
        assert_eq!(quote("é"), "é");
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote("a b"), r#""a b""#);
        assert_eq!(quote("a=b"), r#""a=b""#);
        assert_eq!(quote(r#"a"b"#), r#""a\"b""#);
        assert_eq!(quote("a\r\nb"), r#""a\r\nb""#);
        assert_eq!(quote("a\u{a0}b"), "\"a\u{a0}b\"");
        assert_eq!(quote("\u{7f}"), r#""\u{007f}""#);
    }
}
