//! Real stream receivers on loopback, started by the tests that use them and stopped when
//! dropped: nginx with the RTMP module (records every stream it receives to FLV) and
//! `srt-live-transmit` listening for SRT (writes the stream to a file).

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on 127.0.0.1:`port` (a server `what` just started).
pub fn wait_for_port(port: u16, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nginx-rtmp on a free port; application `live` accepts and records every stream as
/// `{record_dir}/{key}.flv`; any other application is refused.
pub struct Nginx {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start() -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("rec")).unwrap();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n\
             events {{ worker_connections 64; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; \
             application live {{ live on; record all; record_path {d}/rec; record_unique off; }} }} }}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (installed by scripts/setup.sh)");
        wait_for_port(port, Duration::from_secs(10), "nginx");
        Nginx { child, port, dir }
    }

    /// The URL of stream `key` in the accepting application.
    pub fn url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }

    /// Where nginx recorded stream `key`.
    pub fn recording(&self, key: &str) -> PathBuf {
        self.dir.path().join("rec").join(format!("{key}.flv"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `srt-live-transmit` listening on a free port, writing what it receives to `out`.
pub struct SrtListener {
    child: Child,
    pub port: u16,
    pub out: PathBuf,
}

impl SrtListener {
    pub fn start(dir: &Path) -> SrtListener {
        let port = free_udp_port();
        let out = dir.join(format!("srt-{port}.ts"));
        let file = std::fs::File::create(&out).unwrap();
        let child = Command::new("srt-live-transmit")
            .arg(format!("srt://127.0.0.1:{port}?mode=listener"))
            .arg("file://con")
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("srt-live-transmit (srt-tools, installed by scripts/setup.sh)");
        std::thread::sleep(Duration::from_millis(300));
        SrtListener { child, port, out }
    }

    pub fn url(&self) -> String {
        format!("srt://127.0.0.1:{}", self.port)
    }
}

impl Drop for SrtListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
