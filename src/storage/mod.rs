//! Where finished files go: cloud object stores (S3 and S3-compatible stores, Ali OSS
//! through its S3-compatible API, Google Cloud Storage, Azure Blob) or the local disk.
//!
//! - [`spec`] validates LiveKit's upload messages (`S3Upload`, `AliOSSUpload`, ...) into
//!   [`StoreSpec`]s before any media work starts (errors name the field), applies the
//!   precedence output → worker default → local, and redacts secrets;
//! - [`s3`] talks to S3 with `aws-sdk-s3` (single PUT, multipart for large files);
//! - [`gcs`] to Google Cloud Storage's JSON API (media upload, resumable for large files);
//! - [`azure`] to Azure Blob with `object_store` (Put Blob, blocks for large files);
//! - [`uploader`] uploads a stream of files (segments, playlists, images, manifests) in
//!   order from a queue that never blocks media, with retries, a backup store, and local
//!   files deleted only once their upload is confirmed.

pub(crate) mod azure;
pub(crate) mod gcs;
pub(crate) mod s3;
pub(crate) mod spec;
pub(crate) mod uploader;

pub use spec::{StorageDefaults, StoreSpec, from_provider};
pub use uploader::{RetryPolicy, UploadQueue, UploadReport, Uploaded, Uploader};

/// Why storage could not be set up or a file could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A storage field of the request or the configuration is unusable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as the request names it (`file_outputs[0].s3.bucket`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store refused or failed an operation (the message holds no secret).
    #[error("{store}: {reason}")]
    Store {
        /// Which store (kind and bucket), e.g. `s3 bucket "rec"`.
        store: String,
        /// The cause, from the store or the network.
        reason: String,
        /// Whether trying again may help (network errors, 5xx, throttling) or not (a
        /// refusal: bad credentials, no such bucket, access denied).
        retryable: bool,
    },
    /// Reading the local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The local file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The content type of a stored file, by extension.
pub fn content_type(key: &str) -> &'static str {
    let ext = key.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "mp4" | "m4s" => "video/mp4",
        "webm" => "video/webm",
        "ogg" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "ts" => "video/mp2t",
        "m3u8" => "application/x-mpegurl",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Percent-encodes an object key for a URL path, keeping `/` between segments.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Most of a store's error body read (it goes, shortened, into the error).
pub const ERROR_BODY_LIMIT: usize = 4096;

/// The start of an error response's body, at most [`ERROR_BODY_LIMIT`] bytes read: a store
/// (or something posing as one) that sends an endless body costs nothing more.
pub async fn error_body(mut r: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match r.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_error_body_is_read_only_so_far() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut req = [0u8; 1024];
            let _ = c.read(&mut req);
            let _ = c.write_all(
                b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            // An error body that never ends.
            let chunk = format!("{:x}\r\n{}\r\n", 1024, "x".repeat(1024));
            while c.write_all(chunk.as_bytes()).is_ok() {}
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let body = rt.block_on(async {
            let r = reqwest::get(format!("http://{addr}/")).await.unwrap();
            assert_eq!(r.status(), 403);
            tokio::time::timeout(std::time::Duration::from_secs(10), error_body(r))
                .await
                .expect("the body was read to its (missing) end")
        });
        assert_eq!(body.len(), ERROR_BODY_LIMIT);
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("a/b.mp4"), "video/mp4");
        assert_eq!(content_type("x.M3U8"), "application/x-mpegurl");
        assert_eq!(content_type("seg_00001.ts"), "video/mp2t");
        assert_eq!(content_type("thumb.jpeg"), "image/jpeg");
        assert_eq!(content_type("EG_1.json"), "application/json");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn keys_are_percent_encoded_except_slashes() {
        assert_eq!(encode_key("room 1/a+b.mp4"), "room%201/a%2Bb.mp4");
        assert_eq!(encode_key("é.ts"), "%C3%A9.ts");
    }
}
