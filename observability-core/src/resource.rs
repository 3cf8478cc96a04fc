//! The resource: who is emitting the spans.

use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{ResourceDetector, TelemetryResourceDetector};

use crate::env::{self, Env, Warnings};

const SERVICE_NAME: &str = "service.name";
const SERVICE_VERSION: &str = "service.version";
const DEPLOYMENT_ENVIRONMENT: &str = "deployment.environment.name";
/// The attribute's name before semantic conventions 1.27.
const DEPLOYMENT_ENVIRONMENT_OLD: &str = "deployment.environment";

/// Resource settings given in code.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResourceSettings {
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) attributes: Vec<KeyValue>,
}

pub(crate) struct Resolved {
    pub(crate) resource: Resource,
    environment: Option<String>,
}

impl Resolved {
    /// The resolved `service.name`.
    pub(crate) fn service_name(&self) -> String {
        self.resource
            .get(&Key::from_static_str(SERVICE_NAME))
            .map(|v| v.as_str().into_owned())
            .unwrap_or_default()
    }

    /// The resolved deployment environment.
    pub(crate) fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// Whether the deployment environment is `production` or `prod`.
    pub(crate) fn is_production(&self) -> bool {
        self.environment
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("production") || e.eq_ignore_ascii_case("prod"))
    }
}

/// Builds the resource. Precedence, lowest first: detected host, process,
/// Kubernetes and SDK attributes; `OTEL_RESOURCE_ATTRIBUTES`; the service
/// name, version and environment as the crate docs describe; attributes
/// given in code.
pub(crate) fn resolve(code: &ResourceSettings, env: &Env, w: &mut Warnings) -> Resolved {
    let mut attrs: Vec<KeyValue> = Vec::new();
    let set = |attrs: &mut Vec<KeyValue>, key: &str, value: Value| {
        attrs.retain(|kv| kv.key.as_str() != key);
        attrs.push(KeyValue::new(Key::new(key.to_owned()), value));
    };

    for kv in detected(env) {
        set(&mut attrs, kv.key.as_str(), kv.value);
    }

    let from_env: Vec<(String, String)> = match env.get(env::OTEL_RESOURCE_ATTRIBUTES) {
        None => Vec::new(),
        Some(value) => match env::parse_key_values(&value) {
            Ok(pairs) => pairs,
            Err(why) => {
                w.push(format!(
                    "{}: {why}; discarding the whole variable",
                    env::OTEL_RESOURCE_ATTRIBUTES
                ));
                Vec::new()
            }
        },
    };
    let env_attr = |key: &str| {
        from_env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    for (k, v) in &from_env {
        set(&mut attrs, k, Value::from(v.clone()));
    }

    let service_name = code
        .service_name
        .clone()
        .or_else(|| env.get(env::OTEL_SERVICE_NAME))
        .or_else(|| env_attr(SERVICE_NAME))
        .or_else(|| env.get(env::SERVICE_NAME))
        .unwrap_or_else(|| format!("unknown_service:{}", executable_name()));
    set(&mut attrs, SERVICE_NAME, service_name.into());

    let version = code
        .service_version
        .clone()
        .or_else(|| {
            env.first(&[env::SERVICE_VERSION, env::VERSION])
                .map(|(_, v)| v)
        })
        .or_else(|| env_attr(SERVICE_VERSION));
    if let Some(version) = version {
        set(&mut attrs, SERVICE_VERSION, version.into());
    }

    let environment = code
        .environment
        .clone()
        .or_else(|| env.first(&[env::ENV, env::ENVIRONMENT]).map(|(_, v)| v))
        .or_else(|| env_attr(DEPLOYMENT_ENVIRONMENT))
        .or_else(|| env_attr(DEPLOYMENT_ENVIRONMENT_OLD));
    if let Some(environment) = &environment {
        set(
            &mut attrs,
            DEPLOYMENT_ENVIRONMENT,
            environment.clone().into(),
        );
    }

    for kv in &code.attributes {
        set(&mut attrs, kv.key.as_str(), kv.value.clone());
    }

    Resolved {
        resource: Resource::builder_empty().with_attributes(attrs).build(),
        environment,
    }
}

/// Host, process, Kubernetes and `telemetry.sdk.*` attributes.
fn detected(env: &Env) -> Vec<KeyValue> {
    let mut out: Vec<KeyValue> = TelemetryResourceDetector
        .detect()
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();

    if let Some(host) = host_name(env) {
        out.push(KeyValue::new("host.name", host));
    }
    out.push(KeyValue::new("host.arch", host_arch()));
    out.push(KeyValue::new("os.type", os_type()));
    out.push(KeyValue::new("process.pid", i64::from(std::process::id())));
    out.push(KeyValue::new("process.executable.name", executable_name()));
    if let Ok(path) = std::env::current_exe() {
        out.push(KeyValue::new(
            "process.executable.path",
            path.to_string_lossy().into_owned(),
        ));
    }
    out.push(KeyValue::new("process.runtime.name", "rust"));

    let k8s: [(&str, &[&'static str]); 4] = [
        ("k8s.pod.name", &[env::K8S_POD_NAME, "POD_NAME"]),
        (
            "k8s.namespace.name",
            &[
                env::K8S_NAMESPACE_NAME,
                "K8S_POD_NAMESPACE",
                "POD_NAMESPACE",
            ],
        ),
        ("k8s.node.name", &[env::K8S_NODE_NAME, "NODE_NAME"]),
        ("k8s.pod.uid", &[env::K8S_POD_UID, "POD_UID"]),
    ];
    for (key, names) in k8s {
        if let Some((_, value)) = env.first(names) {
            out.push(KeyValue::new(key, value));
        }
    }
    out
}

fn host_name(env: &Env) -> Option<String> {
    #[cfg(target_os = "linux")]
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = name.trim();
        if !name.is_empty() {
            return Some(name.to_owned());
        }
    }
    env.first(&["HOSTNAME", "COMPUTERNAME"]).map(|(_, v)| v)
}

/// `host.arch` in the semantic conventions' vocabulary.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm32",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

/// `os.type` in the semantic conventions' vocabulary.
fn os_type() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// The executable's file name, for `process.executable.name` and the
/// `unknown_service:<executable>` fallback.
pub(crate) fn executable_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| std::env::args().next())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::env_of;

    fn attr(r: &Resource, key: &str) -> Option<String> {
        r.get(&Key::new(key.to_owned()))
            .map(|v| v.as_str().into_owned())
    }

    fn build(code: &ResourceSettings, vars: &[(&str, &str)]) -> (Resource, Vec<String>) {
        let mut w = Warnings::default();
        let r = resolve(code, &env_of(vars), &mut w);
        (r.resource, w.into_vec())
    }

    #[test]
    fn service_name_precedence() {
        let code = ResourceSettings {
            service_name: Some("from-code".into()),
            ..Default::default()
        };
        let all = [
            ("OTEL_SERVICE_NAME", "from-otel"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
            ("SERVICE_NAME", "from-plain"),
        ];
        assert_eq!(
            attr(&build(&code, &all).0, SERVICE_NAME).unwrap(),
            "from-code"
        );
        let none = ResourceSettings::default();
        assert_eq!(
            attr(&build(&none, &all).0, SERVICE_NAME).unwrap(),
            "from-otel"
        );
        assert_eq!(
            attr(&build(&none, &all[1..]).0, SERVICE_NAME).unwrap(),
            "from-attrs"
        );
        assert_eq!(
            attr(&build(&none, &all[2..]).0, SERVICE_NAME).unwrap(),
            "from-plain"
        );
        let fallback = attr(&build(&none, &[]).0, SERVICE_NAME).unwrap();
        assert_eq!(fallback, format!("unknown_service:{}", executable_name()));
    }

    #[test]
    fn version_and_environment() {
        let none = ResourceSettings::default();
        let (r, _) = build(
            &none,
            &[
                ("SERVICE_VERSION", "1.2.3"),
                ("VERSION", "9"),
                ("ENV", "staging"),
            ],
        );
        assert_eq!(attr(&r, SERVICE_VERSION).unwrap(), "1.2.3");
        assert_eq!(attr(&r, DEPLOYMENT_ENVIRONMENT).unwrap(), "staging");
        let (r, _) = build(&none, &[("VERSION", "9"), ("ENVIRONMENT", "dev")]);
        assert_eq!(attr(&r, SERVICE_VERSION).unwrap(), "9");
        assert_eq!(attr(&r, DEPLOYMENT_ENVIRONMENT).unwrap(), "dev");
        let (r, _) = build(
            &none,
            &[(
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=qa,service.version=2",
            )],
        );
        assert_eq!(attr(&r, DEPLOYMENT_ENVIRONMENT).unwrap(), "qa");
        assert_eq!(attr(&r, SERVICE_VERSION).unwrap(), "2");
        let code = ResourceSettings {
            service_version: Some("code".into()),
            environment: Some("production".into()),
            ..Default::default()
        };
        let (r, _) = build(&code, &[("ENV", "dev"), ("SERVICE_VERSION", "env")]);
        assert_eq!(attr(&r, SERVICE_VERSION).unwrap(), "code");
        assert_eq!(attr(&r, DEPLOYMENT_ENVIRONMENT).unwrap(), "production");
    }

    #[test]
    fn resource_attributes_are_percent_decoded() {
        let (r, w) = build(
            &ResourceSettings::default(),
            &[(
                "OTEL_RESOURCE_ATTRIBUTES",
                "team=checkout%20squad,note=a%2Cb%3Dc",
            )],
        );
        assert!(w.is_empty());
        assert_eq!(attr(&r, "team").unwrap(), "checkout squad");
        assert_eq!(attr(&r, "note").unwrap(), "a,b=c");
    }

    #[test]
    fn an_undecodable_value_discards_the_whole_variable_with_one_warning() {
        let (r, w) = build(
            &ResourceSettings::default(),
            &[(
                "OTEL_RESOURCE_ATTRIBUTES",
                "team=ok,bad=100%,service.name=x",
            )],
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("OTEL_RESOURCE_ATTRIBUTES"));
        assert_eq!(attr(&r, "team"), None);
        assert!(
            attr(&r, SERVICE_NAME)
                .unwrap()
                .starts_with("unknown_service:")
        );
    }

    #[test]
    fn detected_attributes() {
        let (r, _) = build(
            &ResourceSettings::default(),
            &[
                ("K8S_POD_NAME", "api-7d9f"),
                ("POD_NAMESPACE", "shop"),
                ("NODE_NAME", "node-1"),
            ],
        );
        assert_eq!(attr(&r, "telemetry.sdk.language").unwrap(), "rust");
        assert_eq!(attr(&r, "telemetry.sdk.name").unwrap(), "opentelemetry");
        assert!(attr(&r, "telemetry.sdk.version").is_some());
        assert!(attr(&r, "host.name").is_some());
        assert!(attr(&r, "host.arch").is_some());
        assert_eq!(
            r.get(&Key::new("process.pid")),
            Some(Value::I64(i64::from(std::process::id())))
        );
        assert_eq!(attr(&r, "k8s.pod.name").unwrap(), "api-7d9f");
        assert_eq!(attr(&r, "k8s.namespace.name").unwrap(), "shop");
        assert_eq!(attr(&r, "k8s.node.name").unwrap(), "node-1");
        let (r, _) = build(&ResourceSettings::default(), &[]);
        assert_eq!(attr(&r, "k8s.pod.name"), None);
    }

    #[test]
    fn code_attributes_win() {
        let code = ResourceSettings {
            attributes: vec![KeyValue::new("team", "code")],
            ..Default::default()
        };
        let (r, _) = build(&code, &[("OTEL_RESOURCE_ATTRIBUTES", "team=env")]);
        assert_eq!(attr(&r, "team").unwrap(), "code");
    }
}
