//go:build !windows

package main

import "context"

// serviceSupported refuses `zccadapter service` off Windows.
func serviceSupported() error { return errServiceWindowsOnly }

func installService(context.Context, serviceInstallPlan) error { return errServiceWindowsOnly }

func uninstallService(context.Context, string) error { return errServiceWindowsOnly }

func runService(context.Context, string, string) error { return errServiceWindowsOnly }
