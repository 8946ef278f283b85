//! Grants and the tokens they carry: issue, refresh (with optional rotation and reuse
//! detection), revoke, session check, and the five-authorizations-per-user eviction.
//!
//! Pure: callers pass `now` and freshly minted token strings, so tests need neither
//! clocks nor randomness. Wire formats live in `oauth.rs`, `rfc8628.rs` and `rest.rs`.
//! Tokens are compared here and never printed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Token strings the caller minted for this operation; unused ones are dropped.
pub struct Fresh {
    pub access: String,
    pub refresh: String,
}

/// What a token request hands back to the client.
#[derive(Debug)]
pub struct Minted {
    pub access_token: String,
    /// Present at grant creation when the scope allows it, and at a rotating refresh.
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// How grants behave; taken from `Config`.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub session_ttl: Duration,
    pub rotate: bool,
    /// Live grants the (single simulated) user may hold before the least recently
    /// used one is revoked, as Salesforce does for a connected app.
    pub max_per_user: usize,
    /// Refresh token policy: idle limit and absolute lifetime (`field.rs`).
    pub refresh_idle: Option<Duration>,
    pub refresh_lifetime: Option<Duration>,
}

/// One user approval: the refresh token (if any) and the access tokens minted from it.
struct Grant {
    scope: String,
    refresh: Option<String>,
    /// Refresh tokens rotated out of this grant; presenting one kills the grant.
    retired: Vec<String>,
    last_used: Instant,
    alive: bool,
    /// When the grant was made, and when its refresh token was last used for a refresh.
    created: Instant,
    refreshed: Instant,
}

struct Access {
    grant: usize,
    expires: Instant,
    alive: bool,
}

#[derive(Default)]
pub struct Grants {
    grants: Vec<Grant>,
    access: HashMap<String, Access>,
    revoked_refresh: usize,
}

impl Grants {
    /// A new grant for an approved device code. `with_refresh` follows the scope:
    /// only `refresh_token` or `offline_access` earns a refresh token.
    pub fn create(
        &mut self,
        scope: &str,
        with_refresh: bool,
        fresh: Fresh,
        now: Instant,
        policy: &Policy,
    ) -> Minted {
        while self.live_grants() >= policy.max_per_user.max(1) {
            self.evict_least_recently_used();
        }
        let index = self.grants.len();
        let refresh = with_refresh.then_some(fresh.refresh);
        self.grants.push(Grant {
            scope: scope.to_string(),
            refresh: refresh.clone(),
            retired: Vec::new(),
            last_used: now,
            alive: true,
            created: now,
            refreshed: now,
        });
        self.mint_access(index, fresh.access.clone(), now, policy);
        Minted {
            access_token: fresh.access,
            refresh_token: refresh,
            scope: scope.to_string(),
        }
    }

    /// A refresh-token grant. `None` means `invalid_grant`: unknown, revoked, evicted,
    /// or a rotated-out token, whose reuse also kills the grant it came from
    /// (docs/protocol.md, "Rotation": "Salesforce invalidates the current refresh token and any
    /// associated access tokens").
    pub fn refresh(
        &mut self,
        refresh_token: &str,
        fresh: Fresh,
        now: Instant,
        policy: &Policy,
    ) -> Option<Minted> {
        if let Some(index) = self
            .grants
            .iter()
            .position(|g| g.retired.iter().any(|t| t == refresh_token))
        {
            self.kill(index);
            return None;
        }
        let index = self
            .grants
            .iter()
            .position(|g| g.alive && g.refresh.as_deref() == Some(refresh_token))?;
        let grant = &self.grants[index];
        if crate::field::expired(
            grant.created,
            grant.refreshed,
            now,
            policy.refresh_idle,
            policy.refresh_lifetime,
        ) {
            self.kill(index);
            return None;
        }
        self.grants[index].last_used = now;
        self.grants[index].refreshed = now;
        let rotated = policy.rotate.then(|| {
            let grant = &mut self.grants[index];
            grant.retired.push(refresh_token.to_string());
            grant.refresh = Some(fresh.refresh.clone());
            fresh.refresh
        });
        self.mint_access(index, fresh.access.clone(), now, policy);
        Some(Minted {
            access_token: fresh.access,
            refresh_token: rotated,
            scope: self.grants[index].scope.clone(),
        })
    }

    /// Revokes a live access token (just that one) or a live refresh token (its whole
    /// grant). False when the token is unknown or already dead.
    pub fn revoke(&mut self, token: &str) -> bool {
        if let Some(access) = self.access.get_mut(token).filter(|a| a.alive) {
            access.alive = false;
            return true;
        }
        let Some(index) = self
            .grants
            .iter()
            .position(|g| g.alive && g.refresh.as_deref() == Some(token))
        else {
            return false;
        };
        self.kill(index);
        self.revoked_refresh += 1;
        true
    }

    /// Revokes every live grant (an admin revoking the user's access); how many died.
    pub fn revoke_all(&mut self) -> usize {
        let live: Vec<usize> = (0..self.grants.len())
            .filter(|&i| self.grants[i].alive)
            .collect();
        for &index in &live {
            self.kill(index);
        }
        live.len()
    }

    /// Whether `token` is a live, unexpired access token; a use counts for eviction order.
    pub fn authenticate(&mut self, token: &str, now: Instant) -> bool {
        let Some(access) = self.access.get(token) else {
            return false;
        };
        let grant = &mut self.grants[access.grant];
        if !access.alive || now >= access.expires || !grant.alive {
            return false;
        }
        grant.last_used = now;
        true
    }

    /// Ends every access token issued so far; refresh tokens stay valid.
    pub fn expire_sessions(&mut self) {
        for access in self.access.values_mut() {
            access.alive = false;
        }
    }

    /// Refresh tokens revoked through the revoke endpoint.
    pub fn revoked_refresh_tokens(&self) -> usize {
        self.revoked_refresh
    }

    /// Every access and refresh token ever minted, live or not (for leak checks in tests).
    pub fn every_token(&self) -> Vec<String> {
        let refresh = self
            .grants
            .iter()
            .flat_map(|g| g.refresh.iter().chain(g.retired.iter()));
        self.access.keys().chain(refresh).cloned().collect()
    }

    fn live_grants(&self) -> usize {
        self.grants.iter().filter(|g| g.alive).count()
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = self
            .grants
            .iter()
            .enumerate()
            .filter(|(_, g)| g.alive)
            .min_by_key(|(_, g)| g.last_used)
            .map(|(i, _)| i);
        if let Some(index) = oldest {
            self.kill(index);
        }
    }

    fn mint_access(&mut self, grant: usize, token: String, now: Instant, policy: &Policy) {
        let expires = now + policy.session_ttl;
        self.access.insert(
            token,
            Access {
                grant,
                expires,
                alive: true,
            },
        );
    }

    fn kill(&mut self, index: usize) {
        self.grants[index].alive = false;
        for access in self.access.values_mut().filter(|a| a.grant == index) {
            access.alive = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rotate: bool) -> Policy {
        Policy {
            session_ttl: Duration::from_secs(60),
            rotate,
            max_per_user: 5,
            refresh_idle: None,
            refresh_lifetime: None,
        }
    }

    fn fresh(n: u32) -> Fresh {
        Fresh {
            access: format!("AT{n}"),
            refresh: format!("RT{n}"),
        }
    }

    #[test]
    fn refresh_token_only_when_the_scope_allows() {
        let (t0, p) = (Instant::now(), policy(false));
        let mut g = Grants::default();
        assert_eq!(g.create("api", false, fresh(1), t0, &p).refresh_token, None);
        assert_eq!(
            g.create("api refresh_token", true, fresh(2), t0, &p)
                .refresh_token
                .as_deref(),
            Some("RT2")
        );
    }

    #[test]
    fn sessions_expire_after_their_ttl_and_on_demand() {
        let (t0, p) = (Instant::now(), policy(false));
        let mut g = Grants::default();
        g.create("api", true, fresh(1), t0, &p);
        assert!(g.authenticate("AT1", t0 + Duration::from_secs(59)));
        assert!(!g.authenticate("AT1", t0 + Duration::from_secs(60)));
        let again = g.refresh("RT1", fresh(2), t0, &p).unwrap();
        assert_eq!(
            again.refresh_token, None,
            "no rotation: keep the old refresh token"
        );
        g.expire_sessions();
        assert!(!g.authenticate("AT2", t0));
        assert!(g.refresh("RT1", fresh(3), t0, &p).is_some());
        assert!(g.authenticate("AT3", t0));
    }

    #[test]
    fn reusing_a_rotated_out_refresh_token_kills_the_grant() {
        let (t0, p) = (Instant::now(), policy(true));
        let mut g = Grants::default();
        g.create("api refresh_token", true, fresh(1), t0, &p);
        let second = g.refresh("RT1", fresh(2), t0, &p).unwrap();
        assert_eq!(second.refresh_token.as_deref(), Some("RT2"));
        assert!(g.refresh("RT1", fresh(3), t0, &p).is_none());
        assert!(
            g.refresh("RT2", fresh(4), t0, &p).is_none(),
            "the new token dies too"
        );
        assert!(!g.authenticate("AT2", t0), "and so do its access tokens");
    }

    #[test]
    fn revoking_a_refresh_token_kills_its_access_tokens() {
        let (t0, p) = (Instant::now(), policy(false));
        let mut g = Grants::default();
        g.create("api refresh_token", true, fresh(1), t0, &p);
        assert!(g.revoke("RT1"));
        assert!(!g.authenticate("AT1", t0));
        assert!(!g.revoke("RT1"));
        assert!(!g.revoke("AT1"));
        assert_eq!(g.revoked_refresh_tokens(), 1);
    }

    #[test]
    fn revoking_an_access_token_leaves_the_grant() {
        let (t0, p) = (Instant::now(), policy(false));
        let mut g = Grants::default();
        g.create("api refresh_token", true, fresh(1), t0, &p);
        assert!(g.revoke("AT1"));
        assert!(!g.authenticate("AT1", t0));
        assert!(g.refresh("RT1", fresh(2), t0, &p).is_some());
        assert_eq!(g.revoked_refresh_tokens(), 0);
    }

    #[test]
    fn the_sixth_grant_evicts_the_least_recently_used() {
        let (t0, p) = (Instant::now(), policy(false));
        let mut g = Grants::default();
        for n in 1..=5 {
            g.create(
                "api refresh_token",
                true,
                fresh(n),
                t0 + Duration::from_secs(n.into()),
                &p,
            );
        }
        // Grant 1 is used again, so grant 2 is now the least recently used.
        assert!(g.authenticate("AT1", t0 + Duration::from_secs(10)));
        g.create(
            "api refresh_token",
            true,
            fresh(6),
            t0 + Duration::from_secs(11),
            &p,
        );
        assert!(
            g.refresh("RT2", fresh(7), t0 + Duration::from_secs(12), &p)
                .is_none()
        );
        assert!(
            g.refresh("RT1", fresh(8), t0 + Duration::from_secs(12), &p)
                .is_some()
        );
    }
}
