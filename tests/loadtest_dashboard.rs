//! The Grafana dashboard in deploy/grafana is valid JSON, and every metric it queries is one
//! the server exports (named in the sfu or signaling sources, or a `process_*` gauge), except
//! on panels marked PLANNED or NEW.

use std::collections::BTreeSet;
use std::path::Path;

fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &expr[i..];
        if (rest.starts_with("hoinghi_") || rest.starts_with("process_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
        {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            let name = name
                .strip_suffix("_bucket")
                .or_else(|| name.strip_suffix("_sum"))
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(name);
            out.insert(name.to_owned());
            i += end;
        } else {
            i += 1;
        }
    }
    out
}

fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
}

#[test]
fn dashboard_queries_exported_metrics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/grafana/hoinghi.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let mut code = String::new();
    sources(&root.join("sfu/src"), &mut code);
    sources(&root.join("signaling/src"), &mut code);
    let panels = dash["panels"].as_array().expect("panels");
    let mut checked = 0;
    for p in panels {
        let desc = p["description"].as_str().unwrap_or("");
        let skip = desc.starts_with("PLANNED") || desc.starts_with("NEW");
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("expr");
            for name in metric_names(expr) {
                if skip || name.starts_with("process_") {
                    continue;
                }
                assert!(
                    code.contains(&format!("\"{name}\"")),
                    "panel {:?} queries {name}, which the server does not export",
                    p["title"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} metric references checked");
}

#[test]
fn names_are_extracted_from_promql() {
    let n = metric_names(
        "histogram_quantile(0.95, sum by (le) (rate(hoinghi_join_seconds_bucket{job=~\"x\"}[5m]))) + process_cpu_seconds_total",
    );
    assert_eq!(
        n.into_iter().collect::<Vec<_>>(),
        ["hoinghi_join_seconds", "process_cpu_seconds_total"]
    );
}
