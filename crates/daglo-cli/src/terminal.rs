//! Values from the network on a terminal: escaped and cut (`daglo::internal::{safe, escaped}`,
//! shared with `daglo-serve`'s binary).

pub(crate) use daglo::internal::{escaped, safe};
