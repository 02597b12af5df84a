//! `daglo serve`: the service of `daglo-serve`, run from the CLI.

use crate::failure::Failure;

pub(crate) async fn run(args: crate::args::Serve) -> Result<u8, Failure> {
    match daglo_serve::run(args.config.as_deref()).await {
        Ok(()) => Ok(crate::failure::exit::OK),
        Err(e) => Err(Failure {
            code: e.exit_code(),
            message: crate::failure::chain(&e),
        }),
    }
}
