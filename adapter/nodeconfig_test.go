package adapter_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
)

func TestNodeConfigValidateNamesFieldAndValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  adapter.NodeConfig
		want string // "" means valid
	}{
		{"zero fields take defaults", adapter.NodeConfig{Name: "a"}, ""},
		{"largest batch", adapter.NodeConfig{Name: "a", BatchSize: 40}, ""},
		{"hold-back disabled", adapter.NodeConfig{Name: "a", HoldBack: -1}, ""},
		{"no name", adapter.NodeConfig{}, "Name is required"},
		{"batch over the txn limit", adapter.NodeConfig{Name: "a", BatchSize: 41}, "BatchSize 41"},
		{"negative batch", adapter.NodeConfig{Name: "a", BatchSize: -1}, "BatchSize -1"},
		{"negative grace", adapter.NodeConfig{Name: "a", HandoffGrace: -time.Second}, "HandoffGrace -1s"},
		{"negative pending bound", adapter.NodeConfig{Name: "a", MaxPending: -5}, "MaxPending -5"},
		{"negative degraded time", adapter.NodeConfig{Name: "a", DegradedAfter: -time.Second}, "DegradedAfter -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("Validate() = nil, want an error naming %q", tc.want)
			case !errors.Is(err, adapter.ErrInvalidNodeConfig) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate() = %v, want ErrInvalidNodeConfig naming %q", err, tc.want)
			}
		})
	}
}
