//! TLS both ways through the binary: `serve --tls-cert --tls-key
//! --tls-client-ca` and a run with `--ca-cert --client-cert --client-key`,
//! with a CA, server and client certificates generated for the test.

use super::{conform, first_line_within};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// PEM files of a CA, a server certificate for localhost and 127.0.0.1,
/// and a client certificate, all signed by that CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn generate() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "grpc-conform test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        fs_write(dir.path(), "ca.pem", &ca_cert.pem());
        let issuer = Issuer::new(ca, ca_key);
        for (name, sans) in [
            (
                "server",
                vec!["localhost".to_string(), "127.0.0.1".to_string()],
            ),
            ("client", vec!["client.example".to_string()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            fs_write(dir.path(), &format!("{name}.pem"), &cert.pem());
            fs_write(dir.path(), &format!("{name}.key"), &key.serialize_pem());
        }
        Pki { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

fn fs_write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

/// `grpc-conform serve` with `args` on a free port, killed when dropped.
struct Served {
    child: Child,
    address: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `grpc-conform serve --listen 127.0.0.1:0 ARGS`, waiting at most
/// 10 s for its address.
fn serve(args: &[&std::ffi::OsStr]) -> Served {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("grpc-conform"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let line = first_line_within(&mut child, Duration::from_secs(10));
    let mut served = Served {
        child,
        address: String::new(),
    };
    served.address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_string();
    served
}

#[test]
fn mutual_tls_against_the_reference_served_over_tls() {
    let pki = Pki::generate();
    let server = serve(&[
        "--tls-cert".as_ref(),
        pki.path("server.pem").as_os_str(),
        "--tls-key".as_ref(),
        pki.path("server.key").as_os_str(),
        "--tls-client-ca".as_ref(),
        pki.path("ca.pem").as_os_str(),
    ]);
    let run = || {
        let mut cmd = conform();
        cmd.args(["--target", &server.address, "--time-scale", "2"])
            .args([
                "--filter",
                "greeter/unary",
                "--filter",
                "chat/bidi/interleaved",
            ])
            .arg("--ca-cert")
            .arg(pki.path("ca.pem"));
        cmd
    };
    run()
        .arg("--client-cert")
        .arg(pki.path("client.pem"))
        .arg("--client-key")
        .arg(pki.path("client.key"))
        .assert()
        .code(0)
        .stdout(predicates::str::contains("2 fixtures against 127.0.0.1:"))
        .stdout(predicates::str::contains("2 passed, 0 failed"));
    // Without a client certificate the server refuses every conversation
    // (TLS 1.3: the alert comes after the client's handshake is done).
    run()
        .assert()
        .code(1)
        .stdout(predicates::str::contains("! connection lost"))
        .stdout(predicates::str::contains("0 passed"));
    // The same from a config file's [tls] table (paths relative to it).
    std::fs::write(
        pki.path("grpc-conform.toml"),
        format!(
            "target = \"{}\"\ntime_scale = 2.0\nfilter = [\"greeter/unary\"]\n[tls]\nca_cert = \"ca.pem\"\nclient_cert = \"client.pem\"\nclient_key = \"client.key\"\n",
            server.address
        ),
    )
    .unwrap();
    conform()
        .current_dir(pki.dir.path())
        .assert()
        .code(0)
        .stdout(predicates::str::contains("1 passed, 0 failed"));
    // The server's key is not the client certificate's: refused up front.
    run()
        .arg("--client-cert")
        .arg(pki.path("client.pem"))
        .arg("--client-key")
        .arg(pki.path("server.key"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--client-cert"));
}

#[test]
fn tls_flags_come_in_pairs_and_bad_files_are_named() {
    let pki = Pki::generate();
    conform()
        .arg("--client-cert")
        .arg(pki.path("client.pem"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--client-key"));
    conform()
        .args(["serve", "--tls-cert"])
        .arg(pki.path("server.pem"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--tls-key"));
    conform()
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(pki.path("missing.pem"))
        .arg("--tls-key")
        .arg(pki.path("server.key"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("missing.pem"));
}
