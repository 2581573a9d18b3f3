//! Places counted in Redis under leases: a cap on things running at once (a user's
//! completions on the OpenAI-compatible face) shared by every instance. A place is a
//! member of a sorted set scored by its lease's end; its holder renews it while it runs
//! and removes it when done, and the places of an instance that died expire with their
//! lease.

use std::sync::OnceLock;
use std::time::Duration;

use rand::Rng;

use super::Cluster;

/// `KEYS[1]`: the set. `ARGV[1]`: the cap; `ARGV[2]`: the lease in ms; `ARGV[3]`: the
/// member. Drops expired places, then takes one if there is room: 1 taken, 0 full.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
";

/// `KEYS[1]`: the set. `ARGV[1]`: the lease in ms; `ARGV[2]`: the member. Extends the
/// member's lease if it still holds its place.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
end
return 1
";

fn take_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(TAKE))
}

fn renew_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(RENEW))
}

/// How long a place lasts unless renewed; it is renewed every third of that.
const LEASE: Duration = Duration::from_secs(30);

/// A place taken in a shared cap; given back when dropped.
#[derive(Debug)]
pub struct SharedPlace {
    cluster: Cluster,
    key: String,
    member: String,
    renew: tokio::task::JoinHandle<()>,
}

impl Cluster {
    /// Takes one of `max` places named `name`, shared by every instance: `Ok(None)` when
    /// all are taken.
    ///
    /// # Errors
    ///
    /// Redis did not answer in time, or failed lately (the caller falls back to counting
    /// alone).
    pub async fn take_place(
        &self,
        name: &str,
        max: usize,
    ) -> redis::RedisResult<Option<SharedPlace>> {
        let key = self.key(&format!("places:{name}"));
        let nonce: u64 = rand::thread_rng().gen();
        let member = format!("{}-{nonce:016x}", self.inner.instance);
        let lease_ms = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
        let mut redis = self.redis();
        let taken: i64 = self
            .answer(
                take_script()
                    .key(&key)
                    .arg(max.max(1))
                    .arg(lease_ms)
                    .arg(&member)
                    .invoke_async(&mut redis),
            )
            .await?;
        if taken == 0 {
            return Ok(None);
        }
        let renew = tokio::spawn({
            let (key, member) = (key.clone(), member.clone());
            async move {
                loop {
                    tokio::time::sleep(LEASE / 3).await;
                    let renewed: redis::RedisResult<i64> = renew_script()
                        .key(&key)
                        .arg(lease_ms)
                        .arg(&member)
                        .invoke_async(&mut redis)
                        .await;
                    if let Err(err) = renewed {
                        tracing::debug!(error = %err, "Redis: renewing a place failed");
                    }
                }
            }
        });
        Ok(Some(SharedPlace {
            cluster: self.clone(),
            key,
            member,
            renew,
        }))
    }
}

impl Drop for SharedPlace {
    fn drop(&mut self) {
        self.renew.abort();
        let mut redis = self.cluster.redis();
        let (key, member) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.member),
        );
        tokio::spawn(async move {
            let removed: redis::RedisResult<i64> = redis::cmd("ZREM")
                .arg(key)
                .arg(member)
                .query_async(&mut redis)
                .await;
            if let Err(err) = removed {
                tracing::debug!(error = %err, "Redis: giving a place back failed; its lease ends it");
            }
        });
    }
}
