package testenv

import (
	"context"
	"sync"

	"github.com/idbroker/broker/upstream/otp"
)

// Mailer is an otp.Mailer that keeps every message, so a test can read the
// code a person would find in their inbox.
type Mailer struct {
	mu   sync.Mutex // guards sent
	sent []otp.Message
	// Fail, when set, makes SendCode fail with it.
	Fail error
}

// SendCode records the message.
func (m *Mailer) SendCode(_ context.Context, msg otp.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	m.sent = append(m.sent, msg)
	return nil
}

// LastCode returns the newest code sent to email, or "" if none was.
func (m *Mailer) LastCode(email string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.sent) - 1; i >= 0; i-- {
		if m.sent[i].To == email {
			return m.sent[i].Code
		}
	}
	return ""
}

// Count returns how many codes were sent to email.
func (m *Mailer) Count(email string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, msg := range m.sent {
		if msg.To == email {
			n++
		}
	}
	return n
}
