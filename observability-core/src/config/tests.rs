//! The configuration, resolved from test environments.

use super::otlp::endpoint_port;
use super::*;
use crate::env::env_of;

fn resolve(vars: &[(&str, &str)]) -> Settings {
    Settings::resolve(CodeSettings::default(), &env_of(vars)).unwrap()
}

fn ratio(vars: &[(&str, &str)]) -> SamplerSetting {
    resolve(vars).sampler
}

fn pb_ratio(r: f64) -> SamplerSetting {
    SamplerSetting::ParentBased(Box::new(SamplerSetting::Ratio(r)))
}

#[test]
fn default_sampler_is_parent_based_ratio_one() {
    assert_eq!(ratio(&[]), pb_ratio(1.0));
    assert_eq!(
        ratio(&[("OTEL_TRACES_SAMPLER_ARG", "0.25")]),
        pb_ratio(0.25)
    );
}

#[test]
fn production_defaults_to_ten_percent() {
    assert_eq!(ratio(&[("ENV", "production")]), pb_ratio(0.1));
    assert_eq!(ratio(&[("ENVIRONMENT", "Prod")]), pb_ratio(0.1));
    assert_eq!(
        ratio(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=production"
        )]),
        pb_ratio(0.1)
    );
    assert_eq!(ratio(&[("ENV", "staging")]), pb_ratio(1.0));
    // An explicit ratio wins over the production default.
    assert_eq!(
        ratio(&[("ENV", "prod"), ("OTEL_TRACES_SAMPLER_ARG", "1")]),
        pb_ratio(1.0)
    );
}

#[test]
fn every_spec_sampler_is_understood_case_insensitively() {
    use SamplerSetting::*;
    let cases = [
        ("always_on", AlwaysOn),
        ("ALWAYS_OFF", AlwaysOff),
        ("TraceIdRatio", Ratio(0.5)),
        ("parentbased_always_on", ParentBased(Box::new(AlwaysOn))),
        ("parentbased_always_off", ParentBased(Box::new(AlwaysOff))),
        ("parentbased_traceidratio", pb_ratio(0.5)),
    ];
    for (name, expected) in cases {
        let s = resolve(&[
            ("OTEL_TRACES_SAMPLER", name),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ]);
        assert_eq!(s.sampler, expected, "{name}");
        assert!(s.warnings.is_empty(), "{name}: {:?}", s.warnings);
    }
    for name in [
        "jaeger_remote",
        "parentbased_jaeger_remote",
        "xray",
        "bogus",
    ] {
        let s = resolve(&[("OTEL_TRACES_SAMPLER", name)]);
        assert_eq!(s.sampler, pb_ratio(1.0), "{name}");
        assert_eq!(s.warnings.len(), 1, "{name}: {:?}", s.warnings);
        assert!(s.warnings[0].contains(name));
    }
}

#[test]
fn bad_sampler_arg_warns_once_and_falls_back() {
    let s = resolve(&[("OTEL_TRACES_SAMPLER_ARG", "1.5")]);
    assert_eq!(s.sampler, pb_ratio(1.0));
    assert_eq!(
        s.warnings,
        ["OTEL_TRACES_SAMPLER_ARG=1.5 is outside [0, 1]; using 1"]
    );
    let s = resolve(&[("OTEL_TRACES_SAMPLER_ARG", "half"), ("ENV", "prod")]);
    assert_eq!(s.sampler, pb_ratio(0.1));
    assert_eq!(s.warnings.len(), 1);
}

#[test]
fn code_ratio_wins_and_is_validated() {
    let code = CodeSettings {
        sample_ratio: Some(0.3),
        ..Default::default()
    };
    let s = Settings::resolve(code, &env_of(&[("OTEL_TRACES_SAMPLER", "always_off")])).unwrap();
    assert_eq!(s.sampler, pb_ratio(0.3));
    for bad in [1.5, -0.1, f64::NAN] {
        let code = CodeSettings {
            sample_ratio: Some(bad),
            ..Default::default()
        };
        let err = Settings::resolve(code, &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("sample_ratio"), "{err}");
    }
}

#[test]
fn exporters() {
    assert_eq!(resolve(&[]).exporters, [Exporter::Otlp]);
    assert_eq!(
        resolve(&[("OTEL_TRACES_EXPORTER", "console")]).exporters,
        [Exporter::Console]
    );
    assert_eq!(
        resolve(&[("OTEL_TRACES_EXPORTER", "NONE")]).exporters,
        [Exporter::None]
    );
    assert_eq!(
        resolve(&[("OTEL_TRACES_EXPORTER", "otlp, console")]).exporters,
        [Exporter::Otlp, Exporter::Console]
    );
    let s = resolve(&[("OTEL_TRACES_EXPORTER", "zipkin")]);
    assert_eq!(s.exporters, [Exporter::Otlp]);
    assert_eq!(s.warnings.len(), 1);
    let code = CodeSettings {
        default_exporter: Some(vec![Exporter::Console]),
        ..Default::default()
    };
    assert_eq!(
        Settings::resolve(code.clone(), &env_of(&[]))
            .unwrap()
            .exporters,
        [Exporter::Console]
    );
    assert_eq!(
        Settings::resolve(code.clone(), &env_of(&[("OTEL_TRACES_EXPORTER", "otlp")]))
            .unwrap()
            .exporters,
        [Exporter::Otlp]
    );
    assert_eq!(
        Settings::resolve(
            code,
            &env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
        )
        .unwrap()
        .exporters,
        [Exporter::Otlp],
        "an endpoint in the environment means OTLP"
    );
}

#[test]
fn otlp_http_endpoint_resolution_follows_the_spec() {
    let ep = |vars: &[(&str, &str)]| resolve(vars).otlp.endpoint;
    assert_eq!(ep(&[]), "http://localhost:4318/v1/traces");
    assert_eq!(
        ep(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]),
        "http://collector:4318/v1/traces"
    );
    assert_eq!(
        ep(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]),
        "http://collector:4318/v1/traces"
    );
    assert_eq!(
        ep(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector/mypath")]),
        "https://collector/mypath/v1/traces"
    );
    assert_eq!(
        ep(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://special:4318/custom"
            )
        ]),
        "http://special:4318/custom"
    );
    assert_eq!(
        ep(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://special:4318")]),
        "http://special:4318",
        "the signal-specific endpoint is used as given"
    );
}

#[test]
fn otlp_grpc_endpoint_and_protocol() {
    let s = resolve(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
    assert_eq!(
        (s.otlp.protocol, s.otlp.endpoint.as_str()),
        (Protocol::Grpc, "http://localhost:4317")
    );
    let s = resolve(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:9000/"),
    ]);
    assert_eq!(
        (s.otlp.protocol, s.otlp.endpoint.as_str()),
        (Protocol::Grpc, "http://c:9000/")
    );
    // Port 4317 with no protocol set: gRPC is inferred, with a note.
    let s = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]);
    assert_eq!(s.otlp.protocol, Protocol::Grpc);
    assert_eq!(s.otlp.endpoint, "http://collector:4317");
    assert_eq!(s.notes.len(), 1);
    // An explicit protocol is never second-guessed.
    let s = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ]);
    assert_eq!(s.otlp.protocol, Protocol::HttpProtobuf);
    assert!(s.notes.is_empty());
    // No scheme: insecure decides.
    let s = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
    ]);
    assert_eq!(s.otlp.endpoint, "http://collector:4317");
    let s = resolve(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317")]);
    assert_eq!(s.otlp.endpoint, "https://collector:4317");
    let s = resolve(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")]);
    assert_eq!(s.otlp.protocol, Protocol::HttpProtobuf);
    assert_eq!(s.warnings.len(), 1);
}

#[test]
fn otlp_headers_compression_timeout() {
    let s = resolve(&[
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "X-Scope-OrgID=tenant-1,authorization=Basic%20abc",
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
    ]);
    assert_eq!(
        s.otlp.headers,
        [
            ("X-Scope-OrgID".to_owned(), "tenant-1".to_owned()),
            ("authorization".to_owned(), "Basic abc".to_owned())
        ]
    );
    assert!(s.otlp.gzip);
    assert_eq!(s.otlp.timeout, Duration::from_millis(2500));
    let s = resolve(&[
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "100"),
    ]);
    assert_eq!(s.otlp.headers, [("b".to_owned(), "2".to_owned())]);
    assert!(!s.otlp.gzip);
    assert_eq!(s.otlp.timeout, Duration::from_millis(100));
    let s = resolve(&[("OTEL_EXPORTER_OTLP_HEADERS", "broken")]);
    assert!(s.otlp.headers.is_empty());
    assert_eq!(s.warnings.len(), 1);
}

#[test]
fn logs_use_the_trace_settings_with_their_own_overrides() {
    assert!(
        resolve(&[]).logs.is_none(),
        "OTEL_LOGS_EXPORTER defaults to none"
    );
    let s = resolve(&[
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-scope-orgid=t1"),
    ]);
    let logs = s.logs.unwrap();
    assert_eq!(logs.endpoint, "http://c:4318/v1/logs");
    assert_eq!(
        logs.headers,
        [("x-scope-orgid".to_owned(), "t1".to_owned())]
    );
    let s = resolve(&[
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:9000/in"),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
    ]);
    let logs = s.logs.unwrap();
    assert_eq!(
        (logs.endpoint.as_str(), logs.protocol),
        ("http://logs:9000/in", Protocol::Grpc)
    );
    assert_eq!(
        s.otlp.protocol,
        Protocol::HttpProtobuf,
        "traces keep theirs"
    );
    let code = CodeSettings {
        endpoint: Some("http://c:4318/v1/traces".into()),
        export_logs: Some(true),
        ..Default::default()
    };
    let s = Settings::resolve(code, &env_of(&[])).unwrap();
    assert_eq!(s.logs.unwrap().endpoint, "http://c:4318/v1/logs");
    let s = resolve(&[("OTEL_LOGS_EXPORTER", "kafka")]);
    assert!(s.logs.is_none());
    assert_eq!(s.warnings.len(), 1);
}

#[test]
fn sizes_counts_and_times_are_bounded() {
    let huge = "18446744073709551615";
    let s = resolve(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", huge),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", huge),
        ("OTEL_BSP_SCHEDULE_DELAY", huge),
        ("OTEL_BSP_EXPORT_TIMEOUT", huge),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", huge),
        ("OBSERVABILITY_BSP_MAX_QUEUE_BYTES", huge),
        ("OBSERVABILITY_OTLP_MAX_REQUEST_BYTES", huge),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", huge),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", huge),
    ]);
    assert_eq!(s.batch.max_queue_size, 1 << 20);
    assert_eq!(s.batch.max_export_batch_size, 1 << 20);
    assert_eq!(s.batch.schedule_delay, Duration::from_secs(3600));
    assert_eq!(s.batch.export_timeout, Duration::from_secs(3600));
    assert_eq!(s.otlp.timeout, Duration::from_secs(3600));
    assert_eq!(s.batch.max_queue_bytes, 4 << 30);
    assert_eq!(s.batch.max_request_bytes, 64 << 20);
    assert_eq!(s.limits.max_attributes_per_span, 1 << 16);
    assert_eq!(s.limits.max_events_per_span, 1 << 16);
    assert_eq!(s.warnings.len(), 9, "{:?}", s.warnings);
    assert!(
        s.warnings.iter().any(|w| w
            == "OTEL_BSP_MAX_QUEUE_SIZE=18446744073709551615 is more than 1048576; using 1048576"),
        "{:?}",
        s.warnings
    );
    let s = resolve(&[("OBSERVABILITY_OTLP_MAX_REQUEST_BYTES", "10")]);
    assert_eq!(s.batch.max_request_bytes, 64 << 10);
    assert_eq!(s.warnings.len(), 1);
    // Attribute values are bounded by default; the variables still win.
    assert_eq!(resolve(&[]).attribute_value_length_limit, Some(4096));
    let s = resolve(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100000")]);
    assert_eq!(s.attribute_value_length_limit, Some(100_000));
}

#[test]
fn batch_settings() {
    let s = resolve(&[]);
    assert_eq!(
        s.batch,
        BatchSettings {
            schedule_delay: Duration::from_secs(5),
            export_timeout: Duration::from_secs(30),
            max_queue_size: 2048,
            max_export_batch_size: 512,
            max_queue_bytes: 16 << 20,
            max_request_bytes: 3 << 20,
            max_concurrent_exports: 4,
        }
    );
    let s = resolve(&[
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "1000"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "128"),
        ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "1"),
    ]);
    assert_eq!(s.batch.schedule_delay, Duration::from_millis(100));
    assert_eq!(s.batch.export_timeout, Duration::from_secs(1));
    assert_eq!(s.batch.max_queue_size, 64);
    assert_eq!(s.batch.max_export_batch_size, 64);
    assert_eq!(s.batch.max_concurrent_exports, 1);
    assert_eq!(s.warnings.len(), 1);
    let s = resolve(&[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "0")]);
    assert_eq!(s.batch.max_concurrent_exports, 4);
    assert_eq!(s.warnings.len(), 1);
    let s = resolve(&[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "1000")]);
    assert_eq!(s.batch.max_concurrent_exports, 64);
    assert!(s.warnings[0].contains("more than 64"), "{:?}", s.warnings);
}

#[test]
fn span_limits() {
    let s = resolve(&[
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "5"),
        ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "3"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "20"),
    ]);
    assert_eq!(s.limits.max_attributes_per_span, 10);
    assert_eq!(s.limits.max_attributes_per_event, 10);
    assert_eq!(s.limits.max_attributes_per_link, 3);
    assert_eq!(s.limits.max_events_per_span, 5);
    assert_eq!(s.attribute_value_length_limit, Some(20));
}

#[test]
fn propagators() {
    use PropagatorKind::*;
    assert_eq!(resolve(&[]).propagators, [TraceContext, Baggage]);
    assert_eq!(
        resolve(&[("OTEL_PROPAGATORS", "baggage")]).propagators,
        [Baggage]
    );
    assert!(
        resolve(&[("OTEL_PROPAGATORS", "none")])
            .propagators
            .is_empty()
    );
    let s = resolve(&[("OTEL_PROPAGATORS", "tracecontext,whatever")]);
    assert_eq!(s.propagators, [TraceContext]);
    assert_eq!(s.warnings.len(), 1);
    // The order is kept: later ones win on extraction.
    let s = resolve(&[(
        "OTEL_PROPAGATORS",
        "xray, B3multi,tracecontext,b3,jaeger,ottrace",
    )]);
    if cfg!(feature = "propagators") {
        assert_eq!(
            s.propagators,
            [Xray, B3Multi, TraceContext, B3, Jaeger, OtTrace]
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    } else {
        assert_eq!(s.propagators, [TraceContext]);
        assert!(s.warnings[0].contains("feature"), "{:?}", s.warnings);
    }
}

#[test]
fn sdk_disabled_and_log_filter() {
    assert!(resolve(&[("OTEL_SDK_DISABLED", "true")]).disabled);
    assert!(!resolve(&[]).disabled);
    assert_eq!(resolve(&[]).log_filter, "info");
    assert_eq!(
        resolve(&[("RUST_LOG", "warn,my_app=debug")]).log_filter,
        "warn,my_app=debug"
    );
    let s = resolve(&[("RUST_LOG", "foo=[[[")]);
    assert_eq!(s.log_filter, "info");
    assert_eq!(s.warnings.len(), 1);
    assert_eq!(
        resolve(&[("OTEL_LOG_LEVEL", "debug")]).log_filter,
        "info,observability_core=debug"
    );
}

#[test]
fn code_settings_that_are_wrong_are_errors() {
    let code = CodeSettings {
        endpoint: Some("localhost:4317".into()),
        ..Default::default()
    };
    assert!(Settings::resolve(code, &env_of(&[])).is_err());
    let code = CodeSettings {
        log_filter: Some("a=[[".into()),
        ..Default::default()
    };
    assert!(Settings::resolve(code, &env_of(&[])).is_err());
    let code = CodeSettings {
        shutdown_timeout: Some(Duration::ZERO),
        ..Default::default()
    };
    assert!(Settings::resolve(code, &env_of(&[])).is_err());
}

#[test]
fn ports() {
    assert_eq!(endpoint_port("http://a:4317"), Some(4317));
    assert_eq!(endpoint_port("http://a:4317/v1"), Some(4317));
    assert_eq!(endpoint_port("http://[::1]:4317"), Some(4317));
    assert_eq!(endpoint_port("http://[::1]"), None);
    assert_eq!(endpoint_port("http://a"), None);
}

#[test]
fn metrics_follow_the_spec_variables() {
    use observability_metrics::{ExemplarFilter, TemporalityPreference};
    // Unset: OTLP when spans go over OTLP (the default), to /v1/metrics.
    let s = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]);
    assert_eq!(s.metrics.exporters, [MetricsExporter::Otlp]);
    assert_eq!(
        s.metrics.otlp.as_ref().unwrap().endpoint,
        "http://c:4318/v1/metrics"
    );
    assert_eq!(s.metrics.interval, Duration::from_secs(60));
    assert_eq!(s.metrics.timeout, Duration::from_secs(30));
    assert_eq!(s.metrics.temporality, TemporalityPreference::Cumulative);
    assert_eq!(s.metrics.exemplar_filter, ExemplarFilter::TraceBased);
    assert_eq!(
        (
            s.metrics.prometheus_host.as_str(),
            s.metrics.prometheus_port
        ),
        ("localhost", 9464)
    );
    // Spans to the console only: no metrics unless asked.
    let s = resolve(&[("OTEL_TRACES_EXPORTER", "console")]);
    assert!(!s.metrics.enabled());
    let s = resolve(&[
        ("OTEL_METRICS_EXPORTER", "prometheus,console,bogus"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
        ("OTEL_METRICS_EXEMPLAR_FILTER", "ALWAYS_ON"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "9999"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
    ]);
    assert_eq!(
        s.metrics.exporters,
        [MetricsExporter::Prometheus, MetricsExporter::Console]
    );
    assert!(s.metrics.otlp.is_none());
    assert_eq!(
        s.metrics.temporality,
        TemporalityPreference::Cumulative,
        "Prometheus needs cumulative"
    );
    assert_eq!(s.metrics.exemplar_filter, ExemplarFilter::AlwaysOn);
    assert_eq!(s.metrics.interval, Duration::from_millis(1500));
    assert_eq!(s.metrics.prometheus_port, 9999);
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    let s = resolve(&[
        (
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "lowmemory",
        ),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4317"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
    ]);
    assert_eq!(s.metrics.temporality, TemporalityPreference::LowMemory);
    let otlp = s.metrics.otlp.unwrap();
    assert_eq!(
        (otlp.protocol, otlp.endpoint.as_str()),
        (Protocol::Grpc, "http://m:4317")
    );
    assert_eq!(
        s.otlp.protocol,
        Protocol::HttpProtobuf,
        "traces keep theirs"
    );
    // OTEL_SDK_DISABLED and none.
    assert!(
        !resolve(&[("OTEL_METRICS_EXPORTER", "none")])
            .metrics
            .enabled()
    );
}
