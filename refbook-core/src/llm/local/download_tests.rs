//! The downloader against a small HTTP server on loopback that serves one file, and can
//! cut a body short, ignore `Range`, or play the hub's redirect with its size and hash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// How the test server behaves.
#[derive(Clone, Default)]
struct Behaviour {
    /// Cut the body of the first `n` GETs after this many bytes.
    cut_after: Option<(usize, usize)>,
    /// Answer every GET with the whole file (200), `Range` or not.
    ignore_range: bool,
    /// Answer HEAD of `/resolve/…` with the hub's 302 naming this hash.
    hub_sha256: Option<String>,
}

/// `(method, path, Range header)` of one request.
type Seen = (String, String, Option<String>);

struct Server {
    base: String,
    /// Every request, in order.
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn serve(file: Vec<u8>, behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (log, file) = (seen.clone(), Arc::new(file));
    let gets = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (log, file, behaviour, gets) =
                (log.clone(), file.clone(), behaviour.clone(), gets.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let mut lines = head.lines();
                let mut request = lines.next().unwrap().split(' ');
                let (method, path) = (request.next().unwrap(), request.next().unwrap());
                let range = lines
                    .filter_map(|l| l.split_once(": "))
                    .find(|(k, _)| k.eq_ignore_ascii_case("range"))
                    .map(|(_, v)| v.to_owned());
                log.lock()
                    .unwrap()
                    .push((method.to_owned(), path.to_owned(), range.clone()));
                let total = file.len();
                let reply = if path == "/missing" {
                    (
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_owned(),
                        Vec::new(),
                    )
                } else if path.starts_with("/resolve/") {
                    let mut reply = format!(
                        "HTTP/1.1 302 Found\r\nLocation: /bytes\r\nX-Linked-Size: {total}\r\n"
                    );
                    if let Some(sha) = &behaviour.hub_sha256 {
                        reply.push_str(&format!("X-Linked-Etag: \"{sha}\"\r\n"));
                    }
                    reply.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
                    (reply, Vec::new())
                } else {
                    let start = range
                        .as_deref()
                        .filter(|_| !behaviour.ignore_range)
                        .and_then(|r| r.strip_prefix("bytes="))
                        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
                    let body = file[start.unwrap_or(0)..].to_vec();
                    let status = match start {
                        Some(s) => format!(
                            "206 Partial Content\r\nContent-Range: bytes {s}-{}/{total}",
                            total - 1
                        ),
                        None => "200 OK".to_owned(),
                    };
                    let n = gets.fetch_add(1, Ordering::SeqCst);
                    let body = match behaviour.cut_after {
                        Some((times, after)) if n < times => body[..after.min(body.len())].to_vec(),
                        _ => body,
                    };
                    let length = total - start.unwrap_or(0);
                    (
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
                        ),
                        body,
                    )
                };
                let _ = socket.write_all(reply.0.as_bytes()).await;
                let _ = socket.write_all(&reply.1).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Server { base, seen }
}

/// Records what the downloader reported.
#[derive(Default)]
struct Recorder {
    starts: Mutex<Vec<(Option<u64>, u64)>>,
    last: AtomicU64,
    finished: Mutex<Vec<bool>>,
}

impl DownloadProgress for Recorder {
    fn started(&self, _name: &str, total: Option<u64>, done: u64) {
        self.starts.lock().unwrap().push((total, done));
    }
    fn advanced(&self, done: u64) {
        self.last.store(done, Ordering::SeqCst);
    }
    fn finished(&self, _name: &str, ok: bool) {
        self.finished.lock().unwrap().push(ok);
    }
}

fn content() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 251) as u8).collect()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn remote(server: &Server, path: &str, sha256: Option<String>) -> Remote {
    Remote {
        url: format!("{}{path}", server.base),
        hub: path.starts_with("/resolve/"),
        sha256,
        cache_path: PathBuf::from("m.gguf"),
    }
}

fn downloader() -> Downloader {
    Downloader::new("refbook-test").unwrap()
}

#[tokio::test]
async fn a_download_is_verified_moved_into_place_and_never_repeated() {
    let file = content();
    let server = serve(file.clone(), Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("models/m.gguf");
    let progress = Recorder::default();
    let remote = remote(&server, "/m.gguf", Some(sha(&file)));
    downloader().fetch(&remote, &dest, &progress).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file);
    assert!(!part_path(&dest).exists());
    assert_eq!(*progress.starts.lock().unwrap(), vec![(Some(200_000), 0)]);
    assert_eq!(progress.last.load(Ordering::SeqCst), 200_000);
    assert_eq!(*progress.finished.lock().unwrap(), vec![true]);

    // The second time nothing is asked of the network.
    downloader().fetch(&remote, &dest, &progress).await.unwrap();
    assert_eq!(server.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_cut_download_resumes_where_it_broke_off() {
    let file = content();
    let behaviour = Behaviour {
        cut_after: Some((2, 70_000)),
        ..Behaviour::default()
    };
    let server = serve(file.clone(), behaviour).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.gguf");
    let progress = Recorder::default();
    let remote = remote(&server, "/m.gguf", Some(sha(&file)));
    downloader().fetch(&remote, &dest, &progress).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file);
    let ranges: Vec<Option<String>> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, range)| range.clone())
        .collect();
    assert_eq!(
        ranges,
        vec![
            None,
            Some("bytes=70000-".to_owned()),
            Some("bytes=140000-".to_owned())
        ],
        "each attempt asks only for what is missing"
    );
}

#[tokio::test]
async fn a_partial_file_left_by_an_earlier_run_is_continued() {
    let file = content();
    let server = serve(file.clone(), Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.gguf");
    std::fs::write(part_path(&dest), &file[..123_456]).unwrap();
    let progress = Recorder::default();
    let remote = remote(&server, "/m.gguf", Some(sha(&file)));
    downloader().fetch(&remote, &dest, &progress).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file);
    assert_eq!(
        *progress.starts.lock().unwrap(),
        vec![(Some(200_000), 123_456)]
    );
    assert_eq!(
        server.seen.lock().unwrap()[0].2.as_deref(),
        Some("bytes=123456-")
    );
}

#[tokio::test]
async fn a_server_that_ignores_range_is_read_from_the_start_again() {
    let file = content();
    let behaviour = Behaviour {
        cut_after: Some((1, 50_000)),
        ignore_range: true,
        ..Behaviour::default()
    };
    let server = serve(file.clone(), behaviour).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.gguf");
    let remote = remote(&server, "/m.gguf", Some(sha(&file)));
    downloader()
        .fetch(&remote, &dest, &Recorder::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file, "not appended twice");
}

#[tokio::test]
async fn a_checksum_mismatch_is_refused_and_the_bytes_removed() {
    let file = content();
    let server = serve(file.clone(), Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.gguf");
    let progress = Recorder::default();
    let wrong = sha(b"another file");
    let remote = remote(&server, "/m.gguf", Some(wrong.clone()));
    let err = downloader()
        .fetch(&remote, &dest, &progress)
        .await
        .unwrap_err();
    match err {
        DownloadError::Checksum { expected, actual } => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, sha(&file));
        }
        other => panic!("{other:?}"),
    }
    assert!(!dest.exists() && !part_path(&dest).exists());
    assert_eq!(*progress.finished.lock().unwrap(), vec![false]);
}

#[tokio::test]
async fn the_hub_names_the_hash_on_its_redirect() {
    let file = content();
    // The hub's hash is checked: the right one passes…
    let behaviour = Behaviour {
        hub_sha256: Some(sha(&file)),
        ..Behaviour::default()
    };
    let server = serve(file.clone(), behaviour).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ok.gguf");
    let hub_file = remote(&server, "/resolve/main/m.gguf", None);
    downloader()
        .fetch(&hub_file, &dest, &Recorder::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), file);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].0, "HEAD",
        "the metadata first, without following the redirect"
    );
    assert!(seen.iter().any(|(m, p, _)| m == "GET" && p == "/bytes"));

    // …and a file that does not match it is refused.
    let behaviour = Behaviour {
        hub_sha256: Some(sha(b"the real model")),
        ..Behaviour::default()
    };
    let server = serve(file, behaviour).await;
    let dest = dir.path().join("bad.gguf");
    let hub_file = remote(&server, "/resolve/main/m.gguf", None);
    let err = downloader()
        .fetch(&hub_file, &dest, &Recorder::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Checksum { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_server_and_a_missing_file_say_so() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/m.gguf", closed.local_addr().unwrap());
    drop(closed);
    let remote_file = Remote {
        url: url.clone(),
        hub: false,
        sha256: None,
        cache_path: PathBuf::from("m.gguf"),
    };
    let err = downloader()
        .fetch(
            &remote_file,
            &dir.path().join("m.gguf"),
            &Recorder::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DownloadError::Unreachable { url: u, .. } if *u == url),
        "{err:?}"
    );

    let server = serve(Vec::new(), Behaviour::default()).await;
    let missing = remote(&server, "/missing", None);
    let err = downloader()
        .fetch(&missing, &dir.path().join("x.gguf"), &Recorder::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert!(!dir.path().join("x.gguf.part").exists());
}
