package auth

import (
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// ScopeRequirement is one scope the adapter's app needs (PROTOCOL.md §4),
// satisfied by its granular name or by any of its classic equivalents.
type ScopeRequirement struct {
	// Scope is the granular name, e.g. contact_center:read:task:admin.
	Scope string `json:"scope"`
	// Classic lists the classic scopes that also grant it. A classic
	// write scope grants read as well ("view and manage").
	Classic []string `json:"classic"`
	// Purpose says what the adapter needs it for.
	Purpose string `json:"purpose"`
}

// SatisfiedBy reports whether the granted scopes include r's granular name
// or one of its classic equivalents.
func (r ScopeRequirement) SatisfiedBy(granted []string) bool {
	if slices.Contains(granted, r.Scope) {
		return true
	}
	for _, c := range r.Classic {
		if slices.Contains(granted, c) {
			return true
		}
	}
	return false
}

// MinimumScopes returns the seed app's minimum scopes (PROTOCOL.md §4), a
// fresh copy on each call.
func MinimumScopes() []ScopeRequirement {
	return []ScopeRequirement{
		{Scope: "contact_center:read:task:admin", Classic: []string{"contact_center_task:read:admin", "contact_center_task:write:admin"},
			Purpose: "task and reservation events"},
		{Scope: "user:read:user:admin", Classic: []string{"user:read:admin", "user:write:admin"},
			Purpose: "user sign-in/sign-out events"},
		{Scope: "user:read:presence_status:admin", Classic: []string{"user:read:admin", "user:write:admin"},
			Purpose: "presence status events"},
		{Scope: "contact_center:read:engagement:admin", Classic: []string{"contact_center_engagement:read:admin"},
			Purpose: "engagement events and reconciliation"},
		{Scope: "contact_center:read:user:admin", Classic: []string{"contact_center_user:read:admin", "contact_center_user:write:admin"},
			Purpose: "agent login/status events"},
	}
}

// MissingScopes returns the minimum scopes that granted does not satisfy,
// in MinimumScopes order; nil when none is missing.
func MissingScopes(granted []string) []ScopeRequirement {
	var out []ScopeRequirement
	for _, r := range MinimumScopes() {
		if !r.SatisfiedBy(granted) {
			out = append(out, r)
		}
	}
	return out
}

// GrantedScopes returns the scopes a token carries: Zoom's "scope" field, one
// space-separated string (a JSON list is accepted too). nil when the token
// has none.
func GrantedScopes(tok *oauth2.Token) []string {
	if tok == nil {
		return nil
	}
	switch v := tok.Extra("scope").(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return slices.Clone(v)
	}
	return nil
}
