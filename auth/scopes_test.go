package auth_test

import (
	"testing"

	"golang.org/x/oauth2"

	"github.com/zccadapter/zccadapter/auth"
)

func TestMissingScopes(t *testing.T) {
	all := []string{"contact_center:read:task:admin", "user:read:user:admin", "user:read:presence_status:admin",
		"contact_center:read:engagement:admin", "contact_center:read:user:admin"}
	classic := []string{"contact_center_task:read:admin", "contact_center_engagement:read:admin",
		"contact_center_user:read:admin", "user:read:admin"}
	cases := []struct {
		name    string
		granted []string
		missing []string
	}{
		{"granular", all, nil},
		{"classic", classic, nil},
		{"classic write implies read", []string{"contact_center_task:write:admin", "contact_center_engagement:read:admin",
			"contact_center_user:write:admin", "user:write:admin"}, nil},
		{"mixed", []string{"contact_center:read:task:admin", "user:read:admin", "contact_center_engagement:read:admin"},
			[]string{"contact_center:read:user:admin"}},
		{"none", nil, []string{"contact_center:read:task:admin", "user:read:user:admin", "user:read:presence_status:admin",
			"contact_center:read:engagement:admin", "contact_center:read:user:admin"}},
	}
	for _, c := range cases {
		var got []string
		for _, r := range auth.MissingScopes(c.granted) {
			got = append(got, r.Scope)
		}
		if len(got) != len(c.missing) {
			t.Errorf("%s: missing %v, want %v", c.name, got, c.missing)
			continue
		}
		for i := range got {
			if got[i] != c.missing[i] {
				t.Errorf("%s: missing %v, want %v", c.name, got, c.missing)
			}
		}
	}
}

func TestGrantedScopes(t *testing.T) {
	tok := (&oauth2.Token{AccessToken: "x"}).WithExtra(map[string]any{"scope": "a  b c"})
	if got := auth.GrantedScopes(tok); len(got) != 3 || got[1] != "b" {
		t.Errorf("string scope: %v", got)
	}
	tok = (&oauth2.Token{AccessToken: "x"}).WithExtra(map[string]any{"scope": []any{"a", "b"}})
	if got := auth.GrantedScopes(tok); len(got) != 2 {
		t.Errorf("list scope: %v", got)
	}
	if got := auth.GrantedScopes(&oauth2.Token{}); got != nil {
		t.Errorf("no scope: %v", got)
	}
}
