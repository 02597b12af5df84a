//! `daglo serve`: the service of `daglo-serve`, run from the CLI — on a configuration, or with
//! `--emulate` against an emulator of Daglo in this process.

use crate::failure::Failure;

pub(crate) async fn run(args: crate::args::Serve) -> Result<u8, Failure> {
    let served = if args.emulate {
        emulated().await?
    } else {
        daglo_serve::run(args.config.as_deref()).await
    };
    match served {
        Ok(()) => Ok(crate::failure::exit::OK),
        Err(e) => Err(Failure {
            code: e.exit_code(),
            message: crate::failure::chain(&e),
        }),
    }
}

/// `--emulate`: the emulator on a loopback port of its own, the service on 127.0.0.1:8080 (or
/// `DAGLO_LISTEN`) with a throw-away key, its data in a temporary directory.
async fn emulated() -> Result<Result<(), daglo_serve::RunError>, Failure> {
    let sim = daglo::sim::Simulator::start(daglo::sim::SimConfig::default())
        .await
        .map_err(|e| Failure {
            code: crate::failure::exit::SERVICE,
            message: format!("the emulator did not start: {e}"),
        })?;
    let key = format!(
        "sk-try-{}",
        daglo::JobId::random().as_str().trim_start_matches("job_")
    );
    let data = std::env::temp_dir().join(format!("daglo-serve-emulate-{}", std::process::id()));
    let listen = std::env::var("DAGLO_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listen: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| Failure::usage(format!("DAGLO_LISTEN: {e}")))?;
    // Callbacks when the port is known beforehand (hybrid, as in production); polling on a
    // port picked at start.
    let strategy = if listen.port() == 0 {
        "strategy = \"polling\"".to_owned()
    } else {
        format!(
            "strategy = \"hybrid\"\npublic_url = \"http://127.0.0.1:{}\"",
            listen.port()
        )
    };
    let text = format!(
        "listen = \"{listen}\"\nbase_url = \"{}\"\ndata_dir = \"{}\"\napi_keys = [\"{key}\"]\n{strategy}\n",
        sim.base_url(),
        data.display().to_string().replace('\\', "\\\\")
    );
    let config =
        daglo_serve::Config::from_toml(&text).map_err(|e| Failure::usage(crate::failure::chain(&e)))?;
    eprintln!("daglo serve --emulate: Daglo is emulated in this process; nothing is billed");
    eprintln!("daglo serve --emulate: API key (for this run only): {key}");
    eprintln!(
        "daglo serve --emulate: try  curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n    -d '{{\"url\": \"https://example.com/meeting.mp3\"}}' http://{listen}/v1/jobs"
    );
    let served = daglo_serve::serve(config, sim.token().to_owned()).await;
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(served)
}
