package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/storage/memory"
)

// TestLoad_EndToEnd runs every scenario briefly against an in-process
// broker configured by "brokerload config", with the tool's upstream
// started first, and asks for zero errors.
func TestLoad_EndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and runs load for a few seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	up, err := startUpstream(upstreamConfig{
		Addr: "127.0.0.1:0", ClientID: defaultUpstreamClient, ClientSecret: defaultUpstreamSecret, Alg: jose.ES256,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer up.close()

	srv := httptest.NewUnstartedServer(nil)
	brokerURL := "http://" + srv.Listener.Addr().String()
	var yaml bytes.Buffer
	u, _ := url.Parse(brokerURL)
	err = writeBrokerConfig(&yaml, brokerConfig{
		broker: u, upstreamAddr: strings.TrimPrefix(up.issuer, "http://"), storage: "memory", accessAlg: "ES256", idAlg: "RS256",
		connector: defaultConnector, upstreamClient: defaultUpstreamClient, upstreamSecret: defaultUpstreamSecret,
		clientID: defaultClientID, clientSecret: defaultClientSecret, audience: defaultAudience, redirectURI: defaultRedirectURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := broker.ParseConfig(yaml.Bytes(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("the generated configuration does not parse: %v\n%s", err, yaml.String())
	}
	b, err := broker.New(ctx, cfg, broker.Options{
		Storage: memory.New(),
		Secret:  broker.NewEphemeralRootSecret(),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = b.Handler()
	srv.Start()
	defer srv.Close()

	var progress bytes.Buffer
	o := options{
		common: common{
			broker: brokerURL, connector: defaultConnector, upstreamClient: defaultUpstreamClient,
			upstreamSecret: defaultUpstreamSecret, clientID: defaultClientID, clientSecret: defaultClientSecret,
			audience: defaultAudience, redirectURI: defaultRedirectURI,
		},
		scenarios:     scenarioNames,
		plan:          plan{concurrency: 2, duration: 300 * time.Millisecond},
		users:         20,
		upstreamAlg:   jose.ES256,
		brokerPID:     os.Getpid(), // the broker is in this process
		timeout:       10 * time.Second,
		wait:          5 * time.Second,
		floorDuration: 100 * time.Millisecond,
		progress:      &progress,
		upstream:      up,
	}
	results, header, floor, err := load(ctx, o)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, progress.String())
	}
	var report bytes.Buffer
	writeReport(&report, header, floor, results)
	t.Logf("report:\n%s", report.String())

	if floor.alg != "ES256" || floor.perSecond <= 0 {
		t.Errorf("floor = %+v, want ES256 read from the broker's access token, measured", floor)
	}
	if len(results) != len(scenarioNames) {
		t.Fatalf("%d results, want %d", len(results), len(scenarioNames))
	}
	for _, r := range results {
		t.Run(r.name, func(t *testing.T) {
			if strings.HasPrefix(r.name, "exchange") && exchangeUnsupported(r) {
				t.Skip("the broker answers unsupported_grant_type: token exchange (broker/exchange) has not landed")
			}
			if r.setupErr != nil {
				t.Fatalf("setup: %v", r.setupErr)
			}
			if r.m.failed != 0 || r.m.ok == 0 {
				t.Errorf("ok %d, errors %d (%v); want some and none", r.m.ok, r.m.failed, r.m.errors.first(errorsShown))
			}
			if int64(len(r.m.latencies)) != r.m.ok {
				t.Errorf("%d latencies for %d requests", len(r.m.latencies), r.m.ok)
			}
			if r.cpu < 0 || r.cpuErr != nil {
				t.Errorf("cpu = %v (%v), want this process's CPU time", r.cpu, r.cpuErr)
			}
			if r.toolCPU < 0 || r.toolCPUErr != nil {
				t.Errorf("tool cpu = %v (%v), want this process's CPU time", r.toolCPU, r.toolCPUErr)
			}
			if r.rss.peak <= 0 || r.rss.first <= 0 || r.rss.last <= 0 {
				t.Errorf("rss = %d, want this process's resident memory (%v)", r.rss, r.rssErr)
			}
		})
	}
	if !strings.Contains(report.String(), "first-time subjects got") && !exchangeUnsupported(results[1]) {
		t.Errorf("the report has no verification of first-time users:\n%s", report.String())
	}
}

// exchangeUnsupported reports whether a scenario failed only because the
// broker does not offer token exchange.
func exchangeUnsupported(r result) bool {
	if r.setupErr != nil {
		return strings.Contains(r.setupErr.Error(), "unsupported_grant_type")
	}
	first := r.m.errors.first(maxDistinctErrors)
	for _, e := range first {
		if !strings.Contains(e.Message, "unsupported_grant_type") {
			return false
		}
	}
	return len(first) > 0
}
