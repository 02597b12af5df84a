//! The emulator's command line: what the `daglo-sim` binary and `daglo sim` run.
//!
//! ```text
//! daglo sim --port 8080 [--host 127.0.0.1] [--token sim-token] [--seed N]
//!           [--processing-ms 3000] [--rate-limit 20|off]
//! ```

use std::process::ExitCode;
use std::time::Duration;

use crate::{DEFAULT_TOKEN, SimConfig, Simulator};

/// The flags [`run`] takes.
pub const USAGE: &str = "usage: daglo-sim [--host ADDR] [--port PORT] [--token TOKEN] [--seed N] \
                     [--processing-ms MS] [--rate-limit N|off] [--lenient]

  --host ADDR          address to listen on (default 127.0.0.1)
  --port PORT          port to listen on (default 8080; 0 picks a free one)
  --token TOKEN        the bearer token clients must send (default sim-token)
  --seed N             seed of rids, transcripts and timings (default 229249024)
  --processing-ms MS   how long each job takes, in milliseconds (default 3000)
  --rate-limit N|off   requests per second per endpoint before 429 (default 20)
  --lenient            accept submit bodies the schema forbids (unknown fields, null objects)
                       instead of answering 400";

#[derive(Debug)]
struct Args {
    host: String,
    port: u16,
    config: SimConfig,
    /// A chosen token is a secret and is never printed; the default one is, for convenience.
    token_given: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        host: "127.0.0.1".to_owned(),
        port: 8080,
        config: SimConfig::default(),
        token_given: false,
    };
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        if flag == "--lenient" {
            parsed.config = parsed.config.lenient();
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{what} must be a number, got `{value}`"))
        };
        match flag.as_str() {
            "--host" => parsed.host = value.clone(),
            "--port" => {
                parsed.port = value
                    .parse()
                    .map_err(|_| format!("--port must be 0..=65535, got `{value}`"))?
            }
            "--token" => {
                parsed.config = parsed.config.token(value.clone());
                parsed.token_given = true;
            }
            "--seed" => parsed.config = parsed.config.seed(number("--seed")?),
            "--processing-ms" => {
                parsed.config = parsed
                    .config
                    .processing_time(Duration::from_millis(number("--processing-ms")?))
            }
            "--rate-limit" if value == "off" => parsed.config = parsed.config.rate_limit(None),
            "--rate-limit" => {
                let limit =
                    u32::try_from(number("--rate-limit")?).map_err(|_| "--rate-limit is too large")?;
                parsed.config = parsed.config.rate_limit(Some(limit));
            }
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// Runs the emulator as `daglo-sim ARGS…` (or `daglo sim ARGS…`) does: parses `args` (the
/// flags of [`USAGE`]), serves until Ctrl-C, and returns the exit status (2 for a usage error).
pub async fn run(args: impl Iterator<Item = String>) -> ExitCode {
    let args = match parse(args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let resolved = tokio::net::lookup_host((args.host.as_str(), args.port))
        .await
        .and_then(|mut addrs| {
            addrs
                .next()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
        });
    let listener = match resolved.and_then(crate::bind) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {}:{}: {e}", args.host, args.port);
            return ExitCode::FAILURE;
        }
    };
    let print_token = !args.token_given;
    let sim = match Simulator::serve(listener, args.config) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("daglo emulator on {} (Ctrl-C to stop)", sim.base_url());
    if print_token {
        println!("token: {DEFAULT_TOKEN}");
    }
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn flags_set_the_config_and_bad_values_are_named() {
        let parsed = args("--port 9000 --rate-limit off --processing-ms 250 --token t").unwrap();
        assert_eq!(parsed.port, 9000);
        assert_eq!(parsed.config.rate_limit_per_second(), None);
        assert!(parsed.token_given);
        assert_eq!(
            args("--rate-limit 5").unwrap().config.rate_limit_per_second(),
            Some(5)
        );
        assert!(args("--port 70000").unwrap_err().contains("--port"));
        assert!(args("--seed x").unwrap_err().contains("--seed"));
        assert!(args("--port").unwrap_err().contains("needs a value"));
        assert!(args("--bogus 1").unwrap_err().contains("--bogus"));
        assert!(args("--help").unwrap_err().starts_with("usage"));
    }
}
