//! Who may read the status: with a token, a request must carry it (as a
//! bearer token, or as the password of basic auth, so a browser can ask
//! for it); without one, the page is on loopback only and a request must
//! name the host by IP address or `localhost`, so a web page cannot read
//! it through a DNS name rebound to 127.0.0.1.
use base64::Engine;
use hyper::header::{self, HeaderMap};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// Why a request is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// It does not carry the token.
    NoToken,
    /// No token is set, and it names the host by a DNS name.
    HostName,
}

/// Lets a request with `headers` through, or says why not.
///
/// # Errors
/// As [`Denied`].
pub fn check(headers: &HeaderMap, token: Option<&str>) -> Result<(), Denied> {
    match token {
        Some(token) if carries(headers, token) => Ok(()),
        Some(_) => Err(Denied::NoToken),
        None if host_is_literal(headers) => Ok(()),
        None => Err(Denied::HostName),
    }
}

/// Whether the `Authorization` header carries `token`.
fn carries(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let value = value.trim();
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let presented = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.trim().as_bytes().to_vec()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials.trim())
        else {
            return false;
        };
        // user:password; any user name.
        match decoded.iter().position(|b| *b == b':') {
            Some(colon) => decoded[colon + 1..].to_vec(),
            None => return false,
        }
    } else {
        return false;
    };
    // Digests of equal length: the comparison tells nothing of the
    // token's length either.
    let digest = |bytes: &[u8]| <[u8; 32]>::from(Sha256::digest(bytes));
    bool::from(digest(&presented).ct_eq(&digest(token.as_bytes())))
}

/// Whether `Host` is an IP address or `localhost`, with or without a port.
fn host_is_literal(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        // HTTP/1.0 without a Host: no browser sends that.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_token_is_taken_as_bearer_or_basic_password_only() {
        let auth = header::AUTHORIZATION;
        let ok = |value: &str| check(&headers(&[(auth.clone(), value)]), Some("s3cret"));
        assert_eq!(ok("Bearer s3cret"), Ok(()));
        assert_eq!(ok("bearer  s3cret "), Ok(()));
        // "admin:s3cret" and ":s3cret"
        assert_eq!(ok("Basic YWRtaW46czNjcmV0"), Ok(()));
        assert_eq!(ok("Basic OnMzY3JldA=="), Ok(()));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3crett",
            // "s3cret" as the user name, no password
            "Basic czNjcmV0Og==",
            "Basic !!!",
            "s3cret",
        ] {
            assert_eq!(ok(wrong), Err(Denied::NoToken), "{wrong}");
        }
        let missing = check(&HeaderMap::new(), Some("s3cret"));
        assert_eq!(missing, Err(Denied::NoToken));
    }

    #[test]
    fn without_a_token_the_host_must_be_an_address_or_localhost() {
        let host = |value: &str| check(&headers(&[(header::HOST, value)]), None);
        for good in [
            "127.0.0.1:7750",
            "[::1]:7750",
            "localhost:7750",
            "LOCALHOST",
        ] {
            assert_eq!(host(good), Ok(()), "{good}");
        }
        for bad in ["evil.example:7750", "127.0.0.1.evil.example"] {
            assert_eq!(host(bad), Err(Denied::HostName), "{bad}");
        }
        assert_eq!(check(&HeaderMap::new(), None), Ok(()));
    }
}
