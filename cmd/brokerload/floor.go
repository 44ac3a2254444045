package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// floorPayload is shaped like a broker access token (RFC 9068), so the
// floor signs what the broker signs.
var floorPayload = func() []byte {
	b, _ := json.Marshal(map[string]any{
		"iss": "http://127.0.0.1:8080", "sub": "0b7e6f6c-3c55-4b8e-9d0c-2f1d7f9b8a11",
		"aud": []string{"https://api.brokerload.test"}, "exp": 1900000000, "iat": 1899999100,
		"jti": "f3b0c44298fc1c149afbf4c8996fb924", "client_id": "load", "scope": "openid email profile",
		"amr": []string{"fed"}, "idp": "brokerload",
	})
	return b
}()

// measureFloor counts the signatures per second goroutines can make with
// alg for about d: the cost of the cryptography alone, the ceiling of
// any endpoint that signs one token per request.
func measureFloor(ctx context.Context, alg jose.SignatureAlgorithm, goroutines int, d time.Duration) (float64, error) {
	key, err := newPrivateKey(alg)
	if err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	signers := make([]jose.Signer, goroutines)
	for i := range signers {
		// A signer per goroutine, as a server would have per request.
		if signers[i], err = jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
			(&jose.SignerOptions{}).WithType("at+jwt")); err != nil {
			return 0, fmt.Errorf("floor: %w", err)
		}
	}
	var total atomic.Int64
	var firstErr atomic.Pointer[error]
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, s := range signers {
		wg.Go(func() {
			n := int64(0)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				jws, err := s.Sign(floorPayload)
				if err == nil {
					_, err = jws.CompactSerialize()
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					break
				}
				n++
			}
			total.Add(n)
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return 0, fmt.Errorf("floor: %w", *p)
	}
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}
