//! A small HTTP server on 127.0.0.1 for the web egress tests: it serves the pages it is
//! given (any other path is a 404) and keeps the query string of every `/report` request
//! (what a page tells the test).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The server; it runs until the test process ends.
pub struct Pages {
    port: u16,
    reports: Arc<Mutex<Vec<String>>>,
}

impl Pages {
    /// Serves `pages` (path → HTML) on a free loopback port.
    pub fn serve(pages: &[(&str, String)]) -> Pages {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pages: HashMap<String, String> = pages
            .iter()
            .map(|(p, html)| (p.to_string(), html.clone()))
            .collect();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = reports.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                // Headers until the blank line.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let target = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let (status, body) = if path == "/report" {
                    seen.lock().unwrap().push(query.to_owned());
                    ("200 OK", String::new())
                } else if let Some(html) = pages.get(path) {
                    ("200 OK", html.clone())
                } else {
                    ("404 Not Found", "<h1>not here</h1>".to_owned())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Pages { port, reports }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// This server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The query strings reported so far.
    pub fn reports(&self) -> Vec<String> {
        self.reports.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for `n` reports.
    pub fn wait_reports(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.reports();
            if r.len() >= n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A page that fills itself with `colours[k % len]` during second k after its first 2 s
/// (timed by `performance.now()`, drawn every animation frame) and plays a sine of
/// `tone_hz` through WebAudio; `before_start` runs once at load (signals).
pub fn colour_page(colours: &[&str], tone_hz: f64, script: &str) -> String {
    let list = colours
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        r#"<!doctype html><html><head><style>html,body{{margin:0;height:100%;overflow:hidden}}</style></head>
<body><script>
const colours = [{list}];
const t0 = performance.now();
function paint() {{
  // The first colour stays 2 s longer: the page's own start-up (and the egress's) is over
  // before the colours start counting seconds.
  const k = Math.max(0, Math.floor((performance.now() - t0 - 2000) / 1000));
  document.body.style.background = colours[k % colours.length];
  requestAnimationFrame(paint);
}}
paint();
const ctx = new AudioContext();
const osc = ctx.createOscillator();
osc.frequency.value = {tone_hz};
const gain = ctx.createGain();
gain.gain.value = 0.5;
osc.connect(gain).connect(ctx.destination);
osc.start();
{script}
</script></body></html>"#
    )
}
