//! The local RTMP sink a bench with `--outputs rtmp` streams to: nginx with its RTMP
//! module (Debian's `libnginx-mod-rtmp`, what the tests use), started on a free loopback
//! port for the run and stopped when dropped. Each room publishes `live/bench-N`; nginx
//! accepts and drops the media, so the figure is tessera's cost of streaming (muxing,
//! the stream pipeline, the socket), not a player's.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where nginx's RTMP module is on Debian.
const MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A running nginx-rtmp on loopback.
pub struct RtmpSink {
    child: Child,
    port: u16,
}

impl RtmpSink {
    /// Starts nginx in `dir` (its configuration, pid and log go there). The error says
    /// what is missing.
    pub fn start(dir: &Path) -> Result<RtmpSink, String> {
        if !Path::new(MODULE).exists() {
            return Err(format!(
                "--outputs rtmp: needs nginx with the RTMP module ({MODULE}; Debian package libnginx-mod-rtmp)"
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let d = dir.display();
        let conf: PathBuf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
                 error_log {d}/error.log warn;\nload_module {MODULE};\n\
                 events {{ worker_connections 256; }}\n\
                 rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}\n"
            ),
        )
        .map_err(|e| format!("{}: {e}", conf.display()))?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("--outputs rtmp: starting nginx: {e}"))?;
        let mut sink = RtmpSink { child, port };
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || sink.child.try_wait().ok().flatten().is_some() {
                return Err(format!(
                    "--outputs rtmp: nginx did not listen on 127.0.0.1:{port} (see {d}/error.log)"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::info!(port, "local RTMP sink (nginx) started");
        Ok(sink)
    }

    /// The application URL rooms publish under (`{url}/bench-N`).
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.port)
    }
}

impl Drop for RtmpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
