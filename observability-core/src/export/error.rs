//! Why an export failed, or why an exporter could not be built: typed, so
//! that [`ExportStats`](super::ExportStats) counts lost spans by cause and
//! the warnings say what happened and what to do.

use std::time::Duration;

/// The cause of a failed export, as counted in [`ExportFailures`].
///
/// [`as_str`](Self::as_str) gives the low-cardinality name used as
/// `error.type` (semantic conventions, "Recording errors").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureCause {
    /// No answer within `OTEL_EXPORTER_OTLP_TIMEOUT` (retries and
    /// `Retry-After` waits included).
    Timeout,
    /// The collector could not be reached: connection refused, name not
    /// resolved, TLS handshake failed, the other protocol answered.
    Unreachable,
    /// The collector answered with an error status (HTTP or gRPC) that was
    /// not worth another attempt, or still failed after the retries.
    Rejected,
    /// The batch could not be encoded or compressed.
    Encoding,
    /// The exporter gave no reason.
    Other,
}

impl FailureCause {
    /// Every cause, in the order of [`ExportFailures`]' fields.
    pub const ALL: [FailureCause; 5] = [
        Self::Timeout,
        Self::Unreachable,
        Self::Rejected,
        Self::Encoding,
        Self::Other,
    ];

    /// The cause's name: `timeout`, `unreachable`, `rejected`, `encoding`,
    /// or `_OTHER` (the conventions' fallback value of `error.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::Rejected => "rejected",
            Self::Encoding => "encoding",
            Self::Other => "_OTHER",
        }
    }
}

impl std::fmt::Display for FailureCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Spans lost to failed exports, by cause; they add up to
/// [`ExportStats::dropped_export_failed`](super::ExportStats::dropped_export_failed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportFailures {
    /// See [`FailureCause::Timeout`].
    pub timeout: u64,
    /// See [`FailureCause::Unreachable`].
    pub unreachable: u64,
    /// See [`FailureCause::Rejected`].
    pub rejected: u64,
    /// See [`FailureCause::Encoding`].
    pub encoding: u64,
    /// See [`FailureCause::Other`].
    pub other: u64,
}

impl ExportFailures {
    /// The spans lost to `cause`.
    pub fn get(&self, cause: FailureCause) -> u64 {
        match cause {
            FailureCause::Timeout => self.timeout,
            FailureCause::Unreachable => self.unreachable,
            FailureCause::Rejected => self.rejected,
            FailureCause::Encoding => self.encoding,
            FailureCause::Other => self.other,
        }
    }

    /// The spans lost to every cause.
    pub fn total(&self) -> u64 {
        FailureCause::ALL.iter().map(|&cause| self.get(cause)).sum()
    }

    pub(crate) fn get_mut(&mut self, cause: FailureCause) -> &mut u64 {
        match cause {
            FailureCause::Timeout => &mut self.timeout,
            FailureCause::Unreachable => &mut self.unreachable,
            FailureCause::Rejected => &mut self.rejected,
            FailureCause::Encoding => &mut self.encoding,
            FailureCause::Other => &mut self.other,
        }
    }

    pub(crate) fn add(&mut self, other: ExportFailures) {
        for cause in FailureCause::ALL {
            *self.get_mut(cause) += other.get(cause);
        }
    }
}

/// Why one export failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
pub(crate) enum ExportError {
    /// No answer before the deadline.
    #[error("no answer from {endpoint} within the export timeout")]
    NoAnswer { endpoint: String },
    /// The collector asked to wait past the deadline.
    #[error("{endpoint} asked to wait {wait:?}, past the export timeout")]
    WaitPastDeadline { endpoint: String, wait: Duration },
    /// The export as a whole outlived its deadline.
    #[error("the export did not end by its deadline")]
    Deadline,
    /// Connecting or talking to the collector failed.
    #[error("{endpoint}: {reason}{hint}")]
    Unreachable {
        endpoint: String,
        reason: String,
        hint: &'static str,
    },
    /// An HTTP error status.
    #[error("the collector answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// A gRPC error status.
    #[error("the collector answered gRPC {name} ({code}): {message}")]
    Grpc {
        code: String,
        name: &'static str,
        message: String,
    },
    /// A gRPC answer without `grpc-status`.
    #[error("the collector answered HTTP {status} without a gRPC status")]
    NoGrpcStatus { status: u16 },
    /// The batch could not be encoded, compressed or framed.
    #[error("could not encode the batch: {0}")]
    Encoding(String),
}

impl ExportError {
    /// What the counters file it under.
    pub(crate) fn cause(&self) -> FailureCause {
        match self {
            Self::NoAnswer { .. } | Self::WaitPastDeadline { .. } | Self::Deadline => {
                FailureCause::Timeout
            }
            Self::Unreachable { .. } => FailureCause::Unreachable,
            Self::Http { .. } | Self::Grpc { .. } | Self::NoGrpcStatus { .. } => {
                FailureCause::Rejected
            }
            Self::Encoding(_) => FailureCause::Encoding,
        }
    }
}

/// Why an exporter could not be built (reported as a warning; that
/// exporter is left out).
#[derive(Debug, thiserror::Error)]
#[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
pub(crate) enum BuildError {
    /// The endpoint is not a URL the HTTP stack takes.
    #[error("`{endpoint}` is not a valid URL: {reason}")]
    Url { endpoint: String, reason: String },
    /// A header from `OTEL_EXPORTER_OTLP_HEADERS` cannot be sent.
    #[error("`{name}` is not a valid header {what}")]
    Header { name: String, what: &'static str },
    /// TLS could not be set up.
    #[error("{0}")]
    Tls(String),
    /// The transport asked for was not compiled in.
    #[cfg_attr(
        all(feature = "otlp-grpc", feature = "otlp-grpc-logs"),
        allow(dead_code)
    )]
    #[error("{what} needs the `{feature}` feature of observability-core{advice}")]
    MissingFeature {
        what: &'static str,
        feature: &'static str,
        advice: &'static str,
    },
    /// `opentelemetry-otlp` refused the settings.
    #[error("{0}")]
    Otlp(String),
}
