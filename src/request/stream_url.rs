//! Stream URLs: which transport a URL means, `mux://` expansion, and the redaction that
//! keeps stream keys out of results and logs.

/// Stream transport of one URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// RTMP or RTMPS (FLV).
    Rtmp,
    /// SRT (MPEG-TS).
    Srt,
}

/// A stream destination.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamUrl {
    /// The URL as given (`mux://KEY` included), used to match removals.
    pub given: String,
    /// The URL connected to (`mux://` expanded). Holds the stream key: never log it.
    pub url: String,
    /// Its kind.
    pub kind: StreamKind,
}

impl std::fmt::Debug for StreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamUrl({})", redact_url(&self.url))
    }
}

/// Mux's RTMPS ingest, which `mux://KEY` expands to.
pub const MUX_INGEST: &str = "rtmps://global-live.mux.com:443/app/";

/// Parses and checks one stream URL.
pub fn parse_stream_url(given: &str) -> Result<StreamUrl, String> {
    let given = given.trim();
    let (scheme, rest) = given
        .split_once("://")
        .ok_or_else(|| format!("{:?} is not a URL", redact_url(given)))?;
    let (url, kind) = match scheme.to_ascii_lowercase().as_str() {
        "rtmp" | "rtmps" => (given.to_owned(), StreamKind::Rtmp),
        "srt" => (given.to_owned(), StreamKind::Srt),
        "mux" => {
            if rest.is_empty() || rest.contains('/') {
                return Err("mux:// needs a stream key: mux://STREAM_KEY".into());
            }
            (format!("{MUX_INGEST}{rest}"), StreamKind::Rtmp)
        }
        other => {
            return Err(format!(
                "unsupported stream scheme {other:?}: use rtmp://, rtmps://, srt:// or mux://"
            ));
        }
    };
    let host = url.split_once("://").map_or("", |(_, r)| r);
    let host = host.split(['/', '?']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("{:?} has no host", redact_url(given)));
    }
    Ok(StreamUrl {
        given: given.to_owned(),
        url,
        kind,
    })
}

/// The URL with its secrets replaced by `{redacted}`, as LiveKit reports it: an RTMP URL's
/// stream key (the path after the application), `mux://` keys, and SRT `streamid` and
/// `passphrase` values; user:password too.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "{redacted}".into();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = match rest.split_once('@') {
        Some((_, host)) if !host.is_empty() => format!("{{redacted}}@{host}"),
        _ => rest.to_owned(),
    };
    let mut out = format!("{scheme}://");
    match scheme.to_ascii_lowercase().as_str() {
        "mux" => out.push_str("{redacted}"),
        "rtmp" | "rtmps" => {
            // host/app/key: everything after the application is the key.
            let parts: Vec<&str> = rest.splitn(3, '/').collect();
            match parts.as_slice() {
                [host, app, key] if !key.is_empty() => {
                    out.push_str(&format!("{host}/{app}/{{redacted}}"))
                }
                _ => out.push_str(&rest),
            }
        }
        _ => out.push_str(&rest),
    }
    if let Some(q) = query {
        let q: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if !matches!(k, "mode" | "latency" | "transtype") => {
                    format!("{k}={{redacted}}")
                }
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys_are_redacted() {
        assert_eq!(
            redact_url("rtmp://a.rtmp.youtube.com/live2/abcd-efgh"),
            "rtmp://a.rtmp.youtube.com/live2/{redacted}"
        );
        assert_eq!(redact_url("mux://secretkey"), "mux://{redacted}");
        assert_eq!(
            redact_url("srt://h:9000?mode=caller&streamid=key&passphrase=pw"),
            "srt://h:9000?mode=caller&streamid={redacted}&passphrase={redacted}"
        );
        assert_eq!(
            redact_url("rtmp://user:pw@h/app/key"),
            "rtmp://{redacted}@h/app/{redacted}"
        );
        assert_eq!(redact_url("rtmp://h/app"), "rtmp://h/app");
    }

    #[test]
    fn stream_urls_parse_and_mux_expands() {
        let m = parse_stream_url("mux://k1").unwrap();
        assert_eq!(m.url, "rtmps://global-live.mux.com:443/app/k1");
        assert_eq!(m.kind, StreamKind::Rtmp);
        assert_eq!(
            parse_stream_url("srt://127.0.0.1:9000").unwrap().kind,
            StreamKind::Srt
        );
        for bad in ["http://x/y", "rtmp://", "nonsense", "mux://"] {
            let e = parse_stream_url(bad).unwrap_err();
            assert!(!e.is_empty());
        }
        assert!(!format!("{m:?}").contains("k1"));
    }
}
