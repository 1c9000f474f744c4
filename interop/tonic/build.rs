//! Compiles ../../proto with protox (no system protoc) into tonic servers and
//! prost messages, and keeps the descriptor set for the client's proto3 JSON.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let fds = protox::compile(
        [
            "chat.proto",
            "greeter.proto",
            "sensor.proto",
            "observer.proto",
        ],
        ["../../proto"],
    )?;
    // The client names its stack's version in its report.
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock")?;
    let tonic_version = lock
        .split("[[package]]")
        .find_map(|package| {
            let mut lines = package.trim().lines();
            (lines.next()? == "name = \"tonic\"").then(|| lines.next())?
        })
        .and_then(|line| line.strip_prefix("version = \"")?.strip_suffix('"'))
        .ok_or("Cargo.lock has no tonic package")?;
    println!("cargo:rustc-env=TONIC_VERSION={tonic_version}");
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("descriptors.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
