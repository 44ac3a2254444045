package memory

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/idbroker/broker/storage"
)

// CreateAuthRequest implements storage.AuthFlows.
func (s *Store) CreateAuthRequest(ctx context.Context, req storage.AuthRequest) error {
	if req.ID == "" {
		return errors.New("memory: create auth request: empty id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authRequests[req.ID]; ok {
		return fmt.Errorf("memory: create auth request %q: %w", req.ID, storage.ErrAlreadyExists)
	}
	if _, ok := s.upstreamStates[req.UpstreamState]; ok && req.UpstreamState != "" {
		return fmt.Errorf("memory: create auth request %q: upstream state: %w", req.ID, storage.ErrAlreadyExists)
	}
	s.putAuthRequest(cloneAuthRequest(req))
	return nil
}

// putAuthRequest stores r, keeping the upstream-state index in step. The
// caller holds mu and has checked that r's upstream state is free.
func (s *Store) putAuthRequest(r storage.AuthRequest) {
	if old, ok := s.authRequests[r.ID]; ok && old.UpstreamState != "" {
		delete(s.upstreamStates, old.UpstreamState)
	}
	if r.UpstreamState != "" {
		s.upstreamStates[r.UpstreamState] = r.ID
	}
	s.authRequests[r.ID] = r
}

// deleteAuthRequest removes a request with its upstream state and its
// one-time-code challenge. The caller holds mu.
func (s *Store) deleteAuthRequest(id string) {
	if r, ok := s.authRequests[id]; ok && r.UpstreamState != "" {
		delete(s.upstreamStates, r.UpstreamState)
	}
	delete(s.authRequests, id)
	delete(s.otps, id)
}

// GetAuthRequest implements storage.AuthFlows. It returns a request even
// past its ExpiresAt until DeleteExpired removes it: the caller checks.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.authRequests[id]
	if !ok {
		return storage.AuthRequest{}, storage.ErrNotFound
	}
	return cloneAuthRequest(r), nil
}

// GetAuthRequestByUpstreamState implements storage.AuthFlows.
func (s *Store) GetAuthRequestByUpstreamState(ctx context.Context, state string) (storage.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.upstreamStates[state]
	if !ok || state == "" {
		return storage.AuthRequest{}, storage.ErrNotFound
	}
	return cloneAuthRequest(s.authRequests[id]), nil
}

// UpdateAuthRequest implements storage.AuthFlows. Updates are serialized;
// update runs without the store's lock held, so it may read the store but
// must not update an auth request or a client itself. The request keeps its
// ID and BrowserHash whatever update returns. An error from update is
// returned as it is.
func (s *Store) UpdateAuthRequest(ctx context.Context, id string, update func(storage.AuthRequest) (storage.AuthRequest, error)) (storage.AuthRequest, error) {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()

	r, err := s.GetAuthRequest(ctx, id)
	if err != nil {
		return storage.AuthRequest{}, err
	}
	binding := r.BrowserHash
	r, err = update(r)
	if err != nil {
		return storage.AuthRequest{}, err
	}
	r = cloneAuthRequest(r)
	r.ID, r.BrowserHash = id, binding

	s.mu.Lock()
	defer s.mu.Unlock()
	// Deletion (and CreateAuthCode) do not take updateMu, so the request
	// may have gone while update ran; writing it back would revive it.
	if _, ok := s.authRequests[id]; !ok {
		return storage.AuthRequest{}, storage.ErrNotFound
	}
	if owner, ok := s.upstreamStates[r.UpstreamState]; ok && owner != id {
		return storage.AuthRequest{}, fmt.Errorf("memory: update auth request %q: upstream state: %w", id, storage.ErrAlreadyExists)
	}
	s.putAuthRequest(r)
	return cloneAuthRequest(r), nil
}

// DeleteAuthRequest implements storage.AuthFlows. The request's one-time-code
// challenge goes with it.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authRequests[id]; !ok {
		return storage.ErrNotFound
	}
	s.deleteAuthRequest(id)
	return nil
}

// CreateAuthCode implements storage.AuthFlows. If the auth request is gone
// (another completion consumed it) no code is stored and the error is
// storage.ErrNotFound, so one request yields at most one code.
func (s *Store) CreateAuthCode(ctx context.Context, code storage.AuthCode, authRequestID string) error {
	if len(code.CodeHash) == 0 {
		return errors.New("memory: create auth code: empty code hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authRequests[authRequestID]; !ok {
		return fmt.Errorf("memory: create auth code: auth request %q: %w", authRequestID, storage.ErrNotFound)
	}
	if _, ok := s.codes[string(code.CodeHash)]; ok {
		return fmt.Errorf("memory: create auth code: %w", storage.ErrAlreadyExists)
	}
	s.codes[string(code.CodeHash)] = cloneAuthCode(code)
	s.deleteAuthRequest(authRequestID)
	return nil
}

// RedeemAuthCode implements storage.AuthFlows. A used code gives
// storage.ErrCodeRedeemed even past its expiry, so a late replay still lets
// the broker revoke the grant.
func (s *Store) RedeemAuthCode(ctx context.Context, codeHash []byte, grantID string, now time.Time) (storage.AuthCode, error) {
	if grantID == "" {
		return storage.AuthCode{}, errors.New("memory: redeem code: empty grant id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[string(codeHash)]
	switch {
	case !ok:
		return storage.AuthCode{}, storage.ErrNotFound
	case c.GrantID != "":
		return cloneAuthCode(c), storage.ErrCodeRedeemed
	case !now.Before(c.ExpiresAt):
		return storage.AuthCode{}, storage.ErrExpired
	}
	c.GrantID = grantID
	s.codes[string(codeHash)] = c
	return cloneAuthCode(c), nil
}

// PutOTPChallenge implements storage.AuthFlows. The new challenge starts
// with no attempts, whatever c.Attempts says; its auth request must exist.
func (s *Store) PutOTPChallenge(ctx context.Context, c storage.OTPChallenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authRequests[c.AuthRequestID]; !ok {
		return fmt.Errorf("memory: put one-time code: auth request %q: %w", c.AuthRequestID, storage.ErrNotFound)
	}
	c = cloneOTP(c)
	c.Attempts = 0
	s.otps[c.AuthRequestID] = c
	return nil
}

// CheckOTPChallenge implements storage.AuthFlows. An exhausted challenge
// stays exhausted past its expiry, until DeleteExpired removes it.
func (s *Store) CheckOTPChallenge(ctx context.Context, authRequestID string, codeHash []byte, maxAttempts int, now time.Time) (storage.OTPChallenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.otps[authRequestID]
	switch {
	case !ok:
		return storage.OTPChallenge{}, storage.ErrNotFound
	case c.Attempts >= maxAttempts:
		return storage.OTPChallenge{}, storage.ErrOTPExhausted
	case !now.Before(c.ExpiresAt):
		return storage.OTPChallenge{}, storage.ErrExpired
	}
	var pool rateWindow
	if c.AttemptKey != "" {
		if pool = s.otpPools[c.AttemptKey]; !now.Before(pool.end) {
			pool = rateWindow{end: c.ExpiresAt}
		}
		s.otpPools[c.AttemptKey] = pool
		if pool.count >= maxAttempts {
			return storage.OTPChallenge{}, storage.ErrOTPExhausted
		}
	}
	if subtle.ConstantTimeCompare(codeHash, c.CodeHash) != 1 {
		c.Attempts++
		s.otps[authRequestID] = c
		if c.AttemptKey != "" {
			pool.count++
			s.otpPools[c.AttemptKey] = pool
		}
		return storage.OTPChallenge{}, storage.ErrOTPMismatch
	}
	delete(s.otps, authRequestID)
	return cloneOTP(c), nil
}
