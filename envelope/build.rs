//! Generates the Rust types of `proto/iggy/dlq/v1/envelope.proto` with
//! prost-build, and their canonical protobuf JSON (serde) impls with
//! pbjson-build. The schema is parsed by `protox`, so no system `protoc` is
//! needed.

use std::env;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../proto");
    let proto_file = proto_root.join("iggy/dlq/v1/envelope.proto");
    println!("cargo:rerun-if-changed={}", proto_file.display());

    let descriptors = protox::compile([&proto_file], [&proto_root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("iggy.dlq.v1.descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;

    prost_build::Config::new()
        // Payloads and header values decode as slices of the input buffer,
        // not as copies.
        .bytes(["."])
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptor_path)?)?
        .build(&[".iggy.dlq.v1"])?;
    Ok(())
}
