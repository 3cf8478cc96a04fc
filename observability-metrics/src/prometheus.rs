//! A collection in the Prometheus text format (0.0.4) or OpenMetrics 1.0
//! with exemplars, named as the specification's "Prometheus and
//! OpenMetrics Compatibility" says: dots to underscores, the unit as a
//! suffix, `_total` on counters, `otel_scope_*` labels and a `target_info`
//! for the resource.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use opentelemetry::{InstrumentationScope, KeyValue};

use crate::data::{Collection, Data, Exemplar, HistogramPoint, Metric, Number, NumberPoint};

/// The content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (no exemplars).
    Text,
    /// OpenMetrics 1.0, with exemplars.
    OpenMetrics,
}

impl Format {
    /// The format a scraper asks for in its `Accept` header: OpenMetrics
    /// when it names `application/openmetrics-text`, else text.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Text,
        }
    }

    /// Its content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => TEXT_CONTENT_TYPE,
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Writes `collection` for a process with `resource` attributes.
pub fn encode(collection: &Collection, resource: &[KeyValue], format: Format) -> String {
    let mut out = String::with_capacity(4096);
    target_info(&mut out, resource, format);
    for scope in &collection.scopes {
        let scope_labels = scope_labels(&scope.scope);
        for metric in &scope.metrics {
            family(&mut out, metric, &scope_labels, format);
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// The resource as the `target_info` metric.
fn target_info(out: &mut String, resource: &[KeyValue], format: Format) {
    if resource.is_empty() {
        return;
    }
    let (kind, sample) = match format {
        Format::Text => ("gauge", "target_info"),
        Format::OpenMetrics => ("info", "target_info"),
    };
    let family = if format == Format::OpenMetrics {
        "target"
    } else {
        "target_info"
    };
    let _ = writeln!(out, "# HELP {family} Target metadata");
    let _ = writeln!(out, "# TYPE {family} {kind}");
    let labels: Vec<(String, String)> = resource
        .iter()
        .map(|kv| (label_name(kv.key.as_str()), kv.value.as_str().into_owned()))
        .collect();
    out.push_str(sample);
    write_labels(out, &labels, None);
    out.push_str(" 1\n");
}

fn scope_labels(scope: &InstrumentationScope) -> Vec<(String, String)> {
    let mut labels = vec![("otel_scope_name".to_owned(), scope.name().to_owned())];
    if let Some(version) = scope.version() {
        labels.push(("otel_scope_version".to_owned(), version.to_owned()));
    }
    labels
}

/// The Prometheus name of an OpenTelemetry metric: legal characters, the
/// unit's suffix.
pub fn metric_name(name: &str, unit: &str, is_gauge: bool) -> String {
    let mut out = sanitize(name, true);
    if let Some(suffix) = unit_suffix(unit, is_gauge)
        && !out.ends_with(&format!("_{suffix}"))
    {
        out.push('_');
        out.push_str(&suffix);
    }
    out
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` (`:` only in metric names), runs of `_`
/// collapsed.
fn sanitize(name: &str, colons: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':');
        let c = if ok { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

fn label_name(key: &str) -> String {
    let name = sanitize(key, false);
    if name.starts_with("__") {
        format!("key{name}")
    } else {
        name
    }
}

/// The suffix of a UCUM unit: annotations (`{request}`) dropped, the
/// usual units spelled out, `a/b` as `a_per_b`.
fn unit_suffix(unit: &str, is_gauge: bool) -> Option<String> {
    let mut plain = String::new();
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let word = |u: &str| -> String {
        match u {
            "d" => "days",
            "h" => "hours",
            "min" => "minutes",
            "s" => "seconds",
            "ms" => "milliseconds",
            "us" => "microseconds",
            "ns" => "nanoseconds",
            "By" => "bytes",
            "KiBy" => "kibibytes",
            "MiBy" => "mebibytes",
            "GiBy" => "gibibytes",
            "KBy" => "kilobytes",
            "MBy" => "megabytes",
            "GBy" => "gigabytes",
            "m" => "meters",
            "V" => "volts",
            "A" => "amperes",
            "J" => "joules",
            "W" => "watts",
            "g" => "grams",
            "Cel" => "celsius",
            "Hz" => "hertz",
            "%" => "percent",
            other => other,
        }
        .to_owned()
    };
    let suffix = match plain.split_once('/') {
        _ if plain == "1" => {
            return is_gauge.then(|| "ratio".to_owned());
        }
        Some((a, b)) if !a.is_empty() && !b.is_empty() => format!("{}_per_{}", word(a), per(b)),
        _ => word(&plain),
    };
    let suffix = sanitize(&suffix, false);
    let suffix = suffix.trim_matches('_');
    (!suffix.is_empty()).then(|| suffix.to_owned())
}

fn per(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

fn family(out: &mut String, metric: &Metric, scope: &[(String, String)], format: Format) {
    let (kind, is_gauge, counter) = match &metric.data {
        Data::Sum {
            monotonic: true, ..
        } => ("counter", false, true),
        Data::Sum { .. } | Data::Gauge { .. } => ("gauge", true, false),
        Data::Histogram { .. } => ("histogram", false, false),
    };
    let name = metric_name(&metric.name, &metric.unit, is_gauge);
    // Text names the counter family with `_total`; OpenMetrics without.
    let family = match (counter, format) {
        (true, Format::Text) => format!("{name}_total"),
        _ => name.clone(),
    };
    if !metric.description.is_empty() {
        let _ = writeln!(out, "# HELP {family} {}", escape_help(&metric.description));
    }
    let _ = writeln!(out, "# TYPE {family} {kind}");
    if format == Format::OpenMetrics
        && let Some(unit) = unit_suffix(&metric.unit, is_gauge)
        && name.ends_with(&format!("_{unit}"))
    {
        let _ = writeln!(out, "# UNIT {family} {unit}");
    }
    let exemplars = format == Format::OpenMetrics;
    match &metric.data {
        Data::Sum { points, .. } | Data::Gauge { points } => {
            let sample = if counter {
                format!("{name}_total")
            } else {
                name
            };
            for p in points {
                number_sample(out, &sample, p, scope, exemplars && counter);
            }
        }
        Data::Histogram { points, .. } => {
            for p in points {
                histogram_samples(out, &name, p, scope, exemplars);
            }
        }
    }
}

fn labels_of(attributes: &[KeyValue], scope: &[(String, String)]) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = Vec::with_capacity(attributes.len() + scope.len());
    for kv in attributes {
        let name = label_name(kv.key.as_str());
        let value = kv.value.as_str().into_owned();
        // Keys that meet after sanitizing are joined with `;`, as the
        // specification says.
        match labels.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(';');
                v.push_str(&value);
            }
            None => labels.push((name, value)),
        }
    }
    labels.extend(scope.iter().cloned());
    labels
}

fn number_sample(
    out: &mut String,
    name: &str,
    p: &NumberPoint,
    scope: &[(String, String)],
    exemplars: bool,
) {
    out.push_str(name);
    write_labels(out, &labels_of(&p.attributes, scope), None);
    out.push(' ');
    out.push_str(&number(p.value));
    if exemplars && let Some(e) = p.exemplars.last() {
        exemplar(out, e);
    }
    out.push('\n');
}

fn histogram_samples(
    out: &mut String,
    name: &str,
    p: &HistogramPoint,
    scope: &[(String, String)],
    exemplars: bool,
) {
    let labels = labels_of(&p.attributes, scope);
    let mut cumulative = 0u64;
    for (i, count) in p.counts.iter().enumerate() {
        cumulative += count;
        let le = p
            .bounds
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |&b| go_float(b));
        let _ = write!(out, "{name}_bucket");
        write_labels(out, &labels, Some(&le));
        let _ = write!(out, " {cumulative}");
        if exemplars {
            let in_bucket = p
                .exemplars
                .iter()
                .rev()
                .find(|e| bucket_of(&p.bounds, e.value.as_f64()) == i);
            if let Some(e) = in_bucket {
                exemplar(out, e);
            }
        }
        out.push('\n');
    }
    let _ = write!(out, "{name}_sum");
    write_labels(out, &labels, None);
    let _ = writeln!(out, " {}", go_float(p.sum));
    let _ = write!(out, "{name}_count");
    write_labels(out, &labels, None);
    let _ = writeln!(out, " {}", p.count);
}

fn bucket_of(bounds: &[f64], v: f64) -> usize {
    bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len())
}

/// ` # {trace_id="…",span_id="…"} value timestamp` (OpenMetrics exemplar).
fn exemplar(out: &mut String, e: &Exemplar) {
    let seconds = e
        .time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let _ = write!(
        out,
        " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {seconds:.3}",
        e.trace_id,
        e.span_id,
        number(e.value)
    );
}

fn write_labels(out: &mut String, labels: &[(String, String)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(le.map(|le| ("le", le)))
    {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(n: Number) -> String {
    match n {
        Number::I64(v) => v.to_string(),
        Number::F64(v) => go_float(v),
    }
}

/// A float as Go (and Prometheus' own client libraries) write it:
/// `+Inf`, `NaN`, `5.0`, `0.005`, exponents for large numbers — the
/// canonical form OpenMetrics asks for in `le`.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let s = format!("{v:?}");
    match s.find('.') {
        Some(dot) if v > 0.0 && dot > 6 && !s.contains('e') => {
            let digits: String = s.chars().filter(|c| *c != '.').collect();
            let mantissa = format!("{}.{}", &digits[..1], &digits[1..]);
            let mantissa = mantissa.trim_end_matches(['0', '.']);
            format!("{mantissa}e+{:02}", dot - 1)
        }
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_compatibility_rules() {
        assert_eq!(
            metric_name("http.server.request.duration", "s", false),
            "http_server_request_duration_seconds"
        );
        assert_eq!(
            metric_name("messaging.client.sent.messages", "{message}", false),
            "messaging_client_sent_messages"
        );
        assert_eq!(metric_name("queue.fill", "1", true), "queue_fill_ratio");
        assert_eq!(
            metric_name("net.io", "By/s", true),
            "net_io_bytes_per_second"
        );
        assert_eq!(metric_name("2xx", "", false), "_2xx");
        assert_eq!(label_name("__x"), "_x", "never the reserved `__`");
    }

    #[test]
    fn floats_are_canonical() {
        assert_eq!(go_float(5.0), "5.0");
        assert_eq!(go_float(0.005), "0.005");
        assert_eq!(go_float(10000.0), "10000.0");
        assert_eq!(go_float(12_345_678.0), "1.2345678e+07");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }
}
