//! The measured tables are the benches' CSVs, never hand-copied figures:
//! `docs/bench/strategies.csv`, `docs/bench/jobtable.csv`, `docs/bench/receiver.csv` and
//! `docs/bench/receiver-cpu.csv` are the last runs' CSVs (`cargo bench --bench strategies`,
//! `--bench jobtable` and `--bench receiver` write them under `target/daglo-bench/`), and the
//! blocks between the `<!-- strategies.csv -->` and `<!-- jobtable.csv -->` markers (in the
//! README), `<!-- receiver.csv -->` and `<!-- receiver-cpu.csv -->` (in `docs/benchmarks.md`)
//! must be their renderings.
//!
//! After a bench run: `DAGLO_UPDATE_FIGURES=1 cargo test --test suite readme_figures::` copies
//! the new CSVs that exist to `docs/bench/` and rewrites the blocks.

use std::path::PathBuf;

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
fn render_strategies(csv: &str) -> String {
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

/// The receiver bench's CSV as the README's table.
fn render_receiver(csv: &str) -> String {
    let mut lines = csv.lines();
    let header = lines.next().expect("a header");
    assert_eq!(
        header, "target,connections,answers_per_s,ratio",
        "the receiver bench's CSV columns changed: update the rendering"
    );
    let mut out = String::from("| target | connections | answers/s | ratio |\n|---|---:|---:|---:|\n");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 4, "a CSV row of four fields: {line}");
        out.push_str(&format!("| {} | {} | {} | {}× |\n", f[0], f[1], f[2], f[3]));
    }
    out
}

/// The receiver bench's CPU-time CSV as the README's table.
fn render_receiver_cpu(csv: &str) -> String {
    let mut lines = csv.lines();
    let header = lines.next().expect("a header");
    assert_eq!(
        header, "target,callbacks_per_s,process_us_per_callback,redis_server_us_per_callback,busy,ceiling",
        "the receiver bench's CPU CSV columns changed: update the rendering"
    );
    let mut out = String::from(
        "| target | callbacks/s | process µs/callback | redis-server µs/callback | busy | ceiling |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 6, "a CSV row of six fields: {line}");
        let ceiling = if f[5].parse::<f64>().is_ok() {
            format!("{}×", f[5])
        } else {
            f[5].to_owned()
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {ceiling} |\n",
            f[0], f[1], f[2], f[3], f[4]
        ));
    }
    out
}

/// The job-table bench's CSV as the README's table.
fn render_jobtable(csv: &str) -> String {
    let mut lines = csv.lines();
    let header = lines.next().expect("a header");
    assert_eq!(
        header,
        "backend,jobs,running,list_p50_ms,list_p99_ms,filter_p99_ms,cursor_p99_ms,get_p99_ms,restart_ms,rss_mb,bytes_per_job",
        "the job-table bench's CSV columns changed: update the rendering"
    );
    let mut out = String::from(
        "| journal | jobs | running | list p50 ms | list p99 ms | filter p99 ms | deep cursor p99 ms | get p99 ms | start ms | peak RSS MB | bytes/job |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let cell = |text: &str| {
        if text.is_empty() {
            "—".to_owned()
        } else {
            ms(text)
        }
    };
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 11, "a CSV row of eleven fields: {line}");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            f[0],
            f[1],
            f[2],
            cell(f[3]),
            cell(f[4]),
            cell(f[5]),
            cell(f[6]),
            cell(f[7]),
            if f[8].is_empty() { "—" } else { f[8] },
            f[9],
            f[10]
        ));
    }
    out
}

/// The README's block for `name` (between its markers), as byte offsets.
fn block(readme: &str, name: &str) -> Option<(usize, usize)> {
    let start_marker =
        format!("<!-- {name}: generated from docs/bench/{name} by tests/suite/readme_figures.rs -->");
    let start = readme.find(&start_marker)? + start_marker.len();
    let end = start + readme[start..].find(&format!("<!-- /{name} -->"))?;
    Some((start, end))
}

/// Copies the fresh CSV (when asked to) and checks the README's block is its rendering.
fn check(doc: &str, name: &str, render: fn(&str) -> String, extra: &[(&str, &str)]) {
    // The tests run in parallel and both rewrite README.md: one at a time.
    static README: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = README.lock().unwrap_or_else(|p| p.into_inner());
    let csv_path = root().join("docs/bench").join(name);
    let readme_path = root().join(doc);
    if std::env::var_os("DAGLO_UPDATE_FIGURES").is_some() {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
        let fresh = target.join("daglo-bench").join(name);
        if fresh.exists() {
            std::fs::copy(&fresh, &csv_path).unwrap_or_else(|e| panic!("{}: {e}", fresh.display()));
            for (from, to) in extra {
                let _ = std::fs::copy(target.join("daglo-bench").join(from), root().join(to));
            }
            let readme = std::fs::read_to_string(&readme_path).unwrap();
            let (start, end) = block(&readme, name).expect("the README's markers");
            let csv = std::fs::read_to_string(&csv_path).unwrap();
            let updated = format!("{}\n{}{}", &readme[..start], render(&csv), &readme[end..]);
            std::fs::write(&readme_path, updated).unwrap();
        }
    }
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (start, end) = block(&readme, name).expect("the README marks the bench's table");
    assert_eq!(
        readme[start..end].trim(),
        render(&csv).trim(),
        "{doc}'s table differs from docs/bench/{name}: run the bench, then DAGLO_UPDATE_FIGURES=1 cargo test --test suite readme_figures::",
    );
}

#[test]
fn the_readme_table_is_the_bench_csv() {
    // The chart is drawn from the same run.
    check(
        "README.md",
        "strategies.csv",
        render_strategies,
        &[("tradeoff.svg", "docs/img/tradeoff.svg")],
    );
}

#[test]
fn the_benchmarks_receiver_table_is_the_receiver_bench_csv() {
    check("docs/benchmarks.md", "receiver.csv", render_receiver, &[]);
}

#[test]
fn the_benchmarks_receiver_cpu_table_is_the_receiver_bench_csv() {
    check("docs/benchmarks.md", "receiver-cpu.csv", render_receiver_cpu, &[]);
}

#[test]
fn the_readme_job_table_is_the_jobtable_bench_csv() {
    check("README.md", "jobtable.csv", render_jobtable, &[]);
}
