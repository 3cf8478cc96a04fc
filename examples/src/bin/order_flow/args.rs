//! The command line: which part runs, which broker carries the queue, and
//! where things listen. Flags win over environment variables.

use crate::Error;

/// The queue's name unless `--queue` or `ORDER_FLOW_QUEUE` names another.
pub(crate) const DEFAULT_QUEUE: &str = "orders";

/// The settings of one run.
#[derive(Clone, Debug)]
pub(crate) struct Args {
    /// `gateway`, `api`, `worker` or `cron`; none runs everything here.
    pub(crate) part: Option<String>,
    /// `memory`, `rabbitmq` or `sqs` (`--broker`, `ORDER_FLOW_BROKER`).
    pub(crate) broker: String,
    /// The queue's name (`--queue`, `ORDER_FLOW_QUEUE`, else `orders`).
    pub(crate) queue: String,
    pub(crate) listen: Option<String>,
    pub(crate) api_url: String,
    pub(crate) amqp_addr: Option<String>,
    pub(crate) sqs_endpoint: Option<String>,
    pub(crate) max_messages: Option<usize>,
}

impl Args {
    /// The process's arguments and environment.
    pub(crate) fn parse() -> Result<Self, Error> {
        Self::parse_from(std::env::args().skip(1), |name| std::env::var(name).ok())
    }

    fn parse_from(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let mut parsed = Self {
            part: None,
            broker: env("ORDER_FLOW_BROKER").unwrap_or_else(|| "memory".into()),
            queue: env("ORDER_FLOW_QUEUE").unwrap_or_else(|| DEFAULT_QUEUE.into()),
            listen: None,
            api_url: env("API_URL").unwrap_or_else(|| "http://127.0.0.1:8081".into()),
            amqp_addr: env("AMQP_ADDR"),
            sqs_endpoint: env("SQS_ENDPOINT"),
            max_messages: None,
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--broker" => parsed.broker = value()?,
                "--queue" => parsed.queue = value()?,
                "--listen" => parsed.listen = Some(value()?),
                "--api-url" => parsed.api_url = value()?,
                "--amqp-addr" => parsed.amqp_addr = Some(value()?),
                "--sqs-endpoint" => parsed.sqs_endpoint = Some(value()?),
                "--max-messages" => parsed.max_messages = Some(value()?.parse()?),
                "gateway" | "api" | "worker" | "cron" if parsed.part.is_none() => {
                    parsed.part = Some(arg)
                }
                other => {
                    return Err(format!(
                        "unknown argument {other}; see the docs at the top of order_flow/main.rs"
                    )
                    .into());
                }
            }
        }
        if parsed.queue.is_empty() {
            return Err("the queue's name must not be empty (--queue, ORDER_FLOW_QUEUE)".into());
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Args {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Args::parse_from(args.iter().map(|a| (*a).to_owned()), |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    #[test]
    fn the_queue_comes_from_the_flag_then_the_environment() {
        assert_eq!(parse(&[], &[]).queue, "orders");
        assert_eq!(parse(&[], &[("ORDER_FLOW_QUEUE", "jobs")]).queue, "jobs");
        let args = parse(
            &["worker", "--queue", "urgent"],
            &[("ORDER_FLOW_QUEUE", "jobs")],
        );
        assert_eq!(args.queue, "urgent");
        assert_eq!(args.part.as_deref(), Some("worker"));
    }
}
