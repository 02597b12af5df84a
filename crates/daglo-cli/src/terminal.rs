//! Values from the network on a terminal: escaped and cut (`daglo::internal::{safe, escaped}`,
//! shared with `daglo-serve`'s binary).

pub(crate) use daglo::internal::{escaped, safe};

/// `count` and the noun that goes with it: `1 input`, `2 inputs`, `0 errors`.
pub(crate) fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(super::plural(1, "request", "requests"), "1 request");
        assert_eq!(super::plural(0, "request", "requests"), "0 requests");
        assert_eq!(super::plural(2, "error", "errors"), "2 errors");
    }
}
