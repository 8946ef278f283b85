//! Why a pairing died: a refused refresh, classified from what the server said (HTTP status,
//! OAuth `error`, `error_description`) into a cause with a line for the person at the device
//! and an action for the org's admin (docs/protocol.md, "When a pairing dies").
//!
//! Pure, and total: every answer gets a cause, [`Cause::Unknown`] when nothing matches, so a
//! new server text never hides the server's own words (the message always quotes them).
//! Descriptions are compared case-insensitively by substring, because Salesforce's texts are
//! known only from field reports. What cannot be told apart at the wire is not guessed at: an
//! admin's revocation, the refresh token policy's expiry (idle or absolute), a rotated-out token
//! and the eviction of the oldest of five pairings all answer the same `invalid_grant` /
//! `expired access/refresh token`, so they are one cause here.
//!
//! No I/O, no secrets: the inputs are the server's error fields, which never carry a token.

use alloc::format;
use alloc::string::String;

use crate::error::{Error, ErrorKind};

/// Why the server refused a refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// `invalid_grant` / `expired access/refresh token`: revoked by an admin or the user,
    /// expired by the refresh token policy (idle or absolute lifetime), rotated out, or evicted
    /// by a sixth pairing of the same user (indistinguishable at the wire).
    RevokedOrExpired,
    /// `invalid_grant` / `ip restricted`: the app's refresh token IP allowlist (or the org's
    /// login IP ranges) does not include the network the device is on now.
    IpRestricted,
    /// `invalid_client` / `invalid client credentials` (or a description naming the secret):
    /// the app requires the consumer secret for the refresh token flow, and none or a wrong one
    /// was sent.
    SecretRequired,
    /// `invalid_client_id`: the consumer key is not known to this org (the app was deleted, or
    /// the device points at another org).
    UnknownClient,
    /// `invalid_grant` / `authentication failure`, `inactive_user`, `inactive_org`: the user (or
    /// org) that approved the pairing can no longer log in.
    UserInactive,
    /// Anything else: the server's own words say what.
    Unknown,
    /// Not the server: the stored pairing is sealed and its seal cannot be opened on this board
    /// (`store::unopened`; the message says which seal and what to do).
    SealUnopened,
}

/// Classifies a refused refresh. `description` is `error_description` (empty when absent).
pub fn classify(status: u16, error: &str, description: &str) -> Cause {
    let description = description.to_ascii_lowercase();
    let says = |needle: &str| description.contains(needle);
    // The status does not decide anything yet: Salesforce answers these with 400, and RFC 6749
    // §5.2 allows 401 for `invalid_client`; both are accepted alike.
    let _ = status;
    match error {
        "invalid_grant" if says("ip restricted") || says("ip address") => Cause::IpRestricted,
        "invalid_grant" if says("authentication failure") || says("inactive") => {
            Cause::UserInactive
        }
        "invalid_grant" => Cause::RevokedOrExpired,
        "inactive_user" | "inactive_org" => Cause::UserInactive,
        "invalid_client" if says("credentials") || says("secret") => Cause::SecretRequired,
        "invalid_client_id" => Cause::UnknownClient,
        _ => Cause::Unknown,
    }
}

impl Cause {
    /// A stable name, for JSON and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Cause::RevokedOrExpired => "revoked_or_expired",
            Cause::IpRestricted => "ip_restricted",
            Cause::SecretRequired => "secret_required",
            Cause::UnknownClient => "unknown_client",
            Cause::UserInactive => "user_inactive",
            Cause::Unknown => "unknown",
            Cause::SealUnopened => "seal_unopened",
        }
    }

    /// What happened, in a few words (also the `systemctl status` line, see `notify.rs`).
    pub const fn short(self) -> &'static str {
        match self {
            Cause::RevokedOrExpired => "the refresh token was revoked or expired",
            Cause::IpRestricted => "this network is not allowed to refresh",
            Cause::SecretRequired => "the app requires its consumer secret",
            Cause::UnknownClient => "the org does not know this app",
            Cause::UserInactive => "the user who paired can no longer log in",
            Cause::Unknown => "the server refused the refresh",
            Cause::SealUnopened => "the sealed pairing cannot be opened here",
        }
    }

    /// One line for the person at the device.
    pub const fn for_person(self) -> &'static str {
        match self {
            Cause::RevokedOrExpired => {
                "The pairing ended at the server: it was revoked, expired under the app's \
                 refresh token policy, or replaced when the same user paired a sixth device \
                 (the server does not say which). Pair again."
            }
            Cause::IpRestricted => {
                "The org refuses refreshes from the network this device is on now. Move it back \
                 to an allowed network, or ask the admin to allow this one."
            }
            Cause::SecretRequired => {
                "The app now requires its consumer secret for refreshes (\"Require Secret for \
                 Refresh Token Flow\"). Give it with --client-secret-file or \
                 SFPAIR_CLIENT_SECRET, or ask the admin to turn that setting off."
            }
            Cause::UnknownClient => {
                "The org does not know this consumer key: the app was deleted or the device \
                 points at another org. Check --client-id and --login-url."
            }
            Cause::UserInactive => {
                "The user who approved this device can no longer log in (deactivated, frozen, or \
                 the org is inactive). Pair again as an active user."
            }
            Cause::Unknown => "The server refused the refresh for a reason sfpair does not know.",
            Cause::SealUnopened => {
                "The pairing is sealed to this board and its seal cannot be opened: the store \
                 was copied from another board, the TPM was cleared, or the token or the \
                 service's credential is missing. It is kept: put the seal back, or pair again."
            }
        }
    }

    /// What the org's admin can do.
    pub const fn admin_action(self) -> &'static str {
        match self {
            Cause::RevokedOrExpired => {
                "Check the app's OAuth usage for the user (revoked? more than five pairings?) \
                 and its refresh token policy (an idle limit needs a keepalive shorter than it)"
            }
            Cause::IpRestricted => {
                "Add the device's public IP range to the app's Refresh Token IP Allowlist (or \
                 the org's login IP ranges), or turn the allowlist off"
            }
            Cause::SecretRequired => {
                "Turn off \"Require Secret for Refresh Token Flow\" for the app (a device cannot \
                 keep a secret), or give the device the consumer secret"
            }
            Cause::UnknownClient => {
                "Check that the external client app exists in this org and give the device its \
                 consumer key"
            }
            Cause::UserInactive => {
                "Reactivate or unfreeze the user, or have an active user pair the device"
            }
            Cause::Unknown => "Look up the server's error in the org's login history",
            Cause::SealUnopened => "Nothing at the org: the grant there is intact",
        }
    }

    /// The exit code's kind: pair again (6) when the grant is gone or unusable from here; a
    /// setting to change (2) when pairing again would not help.
    pub const fn kind(self) -> ErrorKind {
        match self {
            Cause::RevokedOrExpired
            | Cause::IpRestricted
            | Cause::UserInactive
            | Cause::SealUnopened => ErrorKind::RepairNeeded,
            Cause::SecretRequired | Cause::UnknownClient => ErrorKind::Config,
            Cause::Unknown => ErrorKind::Server,
        }
    }
}

/// The error for a refused refresh: the cause's kind, and a message with the cause's line, the
/// server's own words and the admin's action. The stored pairing is never touched here (it is
/// kept until a new pairing succeeds). This is the one function the agent's refresh path calls
/// (`api::refresh_outcome`); callers with the OAuth fields at hand can call it directly.
pub fn refresh_error(status: u16, error: &str, description: Option<&str>) -> Error {
    let cause = classify(status, error, description.unwrap_or(""));
    let said: String = match description {
        Some(d) if !d.is_empty() => format!("{error}: {d}"),
        _ => error.into(),
    };
    let repair = match cause.kind() {
        ErrorKind::RepairNeeded => {
            " Re-pair with `sfpair pair --force`; the stored pairing is \
                                    kept until a new one succeeds."
        }
        _ => "",
    };
    Error::new(
        cause.kind(),
        format!(
            "refresh refused ({}, the server said \"{said}\", HTTP {status}): {}{repair} \
             Admin: {}.",
            cause.name(),
            cause.for_person(),
            cause.admin_action()
        ),
    )
}

/// The cause named in a message made by [`refresh_error`], for callers that only have the
/// [`Error`] (the `(name, ...` prefix is part of the message's contract).
pub fn cause_of(error: &Error) -> Option<Cause> {
    if crate::store::is_unopened(error) {
        return Some(Cause::SealUnopened);
    }
    let rest = error.message().strip_prefix("refresh refused (")?;
    let name = rest.split(',').next()?;
    ALL.iter().copied().find(|c| c.name() == name)
}

/// A refusal that ends the pairing: re-pair needed, or a refresh the server refused for a cause
/// an admin must fix (the consumer secret, the consumer key), which a new pairing may not cure
/// but which leaves the device just as unpaired. The long-running agent says so everywhere.
pub fn is_death(e: &Error) -> bool {
    e.kind() == ErrorKind::RepairNeeded || cause_of(e).is_some()
}

/// Every cause, for lookups and tests.
pub const ALL: [Cause; 7] = [
    Cause::RevokedOrExpired,
    Cause::IpRestricted,
    Cause::SecretRequired,
    Cause::UnknownClient,
    Cause::UserInactive,
    Cause::Unknown,
    Cause::SealUnopened,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_texts_get_their_causes() {
        let cases = [
            (
                400,
                "invalid_grant",
                "expired access/refresh token",
                Cause::RevokedOrExpired,
            ),
            (400, "invalid_grant", "ip restricted", Cause::IpRestricted),
            (400, "invalid_grant", "IP Restricted", Cause::IpRestricted),
            (
                400,
                "invalid_grant",
                "authentication failure",
                Cause::UserInactive,
            ),
            (400, "inactive_user", "", Cause::UserInactive),
            (400, "inactive_org", "", Cause::UserInactive),
            (
                400,
                "invalid_client",
                "invalid client credentials",
                Cause::SecretRequired,
            ),
            (
                401,
                "invalid_client",
                "client secret required",
                Cause::SecretRequired,
            ),
            (
                400,
                "invalid_client_id",
                "client identifier invalid",
                Cause::UnknownClient,
            ),
            (400, "invalid_grant", "", Cause::RevokedOrExpired),
            (
                400,
                "invalid_client",
                "app must be installed into org",
                Cause::Unknown,
            ),
            (
                400,
                "unsupported_grant_type",
                "grant type not supported",
                Cause::Unknown,
            ),
        ];
        for (status, error, description, cause) in cases {
            assert_eq!(
                classify(status, error, description),
                cause,
                "{error}/{description}"
            );
        }
    }

    #[test]
    fn the_message_names_the_cause_quotes_the_server_and_tells_the_admin() {
        let e = refresh_error(400, "invalid_grant", Some("ip restricted"));
        assert_eq!(e.exit_code(), 6);
        assert_eq!(cause_of(&e), Some(Cause::IpRestricted));
        assert!(
            e.message().contains("\"invalid_grant: ip restricted\""),
            "{e}"
        );
        assert!(e.message().contains("Refresh Token IP Allowlist"), "{e}");
        let e = refresh_error(400, "invalid_client", Some("invalid client credentials"));
        assert_eq!(e.exit_code(), 2, "pairing again would not help");
        assert!(
            e.message()
                .contains("Require Secret for Refresh Token Flow"),
            "{e}"
        );
        assert!(e.message().contains("--client-secret-file"), "{e}");
        let e = refresh_error(400, "invalid_grant", Some("expired access/refresh token"));
        assert!(e.message().contains("sixth device"), "{e}");
        assert!(e.message().contains("sfpair pair --force"), "{e}");
        let e = refresh_error(400, "weird", None);
        assert_eq!((e.exit_code(), cause_of(&e)), (1, Some(Cause::Unknown)));
        assert_eq!(cause_of(&Error::network("down")), None);
    }

    #[test]
    fn every_cause_has_its_own_name_and_all_its_lines() {
        let mut names: alloc::vec::Vec<_> = ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for c in ALL {
            assert!(!c.short().is_empty() && !c.for_person().is_empty());
            assert!(!c.admin_action().is_empty());
        }
    }
}
