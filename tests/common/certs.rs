//! Certificates for TLS tests, made with the openssl command line.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A certificate and key, as PEM file paths.
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

/// A throw-away certificate authority.
pub struct Ca {
    dir: PathBuf,
    name: String,
    pub cert: String,
    key: String,
}

/// Run the openssl command line; panic with its stderr if it fails.
pub fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (the CI script installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Ca {
    /// A new CA called `name`, its files in `dir`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let cert = dir.join(format!("{name}.pem")).display().to_string();
        let key = dir.join(format!("{name}.key")).display().to_string();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &key,
            "-out",
            &cert,
        ]);
        Ca {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            cert,
            key,
        }
    }

    /// A certificate for `dns` (server and client use), signed by this CA.
    pub fn leaf(&self, dns: &str) -> Leaf {
        let base = self.dir.join(format!("{}-{dns}", self.name));
        let p = |ext: &str| format!("{}.{ext}", base.display());
        std::fs::write(
            p("ext"),
            format!("subjectAltName=DNS:{dns}\nextendedKeyUsage=serverAuth,clientAuth\n"),
        )
        .unwrap();
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={dns}"),
            "-keyout",
            &p("key"),
            "-out",
            &p("csr"),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("csr"),
            "-CA",
            &self.cert,
            "-CAkey",
            &self.key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("ext"),
            "-out",
            &p("pem"),
        ]);
        Leaf {
            cert: p("pem"),
            key: p("key"),
        }
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1 in `dir`: (cert, key).
pub fn self_signed(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        &key,
        "-out",
        &cert,
    ]);
    (cert, key)
}
