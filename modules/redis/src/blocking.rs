//! A connection of its own for blocking reads (`XREADGROUP ... BLOCK`): a blocked read on the
//! shared pipelined connections would hold up every other command queued behind it.

use std::time::Duration;

use fred::{
    clients::Client,
    interfaces::{ClientLike, StreamsInterface},
    prelude::Value,
    types::config::Options,
};

use crate::{Redis, RedisError, Reply};

/// A dedicated connection (reconnecting like the others) for one blocking consumer.
pub struct BlockingConnection {
    client: Client,
    command_timeout: Duration,
}

impl std::fmt::Debug for BlockingConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockingConnection")
    }
}

/// One stream entry: its id and its fields.
pub type StreamEntry = (String, Vec<(String, Vec<u8>)>);

impl Redis {
    /// Opens a dedicated connection for blocking reads (it connects in the background).
    pub fn blocking_connection(&self) -> BlockingConnection {
        let client = self.pool().next().clone_new();
        client.connect();
        BlockingConnection { client, command_timeout: self.command_timeout() }
    }

    /// How long a blocking read may block: well inside the command timeout (and so inside the
    /// unresponsive-connection detection), at most a second.
    pub fn max_block(&self) -> Duration {
        (self.command_timeout() / 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

impl BlockingConnection {
    /// `XREADGROUP GROUP <group> <consumer> COUNT 1 BLOCK <block> STREAMS <stream> >`: the next
    /// entry no consumer of the group has seen, waiting up to `block` for one.
    pub async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        block: Duration,
    ) -> Result<Option<StreamEntry>, RedisError> {
        // A fresh (or reconnecting) connection gets the block's time to come up.
        if !self.client.is_connected()
            && !matches!(
                tokio::time::timeout(block.max(self.command_timeout), self.client.wait_for_connect()).await,
                Ok(Ok(()))
            )
        {
            return Err(RedisError::Unavailable("not connected".into()));
        }
        let options = Options { timeout: Some(block + self.command_timeout), ..Options::default() };
        let value: Value = self
            .client
            .with_options(&options)
            .xreadgroup(group, consumer, Some(1), Some(block.as_millis() as u64), false, stream, ">")
            .await?;
        Ok(first_entry(Reply::from(value)))
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(self.command_timeout, self.client.quit()).await;
    }
}

/// The first entry of an XREADGROUP reply: `[[stream, [[id, [field, value, ...]], ...]]]`
/// (RESP2), or a map of stream to entries (RESP3, flattened by [`Reply`]).
fn first_entry(reply: Reply) -> Option<StreamEntry> {
    let mut top = reply.into_array().into_iter();
    let first = top.next()?;
    // RESP2: [stream, entries]; RESP3 map flattened: stream, entries.
    let entries = match first {
        Reply::Array(pair) => pair.into_iter().nth(1)?,
        Reply::Bytes(_) => top.next()?,
        _ => return None,
    };
    let entry = entries.into_array().into_iter().next()?;
    let mut parts = entry.into_array().into_iter();
    let id = parts.next()?.as_str()?.to_owned();
    let mut fields = Vec::new();
    let mut flat = parts.next()?.into_array().into_iter();
    while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
        let key = k.as_str()?.to_owned();
        let value = match v {
            Reply::Bytes(b) => b,
            other => other.as_i64()?.to_string().into_bytes(),
        };
        fields.push((key, value));
    }
    Some((id, fields))
}
