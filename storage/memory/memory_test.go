package memory_test

import (
	"testing"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/storage/storagetest"
)

func TestStorage(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return memory.New() })
}
