//! Access tokens (HS256 JWTs naming a login session) and opaque refresh tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::timestamp::Timestamp;

const ACCESS_TYPE: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a string (RFC 7519).
    sub: String,
    /// The login session; deleting it revokes the token before it expires.
    sid: i64,
    /// Token type: only `access` tokens are accepted as bearer tokens.
    typ: String,
    iat: i64,
    exp: i64,
    /// Makes every token distinct, even two issued in the same second.
    jti: String,
}

/// Who an access token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user.
    pub user_id: UserId,
    /// The login session it was issued in.
    pub session_id: i64,
}

/// Issues and checks tokens; holds the HS256 key.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl_secs: u64,
    refresh_ttl_secs: u64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_ttl_secs", &self.access_ttl_secs)
            .field("refresh_ttl_secs", &self.refresh_ttl_secs)
            .finish_non_exhaustive()
    }
}

/// Seconds an access token is still accepted after its expiry (clocks of instances that
/// are slightly apart).
pub const LEEWAY_SECS: i64 = 5;

impl Tokens {
    /// Tokens signed with `secret`, living the given number of seconds.
    pub fn new(secret: &[u8], access_ttl_secs: u64, refresh_ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        // Expiry is checked against the service's clock (below), not jsonwebtoken's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl_secs,
            refresh_ttl_secs,
        }
    }

    /// Access token lifetime in seconds.
    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    /// Refresh token lifetime in seconds.
    pub fn refresh_ttl_secs(&self) -> u64 {
        self.refresh_ttl_secs
    }

    /// A signed access token for the user's session.
    ///
    /// # Errors
    ///
    /// `Internal` if the token cannot be signed.
    pub fn issue_access(&self, user_id: UserId, session_id: i64, now: Timestamp) -> Result<String> {
        let iat = now.unix_seconds();
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id,
            typ: ACCESS_TYPE.to_owned(),
            iat,
            exp: iat.saturating_add(i64::try_from(self.access_ttl_secs).unwrap_or(i64::MAX)),
            jti: random_token(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(Error::internal)
    }

    /// Checks signature, algorithm, expiry at `now` (with `LEEWAY_SECS` for clocks
    /// apart) and type; the session check is the caller's.
    ///
    /// # Errors
    ///
    /// `UNAUTHORIZED` for a token that fails any check.
    pub fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| Error::unauthorized())?;
        let claims = data.claims;
        if claims.exp.saturating_add(LEEWAY_SECS) < now.unix_seconds() {
            return Err(Error::unauthorized());
        }
        let user_id = claims.sub.parse().map_err(|_| Error::unauthorized())?;
        if claims.typ != ACCESS_TYPE {
            return Err(Error::unauthorized());
        }
        Ok(AccessClaims {
            user_id,
            session_id: claims.sid,
        })
    }
}

/// 256 random bits, base64url: refresh tokens, generated secrets.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a refresh token: its SHA-256, hex.
pub fn refresh_token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(b"0123456789abcdef0123456789abcdef", 7200, 604_800)
    }

    #[test]
    fn access_tokens_round_trip() {
        let t = tokens();
        let token = t.issue_access(UserId::new(7), 3, Timestamp::now()).unwrap();
        assert_eq!(
            t.verify_access(&token, Timestamp::now()).unwrap(),
            AccessClaims {
                user_id: UserId::new(7),
                session_id: 3
            }
        );
    }

    #[test]
    fn expired_foreign_and_tampered_tokens_fail() {
        let t = tokens();
        let old = Timestamp::now().plus_seconds(-7200 - 60);
        assert!(t
            .verify_access(
                &t.issue_access(UserId::new(7), 3, old).unwrap(),
                Timestamp::now()
            )
            .is_err());
        let other = Tokens::new(b"another-secret-another-secret-xx", 7200, 1);
        assert!(t
            .verify_access(
                &other
                    .issue_access(UserId::new(7), 3, Timestamp::now())
                    .unwrap(),
                Timestamp::now()
            )
            .is_err());
        let token = t.issue_access(UserId::new(7), 3, Timestamp::now()).unwrap();
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(t.verify_access(&tampered, Timestamp::now()).is_err());
        assert!(t.verify_access("not.a.jwt", Timestamp::now()).is_err());
    }

    #[test]
    fn expiry_is_checked_against_the_given_time_with_the_leeway() {
        let t = tokens();
        let issued = Timestamp::now();
        let token = t.issue_access(UserId::new(7), 3, issued).unwrap();
        let at = |seconds| issued.plus_seconds(seconds);
        assert!(t.verify_access(&token, at(7200 + LEEWAY_SECS)).is_ok());
        assert!(t.verify_access(&token, at(7200 + LEEWAY_SECS + 1)).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        // header {"alg":"none","typ":"JWT"}, valid-looking claims, no signature
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let now = Timestamp::now().unix_seconds();
        let body = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"1","sid":1,"typ":"access","iat":{now},"exp":{}}}"#,
            now + 600
        ));
        assert!(tokens()
            .verify_access(&format!("{header}.{body}."), Timestamp::now())
            .is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = random_token();
        assert_ne!(a, random_token());
        assert_eq!(a.len(), 43);
        assert_eq!(refresh_token_hash(&a).len(), 64);
        assert_ne!(refresh_token_hash(&a), a);
    }
}
