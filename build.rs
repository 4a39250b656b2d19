// The web client is embedded with rust-embed; a release build must notice added or removed files
// under web-client/, not only edits to files it already embedded.
fn main() {
    println!("cargo:rerun-if-changed=web-client");
}
