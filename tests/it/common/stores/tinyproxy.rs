//! An HTTP proxy: tinyproxy.

use super::*;

/// tinyproxy on 127.0.0.1 requiring BasicAuth `user`/`password` (no credentials: 407;
/// wrong ones: tinyproxy 1.11 answers 401), allowing clients from 127.0.0.1 only, logging
/// each request line (LogLevel Info) to a file read by `log()`. Plain-HTTP proxying and
/// CONNECT to any port.
pub struct Tinyproxy {
    dir: tempfile::TempDir,
    port: u16,
    user: String,
    password: String,
    _server: Server,
}

impl Tinyproxy {
    /// `user` and `password`: no whitespace, quotes or `:` (tinyproxy's config syntax).
    pub fn start(user: &str, password: &str) -> Tinyproxy {
        for s in [user, password] {
            assert!(
                !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == ':'),
                "tinyproxy credentials cannot hold whitespace, quotes or ':': {s:?}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let log = dir.path().join("tinyproxy.log");
        let conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 120\nMaxClients 50\n\
             LogFile \"{}\"\nLogLevel Info\nAllow 127.0.0.1\nBasicAuth {user} {password}\n",
            log.display()
        );
        let conf_path = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new("tinyproxy");
        cmd.current_dir(dir.path())
            .arg("-d")
            .arg("-c")
            .arg(&conf_path);
        let mut server = Server::spawn("tinyproxy", cmd, &dir.path().join("stderr.log"));
        server.wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Tinyproxy {
            dir,
            port,
            user: user.into(),
            password: password.into(),
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT`
    pub fn url_with_credentials(&self) -> String {
        format!(
            "http://{}:{}@127.0.0.1:{}",
            self.user, self.password, self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The log so far: one `CONNECT ... Request (file descriptor N): GET http://... HTTP/1.1`
    /// line per request (also for refused ones), then `Established connection to host`
    /// for each one forwarded.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}
