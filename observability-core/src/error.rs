use std::time::Duration;

/// What can go wrong while setting telemetry up or shutting it down.
///
/// Settings read from the environment never produce an error: a bad value
/// there warns once and falls back to the default. Settings given in code do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting given in code is invalid.
    #[error("invalid `{setting}`: {message}")]
    InvalidConfig {
        /// The builder method that received the value.
        setting: &'static str,
        /// What is wrong with it, and what to do.
        message: String,
    },
    /// A global `tracing` subscriber is already installed, so `init` could not
    /// install its own.
    #[error(
        "a global tracing subscriber is already installed; call init() once, \
         before any other subscriber is set, or use Builder::build for a local one"
    )]
    AlreadyInitialized,
    /// The background export thread could not be started.
    #[error("could not start the export thread")]
    Thread(#[source] std::io::Error),
    /// Shutdown or flush did not finish within its deadline; spans still
    /// queued were dropped and counted.
    #[error("telemetry did not finish flushing within {deadline:?}; {} span(s) were dropped in all", stats.dropped())]
    Timeout {
        /// The deadline that passed.
        deadline: Duration,
        /// The counts when it passed (after shutdown, final).
        stats: crate::export::ExportStats,
    },
    /// Telemetry was already shut down.
    #[error("telemetry is already shut down")]
    AlreadyShutdown,
}

impl Error {
    pub(crate) fn config(setting: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidConfig {
            setting,
            message: message.into(),
        }
    }
}
