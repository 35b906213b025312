//! Receiving an upload: checked while it arrives — the type from the first
//! bytes, the dimensions as soon as the header is in — hashed, and written
//! to object storage as it comes, so an upload holds at most one store
//! part in memory (`part_size`), never the whole file. Uploads never wait
//! for each other: on a shared HTTP/2 connection, a stream left unread
//! holds flow-control window the others need.

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use cityevents_runtime::{Error, Result};

use crate::check::{self, Checked, Limits};
use crate::store;

/// The most of an upload's beginning read to find its dimensions.
const HEAD_MAX: usize = 1024 * 1024;
/// The header is first looked for once this much has arrived.
const FIRST_LOOK: usize = 4 * 1024;

/// An upload that arrived whole and passed the checks.
#[derive(Debug)]
pub struct Received {
    pub checked: Checked,
    /// SHA-256 of the bytes, hex.
    pub sha: String,
    pub size: u64,
    /// Where the bytes are (see [`store::incoming_path`]).
    pub path: Path,
}

/// What an upload is held to.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The declared size; 0 when unknown.
    pub declared: u64,
    pub max_bytes: u64,
    pub limits: Limits,
    /// Bytes buffered before they go to the store: small for the file
    /// system, 5 MiB (its smallest multipart part) for S3.
    pub part_size: usize,
}

/// Reads `chunks` into the store. On any refusal nothing is left behind.
pub async fn receive<S>(
    chunks: &mut S,
    rules: Rules,
    store: Arc<dyn ObjectStore>,
) -> Result<Received>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    let path = store::incoming_path(Uuid::now_v7());
    let mut out = BufWriter::with_capacity(store.clone(), path.clone(), rules.part_size)
        .with_max_concurrency(1);
    let mut shut = false;
    let got = read(chunks, rules, &mut out, &mut shut).await;
    match got {
        Ok((checked, sha, size)) => Ok(Received {
            checked,
            sha,
            size,
            path,
        }),
        Err(e) => {
            if !shut {
                let _ = out.abort().await;
            }
            let _ = store.delete(&path).await;
            Err(e)
        }
    }
}

async fn read<S>(
    chunks: &mut S,
    rules: Rules,
    out: &mut BufWriter,
    shut: &mut bool,
) -> Result<(Checked, String, u64)>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    let stored =
        |e: object_store::Error| Error::unavailable(anyhow::anyhow!("storing an upload: {e}"));
    let limit = if rules.declared > 0 {
        rules.declared
    } else {
        rules.max_bytes
    };
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut checked = None;
    let mut next_look = FIRST_LOOK;
    let mut size = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(if rules.declared > 0 {
                Error::invalid("chunk", "more bytes than metadata.size_bytes declared")
            } else {
                Error::invalid(
                    "chunk",
                    format!("the file is larger than {} bytes", rules.max_bytes),
                )
            });
        }
        hasher.update(&chunk);
        if checked.is_some() {
            out.put(chunk).await.map_err(stored)?;
            continue;
        }
        head.extend_from_slice(&chunk);
        if head.len() >= check::SNIFF_BYTES {
            check::sniff(&head)?;
        }
        if head.len() >= next_look {
            checked = check::check_head(&head, rules.limits, false)?;
            match checked {
                Some(_) => out
                    .put(std::mem::take(&mut head).into())
                    .await
                    .map_err(stored)?,
                None if head.len() >= HEAD_MAX => {
                    return Err(Error::invalid(
                        "chunk",
                        "no image header in the first MiB: the file is damaged",
                    ));
                }
                None => next_look = head.len() * 2,
            }
        }
    }
    if rules.declared > 0 && size != rules.declared {
        return Err(Error::invalid(
            "chunk",
            "fewer bytes than metadata.size_bytes declared (cut off?)",
        ));
    }
    if size == 0 {
        return Err(Error::invalid("chunk", "no bytes arrived"));
    }
    let checked = match checked {
        Some(c) => c,
        None => {
            let c = check::check(&head, rules.limits)?;
            out.put(head.into()).await.map_err(stored)?;
            c
        }
    };
    *shut = true;
    out.shutdown()
        .await
        .map_err(|e| Error::unavailable(anyhow::anyhow!("storing an upload: {e}")))?;
    let sha = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((checked, sha, size))
}
