package main

import (
	"strings"
	"testing"
)

func TestTriggerScenariosAndLogs(t *testing.T) {
	base, admin := startServe(t, "v2")
	for name := range scenarios {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", "trigger", name, "--url", base, "--admin-token", admin)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if !strings.Contains(out, "order ") {
				t.Fatalf("output: %s", out)
			}
		})
	}
	code, out, errOut := runCmd(t, "", "logs", "--url", base)
	if code != 0 || !strings.Contains(out, "pay") || !strings.Contains(out, "try 1") {
		t.Fatalf("logs: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "", "trigger", "nonsense", "--url", base); code != 2 || !strings.Contains(errOut, "unknown scenario") {
		t.Fatalf("unknown scenario: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "trigger", "payment", "--url", "http://127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "serve --sim") {
		t.Fatalf("no service: exit %d %s", code, errOut)
	}
}
