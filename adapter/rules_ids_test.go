package adapter

import (
	"strings"
	"testing"
)

// TestIdentifiersKeptWhole: names are bounded in the state, identifiers
// are not: a flow_id over 256 bytes reaches the recorder whole.
func TestIdentifiersKeptWhole(t *testing.T) {
	long := "flow-" + strings.Repeat("x", 300)
	var r Rules
	eng, _, _ := r.Apply(nil, sample(t, started, 0, map[string]string{"flow_id": long}))
	eng, cmds, _ := r.Apply(eng, sample(t, answered, 0, map[string]string{"flow_id": long}))
	if eng.FlowID != long {
		t.Errorf("state flow_id: %d bytes, want %d (identifier cut)", len(eng.FlowID), len(long))
	}
	for _, c := range cmds {
		if got := c.Metadata["flow_id"]; got != long {
			t.Errorf("command %s: flow_id %d bytes, want %d", c.ID, len(got), len(long))
		}
	}
}
