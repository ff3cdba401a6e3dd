package client

import (
	"regexp"
	"testing"
)

func TestRequestIDs(t *testing.T) {
	c := &Conn{idPrefix: "0123abcd"}
	re := regexp.MustCompile(`^[1-9][0-9]*:0123abcd$`)
	seen := map[string]bool{}
	for i := range 100 {
		id := c.newID()
		if !re.MatchString(id) {
			t.Fatalf("id %q does not look like <n>:<prefix>", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated after %d ids", id, i)
		}
		seen[id] = true
	}
}

// TestEmit pins the bounded-buffer rules: normal events use all but the
// last slot, a drop is counted and announced by one gap marker as soon as
// there is room, and a seq jump counts the skipped numbers.
func TestEmit(t *testing.T) {
	tests := []struct {
		name      string
		buffer    int
		seqs      []int64 // events arriving, by seq
		drain     []int   // after event i, the consumer reads one event
		wantNames []string
		wantGaps  int64
	}{
		{name: "fits", buffer: 4, seqs: []int64{1, 2, 3}, wantNames: []string{"e", "e", "e"}},
		{name: "overflow", buffer: 2, seqs: []int64{1, 2, 3, 4}, wantNames: []string{"e", "gap"}, wantGaps: 3},
		{name: "seq jump", buffer: 8, seqs: []int64{1, 2, 5, 6}, wantNames: []string{"e", "e", "gap", "e", "e"}, wantGaps: 2},
		{name: "recovers after drain", buffer: 3, seqs: []int64{1, 2, 3, 4, 5}, drain: []int{2},
			wantNames: []string{"e", "e", "gap"}, wantGaps: 3},
		{name: "new marker after the old one was read", buffer: 2, seqs: []int64{1, 2, 3, 4, 5, 6}, drain: []int{2, 3},
			wantNames: []string{"e", "gap", "e", "gap"}, wantGaps: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Conn{events: make(chan Event, tt.buffer)}
			var got []string
			for i, s := range tt.seqs {
				c.deliverEvent(&inFrame{Type: "event", Event: "e", Seq: s})
				for _, d := range tt.drain {
					if d == i {
						got = append(got, (<-c.events).Name)
					}
				}
			}
			close(c.events)
			for ev := range c.events {
				got = append(got, ev.Name)
			}
			if !equal(got, tt.wantNames) || c.Gaps() != tt.wantGaps {
				t.Errorf("events %v gaps %d; want %v gaps %d", got, c.Gaps(), tt.wantNames, tt.wantGaps)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
