//! Azure Blob Storage with `object_store` (Apache Arrow's, which signs with the account's
//! shared key): a block blob in one Put Blob up to [`BLOCK_THRESHOLD`], else blocks of
//! [`BLOCK_SIZE`] committed by a Put Block List (memory: a few blocks).

use std::sync::Arc;
use std::time::Duration;

use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    RetryConfig, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use super::s3::Body;
use super::spec::AzureSpec;
use super::{StorageError, content_type, encode_key};

/// Files larger than this go up in blocks.
pub const BLOCK_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Size of each block.
pub const BLOCK_SIZE: usize = 8 * 1024 * 1024;
/// Blocks in flight at once.
const BLOCKS_IN_FLIGHT: usize = 4;

/// A connected container.
pub struct AzureStore {
    store: Arc<dyn ObjectStore>,
    spec: AzureSpec,
}

impl AzureStore {
    /// A client for `spec` (no request yet). `object_store`'s own retries are off: the
    /// uploader's policy is the one that applies.
    pub fn new(spec: &AzureSpec) -> Result<AzureStore, StorageError> {
        let mut b = MicrosoftAzureBuilder::new()
            .with_account(&spec.account_name)
            .with_access_key(spec.account_key.expose())
            .with_container_name(&spec.container_name)
            .with_retry(RetryConfig {
                max_retries: 0,
                ..Default::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(300)),
            );
        if spec.emulator.is_some() {
            // object_store reads AZURITE_BLOB_STORAGE_URL itself.
            b = b.with_use_emulator(true).with_allow_http(true);
        }
        let store = b.build().map_err(|e| StorageError::Invalid {
            field: "azure".into(),
            reason: spec.account_key.mask_in(&e.to_string()),
        })?;
        Ok(AzureStore {
            store: Arc::new(store),
            spec: spec.clone(),
        })
    }

    /// The blob's URL.
    pub fn location(&self, key: &str) -> String {
        let s = &self.spec;
        match &s.emulator {
            Some(url) => format!(
                "{url}/{}/{}/{}",
                s.account_name,
                s.container_name,
                encode_key(key)
            ),
            None => format!(
                "https://{}.blob.core.windows.net/{}/{}",
                s.account_name,
                s.container_name,
                encode_key(key)
            ),
        }
    }

    fn fail(&self, what: &str, e: object_store::Error) -> StorageError {
        // Refusals (credentials, missing container, permissions) are not worth retrying.
        let retryable = !matches!(
            e,
            object_store::Error::NotFound { .. }
                | object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
                | object_store::Error::Precondition { .. }
        );
        StorageError::Store {
            store: format!(
                "azure container {:?} of account {:?}",
                self.spec.container_name, self.spec.account_name
            ),
            reason: self.spec.account_key.mask_in(&format!("{what}: {e}")),
            retryable,
        }
    }

    fn attributes(key: &str) -> Attributes {
        let mut a = Attributes::new();
        a.insert(Attribute::ContentType, content_type(key).into());
        a
    }

    /// Stores `body` as `key`; returns the blob's URL.
    pub async fn put(&self, body: Body<'_>, key: &str) -> Result<String, StorageError> {
        let path = ObjectPath::from(key);
        match body {
            Body::Bytes(b) => self.put_one(&path, b.to_vec(), key).await?,
            Body::File(file) => {
                let io = |source| StorageError::Io {
                    path: file.display().to_string(),
                    source,
                };
                let len = std::fs::metadata(file).map_err(io)?.len();
                if len <= BLOCK_THRESHOLD {
                    let bytes = tokio::fs::read(file).await.map_err(io)?;
                    self.put_one(&path, bytes, key).await?;
                } else {
                    let upload = self
                        .store
                        .put_multipart_opts(
                            &path,
                            PutMultipartOptions {
                                attributes: Self::attributes(key),
                                ..Default::default()
                            },
                        )
                        .await
                        .map_err(|e| self.fail("Put Block", e))?;
                    let mut writer = WriteMultipart::new_with_chunk_size(upload, BLOCK_SIZE);
                    let mut f = tokio::fs::File::open(file).await.map_err(io)?;
                    let mut buf = vec![0u8; BLOCK_SIZE];
                    loop {
                        let n = f.read(&mut buf).await.map_err(io)?;
                        if n == 0 {
                            break;
                        }
                        writer
                            .wait_for_capacity(BLOCKS_IN_FLIGHT)
                            .await
                            .map_err(|e| self.fail("Put Block", e))?;
                        writer.write(&buf[..n]);
                    }
                    writer
                        .finish()
                        .await
                        .map_err(|e| self.fail("Put Block List", e))?;
                }
            }
        }
        Ok(self.location(key))
    }

    async fn put_one(
        &self,
        path: &ObjectPath,
        bytes: Vec<u8>,
        key: &str,
    ) -> Result<(), StorageError> {
        self.store
            .put_opts(
                path,
                PutPayload::from(bytes),
                PutOptions {
                    attributes: Self::attributes(key),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.fail("Put Blob", e))?;
        Ok(())
    }
}
