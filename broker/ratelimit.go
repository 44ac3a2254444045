package broker

import (
	"fmt"
	"time"

	"github.com/idbroker/broker/broker/ratelimit"
)

// Limit is an abuse limit: at most Count events per Window.
type Limit = ratelimit.Limit

// LimitsConfig are the broker's abuse limits. (Wrong codes are
// otp.maxAttempts.) Each counts per party and client address where a
// stranger could otherwise use it to lock the party out (docs/design.md rule 7).
type LimitsConfig struct {
	// OTPPerEmail bounds codes sent to one address at the request of one
	// client address, so nobody can flood an inbox from one place, nor
	// stop the owner's codes from another.
	OTPPerEmail Limit `yaml:"otpPerEmail"`
	// OTPPerEmailCeiling bounds codes sent to one address from anywhere.
	// No client address can reach it alone (validate), so it is reached
	// only by many addresses at once; a browser already holding a code
	// can still use it then. Unset, it is six times OTPPerEmail, over the
	// same window (otpPerEmailCeiling).
	OTPPerEmailCeiling Limit `yaml:"otpPerEmailCeiling"`
	// OTPPerIP bounds codes requested from one client address.
	OTPPerIP Limit `yaml:"otpPerIP"`
	// TokenFailuresPerClient bounds failed client authentications at the
	// token, introspection and revocation endpoints, per client and
	// client address; past it that address is refused for that client
	// before its credentials are even checked. The client elsewhere is
	// not. Assertions whose signature does not verify count per client
	// address alone, not for the client they name.
	TokenFailuresPerClient Limit `yaml:"tokenFailuresPerClient"`
}

func (l *LimitsConfig) setDefaults() {
	setDefault(&l.OTPPerEmail, Limit{Count: 5, Window: 15 * time.Minute})
	setDefault(&l.OTPPerIP, Limit{Count: 30, Window: 15 * time.Minute})
	setDefault(&l.TokenFailuresPerClient, Limit{Count: 20, Window: 5 * time.Minute})
}

// otpPerEmailCeiling is OTPPerEmailCeiling, or when it is unset six times
// OTPPerEmail: derived where it is used, so that raising otpPerEmail
// raises the ceiling with it.
func (l LimitsConfig) otpPerEmailCeiling() Limit {
	if l.OTPPerEmailCeiling == (Limit{}) {
		return Limit{Count: 6 * l.OTPPerEmail.Count, Window: l.OTPPerEmail.Window}
	}
	return l.OTPPerEmailCeiling
}

func (l LimitsConfig) validate() error {
	for name, lim := range map[string]Limit{"otpPerEmail": l.OTPPerEmail, "otpPerEmailCeiling": l.otpPerEmailCeiling(),
		"otpPerIP": l.OTPPerIP, "tokenFailuresPerClient": l.TokenFailuresPerClient} {
		if lim.Count < 1 || lim.Window <= 0 {
			return fmt.Errorf("config: limits.%s needs a count of at least 1 and a positive window", name)
		}
	}
	// Within one ceiling window one client address may be sent this
	// many codes for an address; were that the ceiling, one stranger
	// could stop the owner's codes.
	ceiling := l.otpPerEmailCeiling()
	windows := int((ceiling.Window + l.OTPPerEmail.Window - 1) / l.OTPPerEmail.Window)
	if oneSource := l.OTPPerEmail.Count * windows; ceiling.Count <= oneSource {
		return fmt.Errorf("config: limits.otpPerEmailCeiling (%d per %v) must be more than the %d codes one client address may ask for under limits.otpPerEmail (%d per %v)",
			ceiling.Count, ceiling.Window, oneSource, l.OTPPerEmail.Count, l.OTPPerEmail.Window)
	}
	return nil
}
