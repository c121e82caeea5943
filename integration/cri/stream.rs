//! The client side of the CRI streaming server (the URLs that Exec and Attach
//! return), over WebSocket with Kubernetes' `v4.channel.k8s.io` protocol: the
//! one kubectl's WebSocket executor speaks, and which containerd's copy of
//! kubelet's streaming server accepts beside SPDY. Each binary message starts
//! with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error (a JSON Status when
//! the process ends), 4 terminal resize.
//!
//! containerd's streaming server listens on 127.0.0.1 of the network namespace
//! containerd runs in (the test's), so the connection is made from a thread
//! that entered that namespace; the socket stays in it afterwards.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// RFC 6455's example key, and the accept value it must get back.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x08];

/// What came back on each channel, and whether the server closed.
#[derive(Default)]
pub struct Received {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub error: Vec<u8>,
    pub closed: bool,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_struct("Received")
            .field("stdout", &t(&self.stdout))
            .field("stderr", &t(&self.stderr))
            .field("error", &t(&self.error))
            .field("closed", &self.closed)
            .finish()
    }
}

impl Received {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn error_text(&self) -> String {
        String::from_utf8_lossy(&self.error).into_owned()
    }
}

pub struct Stream {
    sock: TcpStream,
    last_channel: u8,
    pub got: Received,
}

/// `http://HOST:PORT/PATH` split in its address and path.
fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("streaming URL {url:?} is not http://"));
    let slash = rest.find('/').unwrap_or(rest.len());
    (rest[..slash].to_string(), rest[slash..].to_string())
}

/// A TCP connection to `addr` made inside the network namespace bound at `netns`.
fn connect_in(netns: &Path, addr: &str) -> TcpStream {
    let ns = File::open(netns).unwrap_or_else(|e| panic!("open {}: {e}", netns.display()));
    let addr = addr.to_string();
    thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns(net)");
        TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    })
    .join()
    .expect("connect thread")
}

impl Stream {
    /// Opens `url` (from an Exec or Attach response) as a WebSocket.
    pub fn open(url: &str, netns: &Path) -> Stream {
        let (addr, path) = split_url(url);
        let mut sock = connect_in(netns, &addr);
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set_read_timeout");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\
             Origin: http://{addr}\r\n\r\n"
        );
        sock.write_all(req.as_bytes())
            .expect("send upgrade request");
        // Byte by byte, so no frame after the headers is swallowed.
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = sock.read(&mut b).expect("read upgrade response");
            assert!(
                n == 1,
                "streaming server closed during the handshake: {head:?}"
            );
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "no WebSocket upgrade: {head}"
        );
        assert!(head.contains(ACCEPT), "wrong Sec-WebSocket-Accept: {head}");
        assert!(
            head.contains("v4.channel.k8s.io"),
            "protocol not agreed: {head}"
        );
        Stream {
            sock,
            last_channel: 1,
            got: Received::default(),
        }
    }

    /// Sends `data` on `channel` (0 stdin, 4 resize) as one masked binary frame.
    pub fn send(&mut self, channel: u8, data: &[u8]) {
        let mut payload = vec![channel];
        payload.extend_from_slice(data);
        let mut frame = vec![0x82];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(&MASK);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        self.sock.write_all(&frame).expect("send frame");
    }

    fn read_exact(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; n];
        match self.sock.read_exact(&mut buf) {
            Ok(()) => Some(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(e) => panic!("read frame: {e} (received so far: {:?})", self.got),
        }
    }

    /// Reads one frame into `got`; false once the connection is closed.
    fn read_frame(&mut self) -> bool {
        let Some(h) = self.read_exact(2) else {
            return false;
        };
        let opcode = h[0] & 0x0f;
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes(
                self.read_exact(2).unwrap_or_default()[..2]
                    .try_into()
                    .expect("len"),
            ) as usize,
            127 => u64::from_be_bytes(
                self.read_exact(8).unwrap_or_default()[..8]
                    .try_into()
                    .expect("len"),
            ) as usize,
            n => n as usize,
        };
        let mask = if h[1] & 0x80 != 0 {
            self.read_exact(4)
        } else {
            None
        };
        let Some(mut data) = self.read_exact(len) else {
            return false;
        };
        if let Some(m) = mask {
            data.iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= m[i % 4]);
        }
        match opcode {
            8 => return false,
            // A continuation carries on the previous frame's channel.
            0 => self.append(self.last_channel, &data),
            1 | 2 if !data.is_empty() => {
                self.last_channel = data[0];
                self.append(data[0], &data[1..]);
            }
            _ => {}
        }
        true
    }

    fn append(&mut self, channel: u8, data: &[u8]) {
        match channel {
            1 => self.got.stdout.extend_from_slice(data),
            2 => self.got.stderr.extend_from_slice(data),
            3 => self.got.error.extend_from_slice(data),
            _ => {}
        }
    }

    /// Reads frames until `done` holds (or the server closes); panics after 30 s.
    pub fn read_until(&mut self, what: &str, done: impl Fn(&Received) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&self.got) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.got
            );
            if !self.read_frame() {
                self.got.closed = true;
                break;
            }
        }
        assert!(
            done(&self.got),
            "stream closed before {what}: {:?}",
            self.got
        );
    }

    /// Reads everything until the server closes the stream.
    pub fn read_to_close(&mut self) {
        self.read_until("the end of the stream", |r| r.closed);
    }
}
