//! TLS through the project's one crypto provider (*ring*): a real handshake with a loopback
//! server, which the client refuses when the server's certificate chains to no root it trusts,
//! and completes when it does.
//!
//! The fixtures are a test CA (`fixtures/tls-ca.pem`, whose private key was discarded when the
//! server certificate was signed) and a server certificate and key for `localhost` and
//! `127.0.0.1`, valid for a century. Nothing here trusts them beyond this test.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use daglo_client::{Client, Error, ErrorKind, install_crypto_provider};
use daglo_core::Rid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CA: &[u8] = include_bytes!("../fixtures/tls-ca.pem");
const CERT: &[u8] = include_bytes!("../fixtures/tls-server-cert.pem");
const KEY: &[u8] = include_bytes!("../fixtures/tls-server-key.pem");

/// What the server saw of one connection: the request line, or why the handshake failed.
type Seen = Result<String, String>;

/// A TLS server on a free loopback port, on a thread of its own, for `connections`
/// connections; each request is answered `200` with a status body.
fn server(connections: usize) -> (SocketAddr, JoinHandle<Vec<Seen>>) {
    let provider = Arc::new(daglo_core::internal::ring_provider());
    let certs = CertificateDer::pem_slice_iter(CERT)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let connection = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, tcp);
            let head = {
                let mut reader = BufReader::new(&mut tls);
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(_) if !line.is_empty() => {
                        // The rest of the head, up to the blank line.
                        let mut header = String::new();
                        while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                            header.clear();
                        }
                        Ok(line.trim_end().to_owned())
                    }
                    Ok(_) => Err("closed before a request".to_owned()),
                    Err(e) => Err(e.to_string()),
                }
            };
            if head.is_ok() {
                let body = r#"{"status":"transcribing","progress":40}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                tls.write_all(answer.as_bytes()).unwrap();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
            seen.push(head);
        }
        seen
    });
    (addr, handle)
}

#[tokio::test]
async fn a_server_whose_certificate_chains_to_no_trusted_root_is_refused_with_a_typed_error() {
    let (addr, server) = server(1);
    let client = Client::builder()
        .token("test-token")
        .base_url(format!("https://127.0.0.1:{}", addr.port()))
        .build()
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), client.status_once(&Rid::new("some-rid")))
        .await
        .expect("the handshake ends within 30 s");
    let error = answer.expect_err("the test CA is not a root the client trusts");
    assert!(
        matches!(
            error,
            Error::Transport {
                request_sent: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Transient);
    let chain = daglo_core::error_chain(&error);
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    assert!(!chain.contains("test-token"), "{chain}");
    let seen = tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    assert!(
        seen[0].as_ref().is_err(),
        "the server never got a request: {seen:?}"
    );
}

#[tokio::test]
async fn a_trusted_server_is_reached_over_tls_with_the_installed_provider() {
    let (addr, server) = server(1);
    install_crypto_provider();
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(CA).unwrap()])
        .build()
        .unwrap();
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        http.get(format!(
            "https://127.0.0.1:{}/stt/v1/async/transcripts/r1",
            addr.port()
        ))
        .send(),
    )
    .await
    .expect("answered within 30 s")
    .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.text().await.unwrap(),
        r#"{"status":"transcribing","progress":40}"#
    );
    let seen = tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    assert_eq!(
        seen,
        vec![Ok("GET /stt/v1/async/transcripts/r1 HTTP/1.1".to_owned())]
    );
}
