package testenv

import (
	"sync"
	"time"
)

// CallTogether runs n calls of f at once and returns their errors and how
// long the slowest took.
func CallTogether(n int, f func() error) ([]error, time.Duration) {
	errs := make([]error, n)
	took := make([]time.Duration, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			began := time.Now()
			errs[i] = f()
			took[i] = time.Since(began)
		})
	}
	close(start)
	wg.Wait()
	var slowest time.Duration
	for _, d := range took {
		slowest = max(slowest, d)
	}
	return errs, slowest
}
