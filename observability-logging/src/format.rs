//! The shape of a line, on two axes chosen once when the layer is built:
//! the syntax (JSON or logfmt) and the names of the fixed keys (plain or
//! Elastic Common Schema).

/// The shape of each line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per line with `timestamp`, `level`, `message`,
    /// `target`, `trace_id`, `span_id`, `trace_flags`, `service.name` and the
    /// fields as top-level keys.
    #[default]
    Json,
    /// Elastic Common Schema names: `@timestamp`, `log.level`, `message`,
    /// `log.logger`, `trace.id`, `span.id`, `service.name`,
    /// `service.environment`, `ecs.version`.
    Ecs,
    /// `key=value` pairs (`trace_id=...`), values quoted when needed.
    Logfmt,
}

impl Format {
    /// Parses `json`, `ecs` or `logfmt` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "ecs" => Some(Self::Ecs),
            "logfmt" => Some(Self::Logfmt),
            _ => None,
        }
    }

    /// How keys and values are written.
    pub(crate) fn syntax(self) -> Syntax {
        match self {
            Self::Json | Self::Ecs => Syntax::Json,
            Self::Logfmt => Syntax::Logfmt,
        }
    }

    /// The names of the fixed keys.
    pub(crate) fn keys(self) -> &'static Keys {
        match self {
            Self::Json => &PLAIN,
            Self::Ecs => &ECS,
            Self::Logfmt => &LOGFMT,
        }
    }
}

/// How keys and values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// `{"key":value,...}`, strings quoted and escaped.
    Json,
    /// `key=value ...`, values quoted only when needed.
    Logfmt,
}

/// The names of the fixed keys of a line.
#[derive(Debug)]
pub(crate) struct Keys {
    pub(crate) timestamp: &'static str,
    pub(crate) level: &'static str,
    /// Levels written in lowercase (`info`) rather than `INFO`.
    pub(crate) lowercase_level: bool,
    pub(crate) message: &'static str,
    pub(crate) target: &'static str,
    pub(crate) trace_id: &'static str,
    pub(crate) span_id: &'static str,
    /// `None`: the flags are not written.
    pub(crate) trace_flags: Option<&'static str>,
    pub(crate) environment: &'static str,
    /// `Some((key, value))`: a schema version written on every line.
    pub(crate) schema_version: Option<(&'static str, &'static str)>,
}

const PLAIN: Keys = Keys {
    timestamp: "timestamp",
    level: "level",
    lowercase_level: false,
    message: "message",
    target: "target",
    trace_id: "trace_id",
    span_id: "span_id",
    trace_flags: Some("trace_flags"),
    environment: "deployment.environment.name",
    schema_version: None,
};

const ECS: Keys = Keys {
    timestamp: "@timestamp",
    level: "log.level",
    lowercase_level: true,
    message: "message",
    target: "log.logger",
    trace_id: "trace.id",
    span_id: "span.id",
    trace_flags: None,
    environment: "service.environment",
    schema_version: Some(("ecs.version", "8.11.0")),
};

const LOGFMT: Keys = Keys {
    timestamp: "timestamp",
    level: "level",
    lowercase_level: true,
    message: "msg",
    target: "target",
    trace_id: "trace_id",
    span_id: "span_id",
    trace_flags: Some("trace_flags"),
    environment: "deployment.environment.name",
    schema_version: None,
};
