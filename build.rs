//! Compiles `proto/` with protox (no system `protoc`) and generates the tonic
//! clients and servers. The file descriptor set is written to OUT_DIR so the
//! binary can embed it for prost-reflect and server reflection.

use prost::Message;
use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "chat.proto",
    "greeter.proto",
    "sensor.proto",
    "observer.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    embed_corpus(&out_dir)?;
    let fds = protox::compile(PROTOS, ["proto"])?;
    fs::write(out_dir.join("contract_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

/// Writes `corpus.rs`: every `fixtures/**/*.json` and `snapshots/**/*.snap`
/// (but `snapshots/peers/` and the client ones), every
/// `client-fixtures/**/*.json` and `snapshots/client/**/*.snap` as
/// `(name, include_str!(..))`, so the binary carries the corpus and its golden
/// snapshots. `include_str!` makes cargo rebuild when one changes; the
/// directory rerun lines catch files added or removed.
fn embed_corpus(out_dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let mut code = String::new();
    for (konst, dir, ext) in [
        ("FIXTURES", "fixtures", "json"),
        ("SNAPSHOTS", "snapshots", "snap"),
        ("CLIENT_FIXTURES", "client-fixtures", "json"),
        ("CLIENT_SNAPSHOTS", "snapshots/client", "snap"),
    ] {
        println!("cargo:rerun-if-changed={dir}");
        let mut files = Vec::new();
        collect(&root.join(dir), ext, &mut files)?;
        // snapshots/peers/<peer>/ hold the interop peers' accepted
        // divergences (passed with --snapshots), not golden snapshots.
        // snapshots/client/ are the client goldens (their own constant),
        // snapshots/client-peers/ the client peers' accepted divergences.
        if konst == "SNAPSHOTS" {
            files.retain(|f| {
                [
                    "snapshots/peers",
                    "snapshots/client",
                    "snapshots/client-peers",
                ]
                .iter()
                .all(|d| !f.starts_with(root.join(d)))
            });
        }
        files.sort();
        code.push_str(&format!("pub const {konst}: &[(&str, &str)] = &[\n"));
        for file in files {
            let rel = file.strip_prefix(root.join(dir))?.with_extension("");
            let name = rel.to_string_lossy().replace('\\', "/");
            code.push_str(&format!(
                "    ({name:?}, include_str!({:?})),\n",
                file.display().to_string()
            ));
        }
        code.push_str("];\n");
    }
    fs::write(out_dir.join("corpus.rs"), code)?;
    Ok(())
}

/// Every file under `dir` (recursively) whose name ends in `.ext`; none when
/// `dir` is missing.
fn collect(dir: &std::path::Path, ext: &str, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, ext, out)?;
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    Ok(())
}
