package main

import (
	"os"
	"slices"
	"testing"

	"github.com/idbroker/broker/broker"
	"gopkg.in/yaml.v3"
)

// The compose file and its broker configuration ship in the repository;
// no Docker engine runs in CI, so check what can be checked without one.
func TestDeploy_ComposeFileAndConfigAreValid(t *testing.T) {
	cfg, err := broker.LoadConfig("../../deploy/compose.yaml", envFrom(map[string]string{
		"DATABASE_URL": "postgres://broker:broker@postgres:5432/broker?sslmode=disable",
	}))
	if err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	if cfg.Storage.Type != "postgres" || cfg.HTTP.Addr != ":8080" {
		t.Errorf("deploy/compose.yaml: storage %q, addr %q", cfg.Storage.Type, cfg.HTTP.Addr)
	}

	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build       string            `yaml:"build"`
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	b, ok := compose.Services["broker"]
	if !ok || compose.Services["postgres"].Image == "" {
		t.Fatal("docker-compose.yml needs services broker and postgres")
	}
	if !slices.Contains(b.Command, "--migrate") || !slices.Contains(b.Command, "serve") {
		t.Errorf("broker command %v should serve with --migrate", b.Command)
	}
	if b.Environment["DATABASE_URL"] == "" || b.Environment["BROKER_SECRET"] == "" {
		t.Error("broker service lacks DATABASE_URL or BROKER_SECRET")
	}
	if !slices.Contains(b.Volumes, "./deploy/compose.yaml:/etc/broker/config.yaml:ro") {
		t.Errorf("broker volumes %v do not mount deploy/compose.yaml", b.Volumes)
	}
}
