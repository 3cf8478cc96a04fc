//! The log output: its format and its filter (`OTEL_LOG_FORMAT`,
//! `RUST_LOG`, `OTEL_LOG_LEVEL`).

use crate::env::{self, Env, Warnings};
use crate::error::Error;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line, with `trace_id`, `span_id`, `trace_flags`.
    Json,
    /// JSON with Elastic Common Schema names (`@timestamp`, `trace.id`, ...).
    Ecs,
    /// `key=value` pairs (`trace_id=...`).
    Logfmt,
    /// Human-readable lines (`tracing-subscriber`'s format), for terminals.
    Text,
}

impl LogFormat {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "ecs" => Some(Self::Ecs),
            "logfmt" => Some(Self::Logfmt),
            "text" | "pretty" | "human" => Some(Self::Text),
            _ => None,
        }
    }
}

/// The format given in code, else `OTEL_LOG_FORMAT`, else text on a
/// terminal and JSON elsewhere.
pub(super) fn resolve_log_format(
    code: Option<LogFormat>,
    env: &Env,
    w: &mut Warnings,
) -> LogFormat {
    code.unwrap_or_else(|| match env.get(env::OTEL_LOG_FORMAT) {
        Some(value) => LogFormat::parse(&value).unwrap_or_else(|| {
            w.push(format!(
                "{}={value} is not json, ecs, logfmt or text; using json",
                env::OTEL_LOG_FORMAT
            ));
            LogFormat::Json
        }),
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => LogFormat::Text,
        None => LogFormat::Json,
    })
}

pub(super) fn resolve_log_filter(
    code: Option<String>,
    env: &Env,
    w: &mut Warnings,
) -> Result<String, Error> {
    use tracing_subscriber::EnvFilter;
    if let Some(filter) = code {
        EnvFilter::builder()
            .parse(&filter)
            .map_err(|e| Error::config("log_filter", format!("`{filter}`: {e}")))?;
        return Ok(filter);
    }
    let mut filter = match env.get(env::RUST_LOG) {
        Some(value) => match EnvFilter::builder().parse(&value) {
            Ok(_) => value,
            Err(e) => {
                w.push(format!(
                    "{}={value} is not a valid filter ({e}); using info",
                    env::RUST_LOG
                ));
                "info".to_owned()
            }
        },
        None => "info".to_owned(),
    };
    if let Some(level) = env.get(env::OTEL_LOG_LEVEL) {
        match level.to_ascii_lowercase().as_str() {
            l @ ("error" | "warn" | "info" | "debug" | "trace") => {
                if !filter.contains("observability_core") {
                    filter.push_str(",observability_core=");
                    filter.push_str(l);
                }
            }
            _ => w.push(format!(
                "{}={level} is not error, warn, info, debug or trace; using info",
                env::OTEL_LOG_LEVEL
            )),
        }
    }
    Ok(filter)
}
