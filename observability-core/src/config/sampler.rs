//! The sampler: `OTEL_TRACES_SAMPLER`, its argument, and the builder's
//! ratio.

use opentelemetry_sdk::trace::Sampler;

use crate::env::{self, Env, Warnings};

/// The sampler, as resolved; turned into the SDK's sampler at build time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SamplerSetting {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBased(Box<SamplerSetting>),
}

impl SamplerSetting {
    pub(crate) fn to_sdk(&self) -> Sampler {
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::Ratio(r) => Sampler::TraceIdRatioBased(*r),
            Self::ParentBased(root) => Sampler::ParentBased(Box::new(root.to_sdk())),
        }
    }
}

pub(super) fn resolve_sampler(
    code_ratio: Option<f64>,
    production: bool,
    env: &Env,
    w: &mut Warnings,
) -> SamplerSetting {
    let default_ratio = if production { 0.1 } else { 1.0 };
    let mut ratio = || -> f64 {
        if let Some(ratio) = code_ratio {
            return ratio;
        }
        let Some(arg) = env.get(env::OTEL_TRACES_SAMPLER_ARG) else {
            return default_ratio;
        };
        match arg.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            Ok(_) => {
                w.push(format!(
                    "{}={arg} is outside [0, 1]; using {default_ratio}",
                    env::OTEL_TRACES_SAMPLER_ARG
                ));
                default_ratio
            }
            Err(_) => {
                w.push(format!(
                    "{}={arg} is not a number; using {default_ratio}",
                    env::OTEL_TRACES_SAMPLER_ARG
                ));
                default_ratio
            }
        }
    };
    let default = |ratio: f64| SamplerSetting::ParentBased(Box::new(SamplerSetting::Ratio(ratio)));

    if code_ratio.is_some() {
        return default(ratio());
    }
    let Some(name) = env.get(env::OTEL_TRACES_SAMPLER) else {
        return default(ratio());
    };
    match name.to_ascii_lowercase().as_str() {
        "always_on" => SamplerSetting::AlwaysOn,
        "always_off" => SamplerSetting::AlwaysOff,
        "traceidratio" => SamplerSetting::Ratio(ratio()),
        "parentbased_always_on" => SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOn)),
        "parentbased_always_off" => {
            SamplerSetting::ParentBased(Box::new(SamplerSetting::AlwaysOff))
        }
        "parentbased_traceidratio" => default(ratio()),
        "jaeger_remote" | "parentbased_jaeger_remote" | "xray" => {
            let r = ratio();
            w.push(format!(
                "{}={name} is not supported by observability-core; using parentbased_traceidratio with ratio {r}",
                env::OTEL_TRACES_SAMPLER
            ));
            default(r)
        }
        _ => {
            let r = ratio();
            w.push(format!(
                "{}={name} is not a known sampler; using parentbased_traceidratio with ratio {r}",
                env::OTEL_TRACES_SAMPLER
            ));
            default(r)
        }
    }
}
