package appliance

import (
	"context"
	"sync"
)

// lifecycle owns everything Start starts: the parts it opens and the
// goroutines it runs. Close undoes them in reverse start order, once, and
// does not return before every goroutine has; an error part way through
// Start goes down the same path.
type lifecycle struct {
	ctx    context.Context // cancelled when Close begins
	cancel context.CancelFunc
	steps  []func() // undo steps, in start order
	once   sync.Once
	// failed receives the error of the first serving loop (admin, Kafka)
	// that ends by itself; serve stops the node on it.
	failed chan error
}

func newLifecycle() *lifecycle {
	ctx, cancel := context.WithCancel(context.Background())
	return &lifecycle{ctx: ctx, cancel: cancel, failed: make(chan error, 1)}
}

// onClose registers an undo step: closing a part just opened.
func (l *lifecycle) onClose(undo func()) { l.steps = append(l.steps, undo) }

// run starts f in a goroutine that ends when its context is cancelled; the
// undo step cancels it and waits for it.
func (l *lifecycle) run(f func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(l.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	l.onClose(func() {
		cancel()
		<-done
	})
}

// serve starts a serving loop that stop ends; the undo step calls stop and
// waits for the loop. A loop that ends with an error before Close reports
// it on failed.
func (l *lifecycle) serve(loop func() error, stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := loop(); err != nil && l.ctx.Err() == nil {
			select {
			case l.failed <- err:
			default: // another loop failed first
			}
		}
	}()
	l.onClose(func() {
		stop()
		<-done
	})
}

// close runs the undo steps in reverse order, once.
func (l *lifecycle) close() {
	l.once.Do(func() {
		l.cancel()
		for i := len(l.steps) - 1; i >= 0; i-- {
			l.steps[i]()
		}
	})
}
