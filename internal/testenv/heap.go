package testenv

import "runtime"

// HeapGrowth runs fill and returns how many more bytes of heap are in use
// after it than before, each read after a collection: what fill left
// reachable. The caller keeps what fill built alive until HeapGrowth
// returns (by using it after).
func HeapGrowth(fill func()) int64 {
	inUse := func() int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	before := inUse()
	fill()
	return inUse() - before
}
