//! Keeps `docs/protocol.md` true to `signaling::protocol`.
//!
//! - Every fenced block whose info string starts with `json` must say its direction
//!   (` ```json client ` or ` ```json server `) and parse with the server's own code:
//!   client examples through `parse_client_frame` (the very function the server runs on each
//!   frame, limits included), server examples as `ServerMessage`. Each example must also be in
//!   canonical form (re-serialising gives the same JSON value), so the doc never shows a `null`
//!   the server would not send or a field spelled two ways.
//! - Every message type of both enums has at least one example, and the error-code table lists
//!   every `ErrorCode` with the right fatal flag. The lists of variants are read from the
//!   protocol's source itself (`src/protocol/`), so a message or code added there fails this
//!   test until documented.

use std::collections::BTreeSet;

use serde_json::Value;
use signaling::protocol::{ErrorCode, PROTOCOL_VERSION, ServerMessage, parse_client_frame};

const DOC: &str = include_str!("../../docs/protocol.md");
/// The protocol's files that define the enums this test reads (`wire_names_of_enum`).
const SOURCE: &str = concat!(
    include_str!("../src/protocol/client.rs"),
    include_str!("../src/protocol/server.rs"),
    include_str!("../src/protocol/codes.rs"),
);

#[derive(Debug, PartialEq)]
enum Direction {
    Client,
    Server,
}

struct Example {
    line: usize,
    direction: Direction,
    text: String,
}

/// Fenced blocks tagged `json …`, with the line they start on. Errors for untagged or unclosed ones.
fn json_blocks(doc: &str) -> (Vec<Example>, Vec<String>) {
    let (mut examples, mut errors) = (Vec::new(), Vec::new());
    let mut open: Option<(usize, Option<Direction>, String)> = None; // (line, direction if json, body)
    for (i, line) in doc.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match open.take() {
                None => {
                    let mut words = info.split_whitespace();
                    let direction = match (words.next(), words.next()) {
                        (Some("json"), Some("client")) => Some(Direction::Client),
                        (Some("json"), Some("server")) => Some(Direction::Server),
                        (Some("json"), other) => {
                            errors.push(format!(
                                "line {line_no}: a json block must say ```json client or ```json server, got {other:?}"
                            ));
                            None
                        }
                        _ => None,
                    };
                    open = Some((line_no, direction, String::new()));
                }
                Some((start, Some(direction), text)) => examples.push(Example {
                    line: start,
                    direction,
                    text,
                }),
                Some((_, None, _)) => {}
            }
        } else if let Some((_, _, body)) = open.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((start, _, _)) = open {
        errors.push(format!("line {start}: code block never closed"));
    }
    (examples, errors)
}

/// Checks every example; returns one message per problem and the `type` tags seen per direction.
fn check_doc(doc: &str) -> (Vec<String>, BTreeSet<String>, BTreeSet<String>) {
    let (examples, mut errors) = json_blocks(doc);
    let (mut client_types, mut server_types) = (BTreeSet::new(), BTreeSet::new());
    for ex in &examples {
        let at = format!("line {} ({:?} example)", ex.line, ex.direction);
        let written: Value = match serde_json::from_str(&ex.text) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("{at}: not JSON: {e}"));
                continue;
            }
        };
        let reserialised = match ex.direction {
            Direction::Client => match parse_client_frame(&ex.text) {
                Ok(frame) => {
                    client_types.insert(frame.message.kind().to_string());
                    let mut value = serde_json::to_value(&frame.message).unwrap();
                    if let Some(id) = frame.request_id {
                        value["request_id"] = serde_json::to_value(id).unwrap();
                    }
                    value
                }
                Err(e) => {
                    errors.push(format!(
                        "{at}: the server refuses it ({:?}): {}",
                        e.code, e.message
                    ));
                    continue;
                }
            },
            Direction::Server => match serde_json::from_str::<ServerMessage>(&ex.text) {
                Ok(msg) => {
                    if written["v"] != PROTOCOL_VERSION {
                        errors.push(format!("{at}: \"v\" must be {PROTOCOL_VERSION}"));
                    }
                    let value = serde_json::to_value(&msg).unwrap();
                    server_types.insert(value["type"].as_str().unwrap_or_default().to_string());
                    value
                }
                Err(e) => {
                    errors.push(format!("{at}: not a ServerMessage: {e}"));
                    continue;
                }
            },
        };
        if reserialised != written {
            errors.push(format!(
                "{at}: not in canonical form; the code would write {reserialised}"
            ));
        }
    }
    (errors, client_types, server_types)
}

/// The variants of `pub enum <name>` in the protocol source, as their snake_case wire names.
/// Variants are the lines indented by exactly four spaces that start with a capital letter.
fn wire_names_of_enum(name: &str) -> BTreeSet<String> {
    let header = format!("pub enum {name} {{");
    let body = SOURCE
        .split_once(&header)
        .unwrap_or_else(|| panic!("`{header}` not found in src/protocol/"))
        .1;
    let body = &body[..body.find("\n}").expect("enum body closes")];
    let names: BTreeSet<String> = body
        .lines()
        .filter(|l| l.starts_with("    ") && l[4..].starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|l| {
            let ident: String = l[4..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            snake_case(&ident)
        })
        .collect();
    assert!(
        !names.is_empty(),
        "no variants found in {name}: has the source layout changed?"
    );
    names
}

fn snake_case(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Rows `| `code` | yes/no | …` of the error table.
fn error_table(doc: &str) -> Vec<(String, bool)> {
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let fatal = match *cells.get(2)? {
                "yes" => true,
                "no" => false,
                _ => return None,
            };
            Some((code.to_string(), fatal))
        })
        .collect()
}

#[test]
fn every_example_in_the_doc_is_a_valid_message() {
    let (errors, _, _) = check_doc(DOC);
    assert!(
        errors.is_empty(),
        "docs/protocol.md:\n  {}",
        errors.join("\n  ")
    );
}

#[test]
fn every_message_type_has_an_example() {
    let (_, client_types, server_types) = check_doc(DOC);
    let missing_client: Vec<_> = wire_names_of_enum("ClientMessage")
        .difference(&client_types)
        .cloned()
        .collect();
    let missing_server: Vec<_> = wire_names_of_enum("ServerMessage")
        .difference(&server_types)
        .cloned()
        .collect();
    assert!(
        missing_client.is_empty() && missing_server.is_empty(),
        "docs/protocol.md has no example of client messages {missing_client:?} / server messages {missing_server:?}"
    );
}

#[test]
fn error_table_lists_every_code_with_its_fatal_flag() {
    let rows = error_table(DOC);
    let documented: BTreeSet<String> = rows.iter().map(|(c, _)| c.clone()).collect();
    let missing: Vec<_> = wire_names_of_enum("ErrorCode")
        .difference(&documented)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "error codes missing from the table in docs/protocol.md: {missing:?}"
    );
    for (code, fatal) in rows {
        let parsed: ErrorCode = serde_json::from_value(Value::String(code.clone()))
            .unwrap_or_else(|e| panic!("`{code}` in the error table is not an ErrorCode: {e}"));
        assert_eq!(
            parsed.is_fatal(),
            fatal,
            "fatal flag of `{code}` in docs/protocol.md"
        );
    }
}

/// The checker itself must catch broken examples, or the tests above prove nothing.
#[test]
fn checker_rejects_malformed_examples() {
    let cases = [
        (
            "```json client\n{\"v\": 1, \"type\": \"join\", \"token\": \"x\",}\n```\n",
            "not JSON",
        ),
        (
            "```json client\n{\"v\": 1, \"type\": \"join\"}\n```\n",
            "refuses",
        ),
        (
            "```json client\n{\"v\": 1, \"type\": \"ping\", \"extra\": 1}\n```\n",
            "refuses",
        ),
        (
            "```json client\n{\"v\": 2, \"type\": \"ping\"}\n```\n",
            "refuses",
        ),
        (
            "```json client\n{\"v\": 1, \"type\": \"pong\"}\n```\n",
            "refuses",
        ),
        (
            "```json server\n{\"v\": 1, \"type\": \"ping\"}\n```\n",
            "not a ServerMessage",
        ),
        (
            "```json server\n{\"v\": 7, \"type\": \"pong\"}\n```\n",
            "\"v\" must be",
        ),
        (
            "```json server\n{\"v\": 1, \"type\": \"error\", \"code\": \"bad_json\", \"message\": \"m\", \"request\": null, \"fatal\": false}\n```\n",
            "canonical",
        ),
        ("```json\n{\"v\": 1, \"type\": \"ping\"}\n```\n", "must say"),
        (
            "```json server\n{\"v\": 1, \"type\": \"pong\"}\n",
            "never closed",
        ),
    ];
    for (doc, expected) in cases {
        let (errors, _, _) = check_doc(doc);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "expected an error containing {expected:?} for {doc:?}, got {errors:?}"
        );
    }
    let (errors, client, server) = check_doc(
        "text\n```json client\n{\"v\":1,\"type\":\"ping\"}\n```\n```text\n{not json}\n```\n```json server\n{\"v\":1,\"type\":\"pong\"}\n```\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert!(client.contains("ping") && server.contains("pong"));
}
