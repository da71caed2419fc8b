//! Writes the golden vectors into `tests/vectors/`.
//!
//! Run `cargo run -p iggy-dlq-tests --bin generate-vectors` only when adding
//! a vector: the committed files are a contract, and the tests fail when
//! this program would write something else.

fn main() -> std::io::Result<()> {
    let dir = iggy_dlq_tests::vectors::vectors_dir();
    std::fs::create_dir_all(&dir)?;
    for (name, envelope) in iggy_dlq_tests::vectors::golden_vectors() {
        std::fs::write(dir.join(format!("{name}.bin")), envelope.encode_to_bytes())?;
        std::fs::write(
            dir.join(format!("{name}.json")),
            iggy_dlq_tests::vectors::vector_json(&envelope),
        )?;
        println!("wrote {name}");
    }
    Ok(())
}
