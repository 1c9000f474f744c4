//! Compiles ../../proto with protox (no system protoc) into tonic servers.

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
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
