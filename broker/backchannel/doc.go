// Package backchannel owns OpenID Connect Back-Channel Logout 1.0: when
// a session ends, a signed logout token (typ "logout+jwt", section 2.4)
// is posted to every client of the session that registered a
// back-channel logout URI. It owns those deliveries: they run past the
// request that ended the session, are retried with backoff up to four
// attempts, hold up the logout at most a second, and are cancelled and
// waited for by Close.
//
// It does not end sessions (storage does, through the broker or the admin
// package), nor know how clients are configured: the broker hands it a
// function that finds a client's back-channel logout URI.
//
// It imports storage and keys, and must not import the broker package,
// the OpenID Connect library (zitadel/oidc) nor a connector package.
package backchannel
