//! The README's measured table is the strategies bench's CSV, never hand-copied figures:
//! `docs/bench/strategies.csv` is the last run's CSV (`cargo bench --bench strategies` writes
//! `target/daglo-bench/strategies.csv`), and the README block between the
//! `<!-- strategies.csv -->` markers must be its rendering.
//!
//! After a bench run: `DAGLO_UPDATE_FIGURES=1 cargo test --test readme_figures` copies the new
//! CSV to `docs/bench/` and rewrites the README block.

use std::path::{Path, PathBuf};

const START: &str =
    "<!-- strategies.csv: generated from docs/bench/strategies.csv by tests/readme_figures.rs -->";
const END: &str = "<!-- /strategies.csv -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A latency as the table shows it: whole milliseconds, a tenth below 10 ms.
fn ms(text: &str) -> String {
    match text.parse::<f64>() {
        Ok(v) if v < 10.0 => format!("{v:.1}"),
        Ok(v) => format!("{v:.0}"),
        Err(_) => text.to_owned(),
    }
}

/// The CSV as the README's table.
fn render(csv: &str) -> String {
    let mut lines = csv.lines();
    let header = lines.next().expect("a header");
    assert_eq!(
        header, "strategy,jobs,p50_ms,p95_ms,p99_ms,max_ms,requests_per_job,rate_limited,lost",
        "the bench's CSV columns changed: update the rendering"
    );
    let mut out = String::from(
        "| strategy | jobs | p50 ms | p95 ms | p99 ms | max ms | status GETs/job | 429s | lost |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 9, "a CSV row of nine fields: {line}");
        let requests = f[6]
            .parse::<f64>()
            .map_or_else(|_| f[6].to_owned(), |v| format!("{v:.1}"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {requests} | {} | {} |\n",
            f[0],
            f[1],
            ms(f[2]),
            ms(f[3]),
            ms(f[4]),
            ms(f[5]),
            f[7],
            f[8]
        ));
    }
    out
}

fn block(readme: &str) -> Option<(usize, usize)> {
    let start = readme.find(START)? + START.len();
    let end = start + readme[start..].find(END)?;
    Some((start, end))
}

#[test]
fn the_readme_table_is_the_bench_csv() {
    let csv_path = root().join("docs/bench/strategies.csv");
    let readme_path = root().join("README.md");
    if std::env::var_os("DAGLO_UPDATE_FIGURES").is_some() {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
        let fresh = target.join("daglo-bench/strategies.csv");
        std::fs::copy(&fresh, &csv_path).unwrap_or_else(|e| panic!("{}: {e}", fresh.display()));
        // The chart drawn from the same run.
        let _ = std::fs::copy(
            target.join("daglo-bench/tradeoff.svg"),
            root().join("docs/img/tradeoff.svg"),
        );
        let readme = std::fs::read_to_string(&readme_path).unwrap();
        let (start, end) = block(&readme).expect("the README's markers");
        let csv = std::fs::read_to_string(&csv_path).unwrap();
        let updated = format!("{}\n{}{}", &readme[..start], render(&csv), &readme[end..]);
        std::fs::write(&readme_path, updated).unwrap();
    }
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (start, end) = block(&readme).expect("the README marks its measured table");
    assert_eq!(
        readme[start..end].trim(),
        render(&csv).trim(),
        "README.md's table differs from {}: run the bench, then DAGLO_UPDATE_FIGURES=1 cargo test --test readme_figures",
        Path::new("docs/bench/strategies.csv").display()
    );
}
