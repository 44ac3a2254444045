// Package storagetest is the conformance suite every storage.Storage
// backend passes: one set of behaviours, run against storage/memory and
// storage/postgres alike, so the two cannot drift apart.
//
// The suite drives time through the now arguments of the interface and never
// sleeps. Its concurrency tests release their goroutines together at a
// barrier; against a backend shared between processes they prove atomicity
// only if the backend gives each goroutine its own connection, as a pool
// does.
//
// It imports no package of the project but storage.
package storagetest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

// Run runs the suite. newStore must return an empty store of its own for
// each subtest and arrange for it to be closed when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"Ping", testPing},

		{"ResolveIdentity/NewIdentityCreatesUser", testResolveCreates},
		{"ResolveIdentity/KnownIdentityRefreshesUser", testResolveKnownRefreshes},
		{"ResolveIdentity/LinkByEmailLinksVerifiedUser", testResolveLinks},
		{"ResolveIdentity/LinkByEmailSkipsUnverifiedUser", testResolveLinkSkipsUnverified},
		{"ResolveIdentity/WithoutLinkByEmailCreatesUser", testResolveNoLinkCreates},
		{"ResolveIdentity/VerifiedEmailUniqueUnverifiedMayRepeat", testResolveEmailUniqueness},
		{"ResolveIdentity/PresetUserID", testResolvePresetUserID},
		{"ResolveIdentity/KnownOnly", testResolveKnownOnly},
		{"ResolveIdentity/DisabledUser", testResolveDisabled},
		{"ResolveIdentity/ConcurrentSameIdentity", testResolveConcurrentSameIdentity},
		{"ResolveIdentity/ConcurrentSameVerifiedEmail", testResolveConcurrentSameEmail},
		{"Users/GetUnknown", testGetUserUnknown},
		{"Users/ListPages", testListUsersPages},
		{"Users/DeleteRemovesEverythingAtOnce", testDeleteUser},
		{"Users/LinkAndUnlinkIdentity", testLinkIdentity},
		{"Users/AdminRole", testAdminRole},

		{"ImportUsers/CreatesAndIsIdempotent", testImportIdempotent},
		{"ImportUsers/AddsNewIdentityOnRerun", testImportAddsIdentity},
		{"ImportUsers/ConflictsFailWholeImport", testImportConflicts},
		{"ImportUsers/InvalidBatch", testImportInvalid},
		{"ImportUsers/OneBadUserRollsBackEverything", testImportRollback},

		{"AuthRequest/RoundTrip", testAuthRequestRoundTrip},
		{"AuthRequest/Update", testAuthRequestUpdate},
		{"AuthRequest/UpstreamStateUnique", testAuthRequestUpstreamStateUnique},
		{"AuthRequest/ReturnsCopies", testAuthRequestCopies},
		{"AuthCode/CreateConsumesAuthRequest", testAuthCodeCreate},
		{"AuthCode/Redeem", testAuthCodeRedeem},
		{"AuthCode/ConcurrentRedeemOneWins", testAuthCodeRedeemRace},
		{"AuthCode/ConcurrentReplaysLeaveNothingAlive", testRedeemReplayRevokesFamily},
		{"OTP/Check", testOTPCheck},
		{"OTP/Exhausted", testOTPExhausted},
		{"OTP/PutReplacesAndResets", testOTPReplace},
		{"OTP/ConcurrentAttemptsCounted", testOTPConcurrent},
		{"OTP/AttemptKeyPoolsWrongGuesses", testOTPAttemptPool},
		{"OTP/ConcurrentPooledAttemptsCounted", testOTPAttemptPoolConcurrent},

		{"Refresh/RoundTrip", testRefreshRoundTrip},
		{"Refresh/Rotate", testRefreshRotate},
		{"Refresh/GrantWithUser", testRefreshGrant},
		{"Refresh/RetryWithinWindow", testRefreshRetry},
		{"Refresh/ReuseOutsideWindowRevokes", testRefreshReuseOutsideWindow},
		{"Refresh/ReuseAfterSuccessorUsedRevokes", testRefreshReuseAfterSuccessor},
		{"Refresh/ConcurrentRetriesAreOneRotation", testRefreshConcurrentRetry},
		{"Refresh/IdleAndAbsoluteExpiry", testRefreshExpiry},
		{"Refresh/UpdateUpstream", testRefreshUpstream},
		{"Refresh/CreateAfterGrantRevokedRefused", testRefreshCreateAfterRevocation},
		{"Refresh/RotationRacesRevocation", testRefreshRotationRacesRevocation},
		{"Refresh/CreateForEndedSessionRefused", testRefreshCreateForEndedSession},
		{"Refresh/CreateForRevokedUserRefused", testRefreshCreateForRevokedUser},
		{"Refresh/CreationRacesLogoutAndUserRevocation", testFamilyCreationRacesEnding},
		{"AccessToken/ActiveGivesUser", testAccessTokenActive},
		{"AccessToken/RevokeJTI", testAccessTokenRevokeJTI},
		{"AccessToken/RevokeGrant", testAccessTokenRevokeGrant},
		{"AccessToken/FamilyReuseRevokesGrant", testAccessTokenFamilyReuseRevokesGrant},
		{"AccessToken/RevokedFamilyKeptPastExpiry", testAccessTokenRevokedFamilyKeptPastExpiry},
		{"AccessToken/RevokeUserTokensInWholeSeconds", testAccessTokenRevokeUserTokens},
		{"AccessToken/DisabledUser", testAccessTokenDisabledUser},
		{"AccessToken/UserGone", testAccessTokenUserGone},
		{"AccessToken/ConcurrentRevocationsKeepLatest", testAccessTokenConcurrentRevocations},

		{"Session/Lifetimes", testSessionLifetimes},
		{"Session/TouchAndList", testSessionTouchList},
		{"Session/EndRevokesFamiliesAndTheirTokens", testSessionEnd},
		{"Session/UpdateUpstream", testSessionUpdateUpstream},
		{"Session/ResealUpstreamTokens", testResealUpstreamTokens},

		{"Client/CRUD", testClientCRUD},
		{"Resource/CRUD", testResourceCRUD},
		{"Registration/Tokens", testRegistrationTokens},
		{"Registration/RegisterClient", testRegisterClient},
		{"Registration/ConcurrentLastUseRegistersOne", testRegisterClientConcurrentLastUse},
		{"Registration/ClientUseAndExpiry", testRegisteredClientUse},
		{"Resource/ConcurrentCreate", testResourceConcurrentCreate},
		{"SigningKeys/Update", testSigningKeys},
		{"SigningKeys/ConcurrentUpdatesSerialize", testSigningKeysConcurrent},

		{"RateLimit/FixedWindow", testRateLimit},
		{"RateLimit/Concurrent", testRateLimitConcurrent},
		{"JTI/Replay", testJTI},
		{"Audit/AppendList", testAudit},
		{"DeleteExpired", testDeleteExpired},
		{"BadText", testBadText},

		{"Orgs/CRUD", testOrgCRUD},
		{"Orgs/Update", testOrgUpdate},
		{"Orgs/DeleteCascades", testOrgDeleteCascades},
		{"Orgs/Domains", testOrgDomains},
		{"Orgs/ConcurrentVerifyDomainOneWins", testOrgVerifyDomainRace},
		{"Orgs/Members", testOrgMembers},
		{"Orgs/ConcurrentEnsureMemberMakesOne", testOrgEnsureMemberRace},
		{"Orgs/RemoveMemberEndsItsContext", testOrgRemoveMember},
		{"Orgs/Connectors", testOrgConnectors},
		{"Orgs/Generation", testOrgGeneration},
		{"Orgs/BadText", testOrgBadText},
	}
	tests = append(tests, consentTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// t0 is the suite's clock. Whole seconds, so that every backend can hold it
// exactly.
var t0 = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)

func testPing(t *testing.T, s storage.Storage) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// race runs f(0) … f(n-1) on n goroutines released together at a barrier and
// returns when all have finished.
func race(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// wantErr fails the test unless errors.Is(err, want); want nil means no error.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error: %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// wantEqual compares two values as the stored data they are: times by
// instant (not location), nil and empty slices and maps alike.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := canonical(reflect.ValueOf(got)), canonical(reflect.ValueOf(want))
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, g, w)
	}
}

var timeType = reflect.TypeFor[time.Time]()

func canonical(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type() == timeType {
		return v.Interface().(time.Time).UTC().Format(time.RFC3339Nano)
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return canonical(v.Elem())
	case reflect.Struct:
		m := make(map[string]any, v.NumField())
		for i := range v.NumField() {
			m[v.Type().Field(i).Name] = canonical(v.Field(i))
		}
		return m
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return hex.EncodeToString(v.Bytes())
		}
		out := make([]any, v.Len())
		for i := range v.Len() {
			out[i] = canonical(v.Index(i))
		}
		return out
	case reflect.Map:
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[fmt.Sprint(it.Key().Interface())] = canonical(it.Value())
		}
		return m
	}
	return v.Interface()
}

// hash returns a fake 32-byte hash, distinct for distinct names.
func hash(name string) []byte {
	h := make([]byte, 32)
	copy(h, name)
	return h
}

func mustResolve(t *testing.T, s storage.Storage, req storage.ResolveRequest) storage.Resolution {
	t.Helper()
	if req.Now.IsZero() {
		req.Now = t0
	}
	res, err := s.ResolveIdentity(t.Context(), req)
	if err != nil {
		t.Fatalf("ResolveIdentity(%s/%s): %v", req.Connector, req.Subject, err)
	}
	return res
}
