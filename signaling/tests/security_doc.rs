//! `docs/security.md` names, for every hostile input it lists, the test that checks the answer.
//! This keeps the table honest: each named test must exist (a renamed or deleted test fails
//! here), and the table keeps at least the 40 rows the security review asked for.

use std::path::{Path, PathBuf};

const MIN_ROWS: usize = 40;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("signaling/ sits in the repository")
        .to_path_buf()
}

/// One row of the hostile-input table: what is sent, and the test that checks the answer.
struct Row {
    input: String,
    test: String,
}

/// The rows of the first table under `## Hostile inputs`: its last column holds the test name
/// in backticks.
fn rows(doc: &str) -> Vec<Row> {
    let Some(start) = doc.find("## Hostile inputs") else {
        return Vec::new();
    };
    let section = &doc[start..];
    let section = match section[3..].find("\n## ") {
        Some(end) => &section[..end + 3],
        None => section,
    };
    section
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter(|l| !l.contains("---"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let test = cells.last()?.trim_matches('`').to_owned();
            // The header row names its columns without backticks.
            if !cells.last()?.starts_with('`') {
                return None;
            }
            Some(Row {
                input: cells.get(1).copied().unwrap_or_default().to_owned(),
                test,
            })
        })
        .collect()
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(
                name.as_ref(),
                "target" | "node_modules" | ".git" | "vendor" | "corpus" | "artifacts"
            ) {
                source_files(&path, out);
            }
        } else if name.ends_with(".rs") || name.ends_with(".mjs") {
            out.push(path);
        }
    }
}

/// A Rust test is `fn name(`; a browser test is `file.mjs: label`, a label its file prints.
fn exists(test: &str, sources: &[(PathBuf, String)]) -> bool {
    if let Some((file, label)) = test.split_once(".mjs: ") {
        let file = format!("{file}.mjs");
        return sources
            .iter()
            .any(|(p, text)| p.ends_with(&file) && text.contains(label));
    }
    let needle = format!("fn {test}(");
    sources.iter().any(|(_, text)| text.contains(&needle))
}

#[test]
fn every_hostile_input_in_the_security_doc_names_a_test_that_exists() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/security.md")).expect("docs/security.md");
    let rows = rows(&doc);
    assert!(
        rows.len() >= MIN_ROWS,
        "docs/security.md lists {} hostile inputs, at least {MIN_ROWS} expected",
        rows.len()
    );
    let mut files = Vec::new();
    source_files(&root, &mut files);
    let sources: Vec<(PathBuf, String)> = files
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect();
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| !exists(&r.test, &sources))
        .map(|r| format!("{} → `{}`", r.input, r.test))
        .collect();
    assert!(
        missing.is_empty(),
        "tests named in docs/security.md that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_table_parser_reads_names_and_skips_the_header() {
    let doc = "# x\n## Hostile inputs\n| # | input | answer | test |\n|---|---|---|---|\n\
               | 1 | junk | 400 | `a_test` |\n| 2 | page | shown | `run.mjs: part a` |\n## Next\n\
               | 3 | not in the section | - | `other` |\n";
    let rows = rows(doc);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].test, "a_test");
    assert_eq!(rows[1].test, "run.mjs: part a");
    let sources = vec![
        (PathBuf::from("x/lib.rs"), "fn a_test() {}".to_owned()),
        (
            PathBuf::from("tests/browser/run.mjs"),
            "step('part a')".to_owned(),
        ),
    ];
    assert!(exists("a_test", &sources));
    assert!(exists("run.mjs: part a", &sources));
    assert!(!exists("b_test", &sources));
    assert!(!exists("admin.mjs: part a", &sources));
}
