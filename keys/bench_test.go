package keys_test

import (
	"context"
	"testing"
	"time"

	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage/memory"
)

var benchPayload = []byte(`{"iss":"https://auth.example.com","sub":"8a4c3d0e-6f3b-4f7e-9d3a-1c2b3a4d5e6f","aud":"app","exp":1893456000,"iat":1893452400,"email":"ada@example.com","email_verified":true,"amr":["otp"],"idp":"otp"}`)

var benchAlgs = []string{keys.RS256, keys.ES256, keys.EdDSA}

func benchManager(b *testing.B, alg string) *keys.Manager {
	cfg := keys.Config{
		IDTokenAlgorithm: alg,
		RetireAfter:      2 * time.Hour,
		KEKs:             [][]byte{newKEK(b)},
		Logger:           quiet(),
	}
	m, err := keys.New(context.Background(), memory.New(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			m := benchManager(b, alg)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Sign(keys.UseIDToken, "", "JWT", benchPayload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSignParallel(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			m := benchManager(b, alg)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.Sign(keys.UseIDToken, "", "JWT", benchPayload); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			m := benchManager(b, alg)
			tok, err := m.Sign(keys.UseIDToken, "", "JWT", benchPayload)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := m.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
