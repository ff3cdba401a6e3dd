package testutil

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fatalTB records Fatalf and stops the goroutine as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// fails runs fn with a fatalTB and returns its failure message ("" when fn
// did not fail).
func fails(fn func(tb testing.TB)) (msg string) {
	f := &fatalTB{}
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
		msg = f.msg
	}()
	fn(f)
	return ""
}

func TestWaitFor(t *testing.T) {
	n := 0
	msg := fails(func(tb testing.TB) {
		WaitFor(tb, time.Second, time.Millisecond, "three polls", func() (bool, string) {
			n++
			return n == 3, fmt.Sprint(n)
		})
	})
	if msg != "" || n != 3 {
		t.Fatalf("WaitFor failed (%q) or polled %d times, want 3", msg, n)
	}

	msg = fails(func(tb testing.TB) {
		WaitFor(tb, 30*time.Millisecond, 5*time.Millisecond, "the impossible", func() (bool, string) {
			return false, "still nothing"
		})
	})
	want := "timed out after 30ms waiting for the impossible; last state: still nothing"
	if msg != want {
		t.Fatalf("failure %q, want %q", msg, want)
	}
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 800) {
		t.Fatalf("%d bytes, want 800", len(got))
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
	} {
		if got := Tail(tc.in, tc.n); got != tc.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
