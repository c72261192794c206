//! Web egress: a page recorded in Chromium (`WebEgressRequest`, the v2 `WebSource`), and
//! a room composite drawn by a custom web template (`custom_base_url`), planned onto the
//! same composite [`super::EgressPlan`] with the page as its one full-frame picture.

use super::error::RequestError;
use super::page_policy::PagePolicy;

/// What page a web egress records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageSource {
    /// Any http(s) page (`WebEgressRequest.url`, `WebSource.url`).
    Url(String),
    /// A room composite's custom template: LiveKit's egress loads
    /// `{base_url}?layout={layout}&token={token}&url={ws_url}` with a recorder's token, and
    /// the page joins the room itself.
    Template {
        /// `custom_base_url`.
        base_url: String,
        /// The request's `layout`, passed to the page as it is (the page interprets it).
        layout: String,
    },
}

/// A validated web egress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebPlan {
    /// The page.
    pub page: PageSource,
    /// Record from the page's `START_RECORDING` console message to its `END_RECORDING`
    /// (always for templates, as LiveKit's egress does); otherwise from the page's load.
    pub await_start_signal: bool,
}

impl WebPlan {
    /// The URL the browser opens. A template gets the server's `ws_url` and a token
    /// (`None` for a plain page: it needs neither).
    pub fn page_url(&self, room: Option<(&str, &str)>) -> String {
        match (&self.page, room) {
            (PageSource::Url(u), _) => u.clone(),
            (PageSource::Template { base_url, layout }, room) => {
                let (ws_url, token) = room.unwrap_or_default();
                template_url(base_url, ws_url, token, layout)
            }
        }
    }
}

/// Checks that `url` is an absolute http(s) URL with a host: the browser must never open
/// `file://`, `chrome://`, `javascript:` or `data:` pages for a request; nor an address
/// the default [`PagePolicy`] refuses (link-local, metadata services), whatever the
/// worker's own policy adds when the page is opened.
pub fn check_page_url(url: &str, field: &str) -> Result<(), RequestError> {
    if url.trim().is_empty() {
        return Err(RequestError::invalid(field, "is required"));
    }
    let parsed =
        url::Url::parse(url).map_err(|e| RequestError::invalid(field, format!("{e}: {url:?}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(RequestError::invalid(
            field,
            format!(
                "must be an http:// or https:// URL, got scheme {:?}",
                parsed.scheme()
            ),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(RequestError::invalid(field, "has no host"));
    }
    PagePolicy::default()
        .check_url(&parsed)
        .map_err(|r| RequestError::invalid(field, r.to_string()))
}

/// Query parameters whose values are credentials: a template's recorder token, and the
/// names pages commonly take theirs under.
#[cfg_attr(not(feature = "egress"), allow(dead_code))]
const SECRET_PARAMS: [&str; 4] = ["token", "access_token", "key", "secret"];

/// The secrets a page URL carries: its password and the values of [`SECRET_PARAMS`], as
/// they appear in the URL (percent-encoded) and decoded.
#[cfg_attr(not(feature = "egress"), allow(dead_code))]
fn secrets_of(url: &url::Url) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = url.password() {
        out.push(p.to_owned());
    }
    for (k, v) in url.query_pairs() {
        if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) && !v.is_empty() {
            out.push(v.into_owned());
        }
    }
    let encoded: Vec<String> = out
        .iter()
        .map(|v| url::form_urlencoded::byte_serialize(v.as_bytes()).collect())
        .collect();
    out.extend(encoded);
    out.retain(|v| v.len() >= 4);
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out.dedup();
    out
}

/// `text` (a log line, an error, a page URL itself) with every secret the page URL `url`
/// carries replaced by `{redacted}`: its token and similar query values, its password.
/// What leaves tessera about a page (logs, `EgressInfo.error`) goes through this.
#[cfg_attr(not(feature = "egress"), allow(dead_code))]
pub fn redact_page_secrets(text: &str, url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return text.to_owned();
    };
    let mut out = text.to_owned();
    for secret in secrets_of(&parsed) {
        out = out.replace(&secret, "{redacted}");
    }
    out
}

/// LiveKit's template URL: the base URL's own query kept, `layout`, `token` and `url` set
/// (replacing any the base carried), every key sorted as Go's `url.Values.Encode` does.
pub fn template_url(base_url: &str, ws_url: &str, token: &str, layout: &str) -> String {
    let Ok(mut url) = url::Url::parse(base_url) else {
        return base_url.to_owned();
    };
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !matches!(k.as_ref(), "layout" | "token" | "url"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.push(("layout".into(), layout.into()));
    pairs.push(("token".into(), token.into()));
    pairs.push(("url".into(), ws_url.into()));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_urls_secrets_never_show() {
        let url = template_url(
            "https://user:pa55word@t.example/rec/?key=k3y-value",
            "ws://127.0.0.1:7880",
            "eyJhbGciOi.J9.sig+/=",
            "grid",
        );
        let shown = redact_page_secrets(&url, &url);
        for secret in ["eyJhbGciOi", "pa55word", "k3y-value"] {
            assert!(url.contains(secret), "{url}");
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("token={redacted}"), "{shown}");
        assert!(shown.contains("layout=grid"), "{shown}");
        // An error quoting the URL, or the token decoded, is redacted too.
        let error = format!("net::ERR_FAILED loading {url} (token eyJhbGciOi.J9.sig+/=)");
        let shown = redact_page_secrets(&error, &url);
        assert!(!shown.contains("eyJhbGciOi"), "{shown}");
        assert!(
            shown.starts_with("net::ERR_FAILED loading https://"),
            "{shown}"
        );
        // A URL without secrets is left as it is.
        let plain = "http://127.0.0.1:8080/page.html?lang=en";
        assert_eq!(redact_page_secrets(plain, plain), plain);
    }

    #[test]
    fn only_http_and_https_pages_are_accepted() {
        assert!(check_page_url("http://127.0.0.1:8080/page.html", "url").is_ok());
        assert!(check_page_url("https://example.com/", "url").is_ok());
        for bad in [
            "file:///etc/passwd",
            "chrome://settings",
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://example.com/",
        ] {
            let e = check_page_url(bad, "url").unwrap_err().to_string();
            assert!(e.contains("url") && e.contains("http"), "{bad}: {e}");
        }
        let e = check_page_url("http://169.254.169.254/latest/meta-data/", "web.url")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("web.url") && e.contains("169.254.169.254 is not allowed"),
            "{e}"
        );
        let e = check_page_url("", "web.url").unwrap_err().to_string();
        assert!(e.contains("web.url") && e.contains("required"), "{e}");
        let e = check_page_url("not a url", "url").unwrap_err().to_string();
        assert!(e.starts_with("url"), "{e}");
    }

    #[test]
    fn a_template_url_carries_url_token_and_layout() {
        let u = template_url(
            "https://t.example/rec/?theme=dark&layout=old",
            "ws://127.0.0.1:7880",
            "ey.a.b",
            "grid light",
        );
        assert_eq!(
            u,
            "https://t.example/rec/?layout=grid+light&theme=dark&token=ey.a.b&url=ws%3A%2F%2F127.0.0.1%3A7880"
        );
        let back: Vec<(String, String)> = url::Url::parse(&u)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert!(back.contains(&("url".into(), "ws://127.0.0.1:7880".into())));
        assert!(back.contains(&("layout".into(), "grid light".into())));
    }
}
