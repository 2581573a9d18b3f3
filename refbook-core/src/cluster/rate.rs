//! Rate limits counted in Redis, so every instance draws on one allowance: GCRA (the
//! generic cell rate algorithm, as `governor` counts locally) in one Lua script, atomic
//! on the Redis server and timed by its clock.

use std::sync::OnceLock;
use std::time::Duration;

use super::Cluster;

/// `KEYS[1]`: the counter. `ARGV[1]`: milliseconds between actions at the sustained rate
/// (`T`); `ARGV[2]`: the burst (`n`). The key holds the theoretical arrival time (TAT) in
/// milliseconds. An action is allowed when `max(TAT, now) + T - now <= n·T`; then TAT
/// moves to `max(TAT, now) + T`. Returns 0 when allowed, else the milliseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + period
local allow_at = new_tat - burst * period
if allow_at > now then
  return allow_at - now
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return 0
";

fn script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(GCRA))
}

impl Cluster {
    /// Counts one action against `key`'s allowance of `per_minute` (a burst of that many,
    /// then one every `60/per_minute` s), shared by every instance. `Ok(None)` when
    /// allowed, `Ok(Some(wait))` when over it.
    ///
    /// # Errors
    ///
    /// Redis did not answer within 500 ms, or failed lately (the caller falls back to
    /// counting alone).
    pub async fn rate_check(
        &self,
        key: &str,
        per_minute: u32,
    ) -> redis::RedisResult<Option<Duration>> {
        let per_minute = per_minute.max(1);
        let period_ms = 60_000 / u64::from(per_minute);
        let mut redis = self.redis();
        let wait_ms: u64 = self
            .answer(
                script()
                    .key(self.key(&format!("rate:{key}")))
                    .arg(period_ms.max(1))
                    .arg(per_minute)
                    .invoke_async(&mut redis),
            )
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }
}
